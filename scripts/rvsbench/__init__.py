"""The benchmark scripts' computing half, run by scripts/benchlib.py (module map: its docstring)."""
