#!/usr/bin/env bash
# Checks the monitoring files against a live Prometheus: every query of the
# Grafana dashboard, every variable query, and every alerting rule.
#
#   docker/check-dashboard.sh PROM_URL [--allow-empty REGEX]
#                             [--dashboard FILE] [--alerts FILE]
#
#   PROM_URL           e.g. http://localhost:9090
#   --allow-empty RE   checks whose name or expression match RE (Python
#                      re.search) may return no series, e.g. 'relay|anchor'
#                      when no relayer runs, or 'Relay errors' on a healthy one
#   --dashboard FILE   default: grafana/dashboards/conclave.json beside this script
#   --alerts FILE      default: prometheus/alerts.yml beside this script
#
# Dashboard queries: template variables ($name, ${name}, ${name:format},
# [[name]]) become what Grafana sends for "All" (the variable's allValue,
# `.+`), or the value of the environment variable DASH_VAR_<name> (e.g.
# DASH_VAR_context=<hex id>); $__rate_interval and $__interval become
# $RATE_INTERVAL (default 1m), $__range becomes $RANGE (default 5m).
# Each query runs once, instantly, at the current time. It fails if
# Prometheus reports an error and, unless allowed, if it returns no series.
#
# Alerting rules: each `expr` must evaluate without error; no series just
# means the alert does not fire (shown as "quiet"). Each metric selector in
# it (conclave_*, process_*, up) is then queried on its own and must
# return series, unless allowed.
#
# Prints a table; exits 0 if every check passed, 1 if any failed, 2 on a
# usage or input error. Needs python3 (PyYAML optional) and nothing else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

