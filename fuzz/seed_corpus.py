#!/usr/bin/env python3
"""Writes the hand-picked seeds of fuzz/corpus/<target>/ from the repo's own examples.

Run from anywhere: `python3 fuzz/seed_corpus.py`. Seeds are named `seed-*`; files named by
a SHA-1 were found by libFuzzer and merged in by `scripts/fuzz --merge`. Re-running rewrites
the seeds and leaves the found inputs alone.

Sources: rules — crates/kora-rules/tests/fixtures/kora.rules.yaml, the ```yaml blocks of
docs/rules.md and the expressions in both; mutations — crates/kora-core/tests/data/*.json
(riptide-mutations.json is MIT, Copyright (c) 2020 Ironbay, see LICENSE-riptide there);
ws — the requests in docs/protocol.md. Plus a few malformed inputs of each kind.
"""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def rules_seeds():
    t = "rules_parser"
    fixture = (ROOT / "crates/kora-rules/tests/fixtures/kora.rules.yaml").read_text()
    write(t, "fixture", fixture)
    doc = (ROOT / "docs/rules.md").read_text()
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc, re.S)):
        write(t, f"docs-{i:02}", block)
    # Expressions: rule values in the fixture and inline code of the guide that reads as one.
    exprs = set()
    for m in re.finditer(r"^\s*(?:read|write|validate|when|value|[a-z]+): (.+)$", fixture, re.M):
        v = m.group(1).strip()
        if v.startswith('"') and v.endswith('"'):
            v = v[1:-1]
        if v not in (">-", "|"):
            exprs.add(v)
    for span in re.findall(r"`([^`\n]+)`", doc):
        if re.search(r"==|!=|&&|\|\||\?|\(|\[| in |[+*/%<>]", span) and not re.match(
            r"(adds|cargo|check_|filter_|set |merge |delete |read |query )", span
        ):
            exprs.add(span.replace("\\|", "|"))
    # Only real expressions (an identifier or literal and an operator), and few of them:
    # libFuzzer finds the rest.
    exprs = sorted(e for e in exprs if len(e) >= 8 and re.search(r"[a-z0-9]", e))
    for i, e in enumerate(exprs[:: max(1, len(exprs) // 40)]):
        write(t, f"expr-{i:02}", e)
    malformed = {
        "unknown-key": "rules:\n  todos/$uid:\n    raed: true\n",
        "unknown-capture": "rules:\n  todos/$uid:\n    read: auth.sub == $id\n",
        "bad-expr": "rules:\n  a:\n    read: (1 +\n",
        "anchors": "rules:\n  a: &r\n    read: true\n  b: *r\n",
        "flow": "{rules: {a/$x: {read: 'auth != null', set: {b: now}}}}\n",
        "deep": "rules:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(20)),
        "tabs-and-docs": "---\nrules:\n\ta: {read: true}\n---\nrules: {}\n",
        "template": "rules:\n  a/$x:\n    index:\n      - path: \"i/{newData.k}/{$x}\"\n        value: \"{'a': [1, 2.5e3, $x]}\"\n",
        "regex": "rules:\n  a/$x:\n    validate: matches(newData, '^(a+)+$') && startsWith($x, 'u')\n",
    }
    for name, text in malformed.items():
        write(t, name, text)


def mutation_seeds():
    t = "mutation_parser"
    data = ROOT / "crates/kora-core/tests/data"
    riptide = json.loads((data / "riptide-mutations.json").read_text())
    for i, (name, _op, a, b, _expected) in enumerate(riptide):
        write(t, f"riptide-{i:02}", compact([a, b]))
        write(t, f"riptide-{i:02}-a", compact(a))
    stamped = json.loads((data / "stamped-apply.json").read_text())
    for i, (name, writes, _tree) in enumerate(stamped):
        write(t, f"stamped-{i:02}", compact([m for _stamp, m in writes]))
    others = {
        "delete-all": '{"delete":1,"merge":{"a":{}}}',
        "null-merge": '{"merge":{"a":{"b":null,"c":{"d":null}},"e":[1,{"f":null}]}}',
        "marker": '{"merge":{"a":{"b":{}}},"delete":{"a":{"b":1}}}',
        "bad-marker": '{"delete":{"a":true}}',
        "unknown-field": '{"merge":{},"set":{}}',
        "leaf-at-root": '{"merge":5}',
        "bad-key": '{"merge":{"a/b":1,"":2,"\\u0001":3}}',
        "unicode": '{"merge":{"\u00e9t\u00e9":{"\U0001F600":"x"}},"delete":{"\u00e9t\u00e9":{"z":1}}}',
        "numbers": '{"merge":{"a":1e308,"b":-0,"c":18446744073709551616,"d":1.5}}',
        "deep": '{"merge":' + '{"k":' * 66 + "1" + "}" * 66 + "}",
        "path": "todos/TOD1/text",
        "path-slashes": "/todos/",
        "path-empty-seg": "a//b",
        "path-control": "a/b\tc",
        "key": b"todos\x00TOD1\x00text\x00",
        "key-unterminated": b"todos\x00TOD1",
        "key-bad-utf8": b"a\x00\xff\xfe\x00",
    }
    for name, text in others.items():
        write(t, name, text)


def ws_seeds():
    t = "ws_decoder"
    doc = (ROOT / "docs/protocol.md").read_text()
    n = 0
    for block in re.findall(r"```json\n(.*?)```", doc, re.S):
        try:
            values = [json.loads(block)]
        except json.JSONDecodeError:
            values = []
            for line in block.splitlines():
                try:
                    values.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        for v in values:
            if isinstance(v, dict) and "op" in v:
                write(t, f"docs-{n:02}", compact(v))
                n += 1
    stamp = "01M8ZZZZZZZZZZZZZZZZZZZZZZ"
    others = {
        "query-ranged": {"op": "query", "id": "q", "paths": [
            {"path": "feed", "min": "02", "max": "10", "limit": 2, "reverse": True},
            {"path": "todos", "min": "t3", "max": "t1"},
            {"path": "/users/jack/", "since": 7, "subscribe": True, "sub": "j"},
            {"path": "a/b/c"}, {"path": ""}]},
        "query-bad-path": {"op": "query", "id": 1, "paths": [{"path": "a//b"}, {"path": "x", "limit": 0}]},
        "mutate-stamp": {"op": "mutate", "id": 9, "mutation": {"merge": {"a": "offline"}}, "stamp": stamp},
        "mutate-bad-stamp": {"op": "mutate", "id": 9, "mutation": {}, "stamp": "8" + "Z" * 25},
        "mutate-bad": {"op": "mutate", "id": 6, "mutation": {"delete": {"a": True}}},
        "auth": {"op": "auth", "id": 2, "token": "eyJhbGciOiJIUzI1NiJ9.e30.x"},
        "auth-null": {"op": "auth", "id": 3, "token": None},
        "cast-id": {"op": "cast", "id": [1, {"x": None}], "name": "t", "args": [1, 2]},
        "unknown-op": {"op": "fly", "id": 1},
        "extra-field": {"op": "ping", "id": 7, "extra": 1},
    }
    for name, v in others.items():
        write(t, name, compact(v))
    write(t, "not-json", '{"op": "ping", "id": 1')


if __name__ == "__main__":
    rules_seeds()
    mutation_seeds()
    ws_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(d.name, len(list(d.iterdir())))
