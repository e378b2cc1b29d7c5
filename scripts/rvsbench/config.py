"""write-config: TOML string escaping and the @NAME@ templating of rvs's config files."""
import re
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11: the written config is then not parsed back here
    tomllib = None

from .common import read_text


def toml_escape(s):
    """The contents of a TOML basic string holding s (without the quotes)."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append("\\u%04X" % o)
        else:
            out.append(ch)
    return "".join(out)


def toml_str(s):
    return '"' + toml_escape(s) + '"'


PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def fill_template(text, values):
    """Replaces every @NAME@ of a config template with values[NAME]. A placeholder inside a
    TOML string (an odd number of quotes before it on its line) gets the value escaped for that
    string; one outside a string gets it as is (numbers, booleans, lists, inline tables). Every
    placeholder outside comments must have a value, and every value a placeholder."""
    used = set()
    for line in text.splitlines():
        used.update(PLACEHOLDER.findall(line.split("#")[0]))
    missing = sorted(used - set(values))
    unknown = sorted(set(values) - used)
    if missing:
        raise ValueError("unfilled placeholder(s): " + ", ".join("@%s@" % n for n in missing))
    if unknown:
        raise ValueError("no placeholder for: " + ", ".join(unknown))
    out = []
    for line in text.splitlines(keepends=True):
        def sub(m, line=line):
            name = m.group(1)
            if name not in values:
                return m.group(0)  # a comment's @NAME@
            v = values[name]
            return toml_escape(v) if line.count('"', 0, m.start()) % 2 else v
        out.append(PLACEHOLDER.sub(sub, line))
    return "".join(out)


def write_config(template, out, assignments):
    """Writes template (a path, or - for stdin) to out with its placeholders filled from the
    NAME=VALUE strings of assignments; checks the result parses as TOML where tomllib exists."""
    values = {}
    for kv in assignments:
        name, sep, v = kv.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("@" + name + "@"):
            raise SystemExit(f"benchlib: write-config: expected NAME=VALUE, got {kv!r}")
        values[name] = v
    text = sys.stdin.read() if template == "-" else read_text(template)
    try:
        t = fill_template(text, values)
    except ValueError as e:
        raise SystemExit(f"benchlib: write-config {template}: {e}")
    if tomllib is not None:
        try:
            tomllib.loads(t)
        except tomllib.TOMLDecodeError as e:
            raise SystemExit(f"benchlib: write-config: {out} would not be valid TOML: {e}")
    with open(out, "w") as f:
        f.write(t)