prom=""
allow=""
dashboard="$here/grafana/dashboards/conclave.json"
alerts="$here/prometheus/alerts.yml"
while (($# > 0)); do
  case "$1" in
    --allow-empty)
      (($# >= 2)) || usage
      allow="$2"
      shift 2
      ;;
    --dashboard)
      (($# >= 2)) || usage
      dashboard="$2"
      shift 2
      ;;
    --alerts)
      (($# >= 2)) || usage
      alerts="$2"
      shift 2
      ;;
    -h | --help) usage ;;
    -*)
      echo "unknown option: $1" >&2
      usage
      ;;
    *)
      [[ -z "$prom" ]] || usage
      prom="$1"
      shift
      ;;
  esac
done
[[ -n "$prom" ]] || usage
for f in "$dashboard" "$alerts"; do
  [[ -r "$f" ]] || {
    echo "cannot read $f" >&2
    exit 2
  }
done
command -v python3 >/dev/null || {
  echo "python3 is required" >&2
  exit 2
}

export CHECK_PROM="${prom%/}" CHECK_ALLOW="$allow" CHECK_DASHBOARD="$dashboard" CHECK_ALERTS="$alerts"
exec python3 - <<'PY'
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

PROM = os.environ["CHECK_PROM"]
ALLOW = os.environ["CHECK_ALLOW"]
RATE_INTERVAL = os.environ.get("RATE_INTERVAL", "1m")
RANGE = os.environ.get("RANGE", "5m")
TIMEOUT = float(os.environ.get("QUERY_TIMEOUT", "10"))

try:
    allow_re = re.compile(ALLOW) if ALLOW else None
except re.error as e:
    sys.exit(f"bad --allow-empty regex: {e}")


def allowed(name, expr):
    return bool(allow_re and (allow_re.search(name) or allow_re.search(expr)))


def get(path, params, post=True):
    """Calls an API path (POST form or GET); returns (status, data or error text)."""
    enc = urllib.parse.urlencode(params, doseq=True)
    if post:
        req = urllib.request.Request(PROM + path, data=enc.encode(), method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    else:
        req = urllib.request.Request(PROM + path + ("?" + enc if enc else ""))
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            payload = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            payload = json.load(e)
        except ValueError:
            return "error", f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return "error", f"unreachable: {e}"
    if payload.get("status") != "success":
        return "error", f"{payload.get('errorType', '?')}: {payload.get('error', '?')}"
    return "success", payload.get("data")


def query(expr):
    """Instant query; returns (error or None, number of series)."""
    status, data = get("/api/v1/query", {"query": expr})
    if status != "success":
        return data, 0
    result = data.get("result", [])
    if data.get("resultType") in ("scalar", "string"):
        return None, 1
    return None, len(result)


# ------------------------------------------------------------ dashboard
with open(os.environ["CHECK_DASHBOARD"]) as f:
    try:
        dash = json.load(f)
    except ValueError as e:
        sys.exit(f"{os.environ['CHECK_DASHBOARD']}: not JSON: {e}")

variables = {}
var_checks = []
for v in dash.get("templating", {}).get("list", []):
    name = v.get("name")
    env = os.environ.get(f"DASH_VAR_{name}")
    if env is not None:
        variables[name] = env
    elif v.get("type") == "query":
        variables[name] = v.get("allValue") or ".+"
    else:
        cur = v.get("current", {}).get("value", "")
        variables[name] = "|".join(cur) if isinstance(cur, list) else str(cur)
    if v.get("type") == "query":
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or v.get("definition", ""))
        var_checks.append((name, q))

builtins = {"__rate_interval": RATE_INTERVAL, "__interval": RATE_INTERVAL, "__range": RANGE}
VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")


def substitute(expr):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        return m.group(0)  # not a variable (e.g. $1 in label_replace)
    return VAR_RE.sub(repl, expr)


def walk(panels):
    """(name, expr) of every target, rows' nested (collapsed) panels included."""
    for p in panels:
        if p.get("type") != "row":
            for t in p.get("targets", []):
                if t.get("expr"):
                    yield f"{p.get('title', '?')} [{t.get('refId', '?')}]", t["expr"]
        yield from walk(p.get("panels", []))


rows = []  # (result, series, source, name, expr)
failed = 0


def record(ok, result, series, source, name, expr):
    global failed
    if not ok:
        failed += 1
    rows.append((result, series, source, name, " ".join(expr.split())))


for name, q in var_checks:
    m = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*", substitute(q))
    if not m:
        record(True, "skip", "-", "variable", f"${name}", q)
        continue
    params = {"match[]": m.group(1)} if m.group(1) else {}
    status, data = get(f"/api/v1/label/{m.group(2)}/values", params, post=False)
    if status != "success":
        record(False, "ERROR", "-", "variable", f"${name}", f"{q}  -> {data}")
    elif data:
        record(True, "ok", len(data), "variable", f"${name}", q)
    elif allowed(f"${name}", q):
        record(True, "empty-ok", 0, "variable", f"${name}", q)
    else:
        record(False, "EMPTY", 0, "variable", f"${name}", q)

for name, raw in walk(dash.get("panels", [])):
    expr = substitute(raw)
    err, n = query(expr)
    if err:
        record(False, "ERROR", "-", "panel", name, f"{expr}  -> {err}")
    elif n:
        record(True, "ok", n, "panel", name, expr)
    elif allowed(name, expr):
        record(True, "empty-ok", 0, "panel", name, expr)
    else:
        record(False, "EMPTY", 0, "panel", name, expr)

# --------------------------------------------------------------- alerts


def load_rules(path):
    text = open(path).read()
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        doc = yaml.safe_load(text) or {}
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                if "alert" in r:
                    yield r["alert"], str(r.get("expr", ""))
        return
    # Without PyYAML: `- alert: NAME` then `expr: ...` (inline or a block scalar).
    lines = text.splitlines()
    name = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-?\s*alert:\s*(\S.*?)\s*$", line)
        if m:
            name = m.group(1).strip("'\"")
        m = re.match(r"(\s*)expr:\s*(.*?)\s*$", line)
        if m and name:
            indent, rest = len(m.group(1)), m.group(2)
            if rest[:1] in ("|", ">"):
                body = []
                i += 1
                while i < len(lines) and (not lines[i].strip()
                                          or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    body.append(lines[i].strip())
                    i += 1
                yield name, "\n".join(body)
                name = None
                continue
            yield name, rest.strip("'\"")
            name = None
        i += 1


SELECTOR_RE = re.compile(r"\b((?:conclave|process)_[A-Za-z0-9_:]*|up)\s*(\{[^{}]*\})?")
selectors = {}
for name, expr in load_rules(os.environ["CHECK_ALERTS"]):
    err, n = query(expr)
    if err:
        record(False, "ERROR", "-", "alert", name, f"{expr}  -> {err}")
    else:
        record(True, "firing" if n else "quiet", n, "alert", name, expr)
    for m in SELECTOR_RE.finditer(expr):
        sel = m.group(1) + (m.group(2) or "")
        selectors.setdefault(sel, name)

for sel, name in selectors.items():
    label = f"{name}: selector"
    err, n = query(sel)
    if err:
        record(False, "ERROR", "-", "alert", label, f"{sel}  -> {err}")
    elif n:
        record(True, "ok", n, "alert", label, sel)
    elif allowed(label, sel):
        record(True, "empty-ok", 0, "alert", label, sel)
    else:
        record(False, "EMPTY", 0, "alert", label, sel)

# ---------------------------------------------------------------- table
width = int(os.environ.get("EXPR_WIDTH", "90"))
name_w = min(max(len(r[3]) for r in rows), 48) if rows else 4
print(f"{'RESULT':<9} {'SERIES':>6}  {'SOURCE':<8} {'NAME':<{name_w}}  EXPR")
for result, series, source, name, expr in rows:
    if len(expr) > width and result not in ("ERROR", "EMPTY"):
        expr = expr[: width - 1] + "…"
    print(f"{result:<9} {series!s:>6}  {source:<8} {name[:name_w]:<{name_w}}  {expr}")
print(f"\n{len(rows)} checks, {failed} failed (Prometheus {PROM})")
sys.exit(1 if failed else 0)
PY
