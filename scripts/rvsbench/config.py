"""write-config: TOML string escaping, the @NAME@ templating of rvs's config files, and keys
added to a template's tables (--set)."""
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


KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]")


def toml_value(v):
    """A --set value as TOML: an integer as is, anything else a string."""
    return v if re.fullmatch(r"-?[0-9]+", v) else toml_str(v)


def set_keys(text, sets):
    """Adds `key = value` lines at the end of existing top-level tables of a config: sets is a
    list of (table, key, value) (value already TOML). A table that does not exist, or a key it
    already has, is an error: this adds keys a template does not have (bench.sh --kernel-flood:
    the private port's kernel twin), it does not edit the template's."""
    lines = text.splitlines(keepends=True)
    for table, key, value in sets:
        start = next((i for i, l in enumerate(lines)
                      if (m := HEADER.match(l)) and m.group(1) == table), None)
        if start is None:
            raise ValueError(f"no table [{table}] for {table}.{key}")
        end = next((i for i in range(start + 1, len(lines)) if HEADER.match(lines[i])), len(lines))
        body = range(start + 1, end)
        if any(re.match(r"\s*" + re.escape(key) + r"\s*=", lines[i]) for i in body):
            raise ValueError(f"[{table}] already sets {key}")
        # After the table's last key, before the blank lines and comments that end it.
        at = max((i + 1 for i in body if lines[i].strip() and not lines[i].lstrip().startswith("#")),
                 default=start + 1)
        if not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines.insert(at, f"{key} = {value}\n")
    return "".join(lines)


def parse_set(s):
    """TABLE.KEY=VALUE of write-config --set: (table, key, TOML value)."""
    lhs, sep, v = s.partition("=")
    table, dot, key = lhs.rpartition(".")
    if not sep or not dot or not KEY.fullmatch(key) or not all(KEY.fullmatch(t) for t in table.split(".")):
        raise SystemExit(f"benchlib: write-config: expected --set TABLE.KEY=VALUE, got {s!r}")
    return table, key, toml_value(v)


def write_config(template, out, assignments, sets=()):
    """Writes template (a path, or - for stdin) to out with its placeholders filled from the
    NAME=VALUE strings of assignments and the TABLE.KEY=VALUE strings of sets added (see
    set_keys); checks the result parses as TOML where tomllib exists."""
    values = {}
    for kv in assignments:
        name, sep, v = kv.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("@" + name + "@"):
            raise SystemExit(f"benchlib: write-config: expected NAME=VALUE, got {kv!r}")
        values[name] = v
    added = [parse_set(x) for x in sets]
    text = sys.stdin.read() if template == "-" else read_text(template)
    try:
        t = set_keys(fill_template(text, values), added)
    except ValueError as e:
        raise SystemExit(f"benchlib: write-config {template}: {e}")
    if tomllib is not None:
        try:
            tomllib.loads(t)
        except tomllib.TOMLDecodeError as e:
            raise SystemExit(f"benchlib: write-config: {out} would not be valid TOML: {e}")
    with open(out, "w") as f:
        f.write(t)
