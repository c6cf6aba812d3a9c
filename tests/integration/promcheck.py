"""A strict checker of the Prometheus text exposition format (0.0.4).

check(text) returns (families, errors): families maps each metric family
to {"type", "help", "samples": [(name, labels dict, value)]}; errors lists
every rule the text breaks, with its line number. The rules are those a
scraper enforces: line syntax, metric and label names, label value
escapes, numbers, one HELP and one TYPE per family before its samples, no
family split in two, no duplicate series, counters named *_total with
values >= 0, histograms with cumulative buckets ending in le="+Inf" that
equals _count, and a _sum.
"""

import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (\S+)( -?\d+)?$" % NAME)
LABEL_PAIR = re.compile(r'\s*(%s)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"\s*(,|$)' % LABEL)
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", s):
        raise ValueError(s)
    return float(s)


def _labels(s, lineno, errors):
    out, pos = {}, 0
    while pos < len(s):
        m = LABEL_PAIR.match(s, pos)
        if not m or m.end() == pos:
            errors.append("line %d: bad label set {%s}" % (lineno, s))
            return out
        if m.group(1) in out:
            errors.append("line %d: label %s twice" % (lineno, m.group(1)))
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def _family_of(name, families):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    return name


def check(text):
    families, errors, seen, order = {}, [], set(), []
    if not text.endswith("\n"):
        errors.append("the text does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.match("^%s$" % NAME, name):
                    errors.append("line %d: bad metric name %r" % (lineno, name))
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                key = parts[1].lower()
                if fam[key] is not None:
                    errors.append("line %d: second %s for %s" % (lineno, parts[1], name))
                if fam["samples"]:
                    errors.append("line %d: %s for %s after its samples" % (lineno, parts[1], name))
                value = parts[3] if len(parts) > 3 else ""
                if key == "type" and value not in TYPES:
                    errors.append("line %d: unknown type %r" % (lineno, value))
                fam[key] = value
                if not order or order[-1] != name:
                    order.append(name)
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append("line %d: not a sample: %r" % (lineno, line))
            continue
        name, labels = m.group(1), _labels(m.group(3) or "", lineno, errors)
        try:
            value = _value(m.group(4))
        except ValueError:
            errors.append("line %d: bad value %r" % (lineno, m.group(4)))
            continue
        base = _family_of(name, families)
        fam = families.setdefault(base, {"type": None, "help": None, "samples": []})
        if order and order[-1] != base and base in order:
            errors.append("line %d: family %s split in two" % (lineno, base))
        if not order or order[-1] != base:
            order.append(base)
        series = (name, tuple(sorted(labels.items())))
        if series in seen:
            errors.append("line %d: duplicate series %s%s" % (lineno, name, labels))
        seen.add(series)
        fam["samples"].append((name, labels, value))
    for base, fam in families.items():
        if fam["type"] is None:
            errors.append("%s: no TYPE" % base)
        if fam["help"] is None:
            errors.append("%s: no HELP" % base)
        if fam["type"] == "counter":
            if not base.endswith("_total"):
                errors.append("%s: a counter not named *_total" % base)
            for _, labels, v in fam["samples"]:
                if not v >= 0:
                    errors.append("%s%s: negative counter" % (base, labels))
        if fam["type"] == "histogram":
            # one histogram per label set (le aside): a family may hold
            # several, as the workers' merged /metrics does
            def key(labels):
                return tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            for ls in sorted({key(s[1]) for s in fam["samples"]}):
                what = base + ("{%s}" % ",".join('%s="%s"' % kv for kv in ls) if ls else "")
                own = [s for s in fam["samples"] if key(s[1]) == ls]
                buckets = [(s[1], s[2]) for s in own if s[0] == base + "_bucket"]
                les = []
                for labels, v in buckets:
                    if "le" not in labels:
                        errors.append("%s: bucket without le" % what)
                        continue
                    les.append((_value(labels["le"]), v))
                if not les or les[-1][0] != math.inf:
                    errors.append("%s: no +Inf bucket last" % what)
                if [l for l, _ in les] != sorted(l for l, _ in les):
                    errors.append("%s: buckets not in order" % what)
                if any(b[1] < a[1] for a, b in zip(les, les[1:])):
                    errors.append("%s: buckets not cumulative" % what)
                counts = [s[2] for s in own if s[0] == base + "_count"]
                sums = [s for s in own if s[0] == base + "_sum"]
                if len(counts) != 1 or not les or counts[0] != les[-1][1]:
                    errors.append("%s: _count missing or not the +Inf bucket" % what)
                if len(sums) != 1:
                    errors.append("%s: no _sum" % what)
    return families, errors


def value(families, name, **labels):
    """The value of one series, or None."""
    base = _family_of(name, families)
    for n, l, v in families.get(base, {}).get("samples", []):
        if n == name and all(l.get(k) == str(x) for k, x in labels.items()):
            return v
    return None
