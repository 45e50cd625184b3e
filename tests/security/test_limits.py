"""Limits: every expression the parser accepts runs on both databases; bodies have a size limit."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from builder.cli import _parser as cli_parser
from runtime.api.limits import MAX_BODY_ENV, MAX_UPLOAD_ENV, max_body, max_upload, parse_size
from runtime.boot import Runtime
from runtime.expressions.limits import SQL_DEPTH, SQL_SIZE, sql_depth, sql_size
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError
from tests.support import admin_token, serve, user_token, write_files, write_pack

APP = """\
    app: t
    label: Test
    version: '1'
    roles:
      - {key: rep}
    """
FORMS = {
    "other": """\
        form: other
        label: {en: Other}
        title_field: name
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        backlinks:
          - {key: things, form: thing, link: o}
        fields:
          - {key: name, type: text, label: {en: Name}}
          - {key: n, type: integer, label: {en: N}}
          - {key: flag, type: boolean, label: {en: Flag}}
          - {key: day, type: date, label: {en: Day}}
        """,
    "line": """\
        form: line
        label: {en: Line}
        child: true
        fields:
          - {key: amount, type: decimal, precision: 18, scale: 4, label: {en: Amount}}
        """,
    "thing": """\
        form: thing
        label: {en: Thing}
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        fields:
          - {key: t, type: text, label: {en: T}}
          - {key: i, type: integer, label: {en: I}}
          - {key: d, type: decimal, precision: 18, scale: 4, label: {en: D}}
          - {key: day, type: date, label: {en: Day}}
          - {key: b, type: boolean, label: {en: B}}
          - {key: ms, type: multi_select, options: [a, b, c], label: {en: MS}}
          - {key: o, type: link, to: other, label: {en: O}}
          - {key: lines, type: table, form: line, label: {en: Lines}}
        """,
}
# The deepest point of each nesting reads a linked record (a subquery with the reader's
# row scope on the linked form), the costliest leaf there is.
LEAVES = {"int": "o.n", "bool": "o.flag", "text": "o.name", "date": "o.day", "dec": "SUM(lines.amount)"}
AS_CONDITION = {
    "int": "{} == 1",
    "bool": "{}",
    "text": "{} == 'x'",
    "date": "{} == #2026-01-01#",
    "dec": "{} > 1",
}
# (name, template with @ for the nested part, the type of @ and of the template)
SLOTS = [
    ("minus", "-@", "int"),
    ("not", "not @", "bool"),
    ("plus left", "@ + 1", "int"),
    ("plus right", "1 + @", "int"),
    ("minus left", "@ - i", "int"),
    ("minus right", "i - @", "int"),
    ("times", "1 * @", "int"),
    ("divide left", "@ / 2", "dec"),
    ("divide right", "2 / @", "dec"),
    ("and", "b and @", "bool"),
    ("or", "@ or b", "bool"),
    ("compare", "IF(1 < @, 1, 2)", "int"),
    ("compare text", "IF('a' < @, 'a', 'b')", "text"),
    ("in", "IF(@ in [i, 2], 1, 2)", "int"),
    ("in item", "IF(i in [1, @], 1, 2)", "int"),
    ("not in", "IF(@ not in [1, 2], 1, 2)", "int"),
    ("if condition", "IF(@, b, false)", "bool"),
    ("if then", "IF(b, @, 2)", "int"),
    ("if else", "IF(b, 1, @)", "int"),
    ("ifs", "IFS(b, 1, b, @)", "int"),
    ("ifs condition", "IFS(b, true, @, false)", "bool"),
    ("coalesce", "COALESCE(1, @)", "int"),
    ("coalesce first", "COALESCE(@, 2)", "int"),
    ("is_empty", "IF(IS_EMPTY(@), 'a', 'b')", "text"),
    ("round", "ROUND(@, 2)", "dec"),
    ("abs", "ABS(@)", "int"),
    ("min", "MIN(@, 1)", "int"),
    ("max", "MAX(1, @)", "int"),
    ("min text", "MIN('a', @)", "text"),
    ("len", "LEN(CONCAT(@))", "int"),
    ("concat", "CONCAT(@)", "text"),
    ("concat first of three", "CONCAT(@, 'a', t)", "text"),
    ("concat last", "CONCAT('a', 'b', @)", "text"),
    ("lower", "LOWER(@)", "text"),
    ("upper", "UPPER(@)", "text"),
    ("contains", "IF(CONTAINS(@, 'a'), 'a', 'b')", "text"),
    ("contains part", "IF(CONTAINS('abc', @), 'a', 'b')", "text"),
    ("contains option", "IF(CONTAINS(ms, @), 'a', 'b')", "text"),
    ("starts_with", "IF(STARTS_WITH(@, 'a'), 'a', 'b')", "text"),
    ("starts_with prefix", "IF(STARTS_WITH('abc', @), 'a', 'b')", "text"),
    ("days_between", "ADD_DAYS(day, DAYS_BETWEEN(@, day))", "date"),
    ("add_days", "ADD_DAYS(@, 1)", "date"),
    ("add_days count", "YEAR(ADD_DAYS(day, @))", "int"),
    ("year", "ADD_DAYS(day, YEAR(@))", "date"),
    ("month", "ADD_DAYS(day, MONTH(@))", "date"),
    ("lookup", "LOOKUP(@, lines.amount, lines.amount)", "dec"),
]


def nested(template: str, kind: str, levels: int) -> str:
    text = LEAVES[kind]
    for _ in range(levels):
        text = template.replace("@", text)
    return AS_CONDITION[kind].format(text)


def accepted(text: str) -> bool:
    try:
        parse(text)
    except ExpressionError:
        return False
    return True


@functools.cache
def deepest(template: str, kind: str) -> tuple[int, str, str]:
    """The most levels the parser accepts, that expression and the one a level deeper."""
    levels = 0
    while accepted(nested(template, kind, levels + 1)):
        levels += 1
    return levels, nested(template, kind, levels), nested(template, kind, levels + 1)


def dashboard() -> str:
    """A dashboard whose widget n filters, groups and counts by the deepest expression of SLOTS[n]."""
    widgets = []
    for number, (_, template, kind) in enumerate(SLOTS):
        text = deepest(template, kind)[1].replace('"', '\\"')
        widgets.append(
            f"""
              - key: w{number}
                label: {{en: W}}
                chart: table
                source: thing
                where: "{text}"
                top: 1
                other: true
                dimensions: [{{key: g, expression: "{text}"}}]
                measures:
                  - {{key: n, agg: count}}
                  - {{key: m, agg: count, where: "{text}"}}
                  - {{key: r, agg: ratio, numerator: m, denominator: n}}
            """
        )
    return "dashboard: d\nlabel: {en: D}\nroles: [rep]\nwidgets:" + "".join(
        textwrap.dedent(w) for w in widgets
    )


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    pack = write_pack(tmp_path / "pack", FORMS)
    write_files(pack, {"app.yaml": APP})
    (pack / "dashboards").mkdir()
    (pack / "dashboards" / "d.yaml").write_text(dashboard(), encoding="utf-8")
    runtime, admin = serve(pack, db_url, tmp_path / "files")
    token = user_token(runtime.engine, "rep", ("rep",))
    rep = TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})
    other = rep.post("/api/v1/t/other", json={"name": "x", "n": 1, "flag": True, "day": "2026-01-01"})
    assert other.status_code == 201, other.text
    made = rep.post(
        "/api/v1/t/thing",
        json={
            "t": "x",
            "i": 1,
            "d": 2,
            "b": True,
            "day": "2026-01-01",
            "o": other.json()["id"],
            "ms": ["a"],
            "lines": [{"amount": 3}],
        },
    )
    assert made.status_code == 201, made.text
    yield rep, admin
    runtime.engine.dispose()


def test_the_deepest_accepted_expression_of_each_kind_runs_and_one_level_more_is_refused(
    served: tuple[TestClient, TestClient],
) -> None:
    rep, admin = served
    for name, template, kind in SLOTS:
        levels, deepest_text, too_deep = deepest(template, kind)
        assert levels >= 2, (name, levels)
        answer = rep.get("/api/v1/t/thing", params={"where": deepest_text, "count": "true", "sort": "-o"})
        assert answer.status_code == 200, (name, levels, answer.text[:300])
        exported = admin.get("/api/v1/t/thing/export.csv", params={"where": deepest_text})
        assert exported.status_code == 200, (name, exported.text[:300])
        widget = rep.get(f"/api/v1/t/dashboards/d/widgets/w{SLOTS.index((name, template, kind))}/data")
        assert widget.status_code == 200, (name, widget.text[:300])
        refused = rep.get("/api/v1/t/thing", params={"where": too_deep})
        assert refused.status_code == 422, (name, refused.text[:300])
        problem = refused.json()["errors"][0]
        assert problem["field"] == "query.where", problem
        assert any(why in problem["message"] for why in ("nests", "too large", "parts")), problem


# Nestings inside the WHERE of an aggregate: over child rows (`lines` of a thing) and over
# the records linking to a record (`things` of an other, read through the rep's row scope).
WHERE_SLOTS = [
    ("minus", "-@"),
    ("if else", "IF(amount > 0, amount, @)"),
    ("coalesce", "COALESCE(@, amount)"),
    ("round", "ROUND(@, 2)"),
    ("plus", "@ + 1"),
    ("divide", "2 / @"),
    ("min", "MIN(@, 1)"),
]
WHERE_ROWS = [("thing", "lines", "amount"), ("other", "things", "d")]


def in_where(template: str, rows: str, column: str, levels: int) -> str:
    text = column
    for _ in range(levels):
        text = template.replace("@", text).replace("amount", column)
    return f"COUNT({rows} WHERE {text} > 1) >= 0"


def test_the_deepest_condition_of_an_aggregate_runs_and_one_level_more_is_refused(
    served: tuple[TestClient, TestClient],
) -> None:
    rep, _ = served
    for form, rows, column in WHERE_ROWS:
        for name, template in WHERE_SLOTS:
            levels = 0
            while accepted(in_where(template, rows, column, levels + 1)):
                levels += 1
            assert levels >= 2, (rows, name, levels)
            deepest_text = in_where(template, rows, column, levels)
            answer = rep.get(f"/api/v1/t/{form}", params={"where": deepest_text, "count": "true"})
            assert answer.status_code == 200, (rows, name, levels, answer.text[:300])
            assert answer.json()["total"] == 1, (rows, name, deepest_text)
            too_deep = in_where(template, rows, column, levels + 1)
            refused = rep.get(f"/api/v1/t/{form}", params={"where": too_deep})
            assert refused.status_code == 422, (rows, name, refused.text[:300])


def mixed(rng: random.Random, kind: str, depth: int) -> str:
    """A random well-typed expression of `kind`, mixing every construct, about `depth` deep."""
    if depth <= 0 or rng.random() < 0.1:
        leaves = {
            "int": ["i", "o.n", "LEN(t)", "1"],
            "dec": ["d", "SUM(lines.amount)", "1.5"],
            "bool": ["b", "o.flag", "true"],
            "text": ["t", "o.name", "'a'"],
            "date": ["day", "o.day", "TODAY()"],
        }
        return rng.choice(leaves[kind])

    def g(k: str) -> str:
        return mixed(rng, k, depth - 1)

    choices = {
        "int": [
            lambda: f"({g('int')} {rng.choice('+-*')} {g('int')})",
            lambda: f"-{g('int')}",
            lambda: f"IF({g('bool')}, {g('int')}, {g('int')})",
            lambda: f"IFS({g('bool')}, {g('int')}, {g('bool')}, {g('int')})",
            lambda: f"COALESCE({g('int')}, {g('int')})",
            lambda: f"ABS({g('int')})",
            lambda: f"MIN({g('int')}, {g('int')})",
            lambda: f"MAX({g('int')}, {g('int')}, 3)",
            lambda: f"LEN({g('text')})",
            lambda: f"YEAR({g('date')})",
            lambda: f"DAYS_BETWEEN({g('date')}, {g('date')})",
        ],
        "dec": [
            lambda: f"({g('dec')} / {g('int')})",
            lambda: f"ROUND({g('dec')}, 2)",
            lambda: f"({g('dec')} {rng.choice('+-*')} {g('dec')})",
            lambda: f"IF({g('bool')}, {g('dec')}, {g('dec')})",
        ],
        "bool": [
            lambda: f"({g('bool')} {rng.choice(['and', 'or'])} {g('bool')})",
            lambda: f"not {g('bool')}",
            lambda: f"({g('int')} {rng.choice(['==', '<', '>=', '!='])} {g('int')})",
            lambda: f"({g('text')} {rng.choice(['<', '=='])} {g('text')})",
            lambda: f"({g('int')} in [{g('int')}, {g('int')}])",
            lambda: f"({g('int')} not in [1, 2, 3])",
            lambda: f"IS_EMPTY({g('text')})",
            lambda: f"CONTAINS({g('text')}, {g('text')})",
            lambda: f"STARTS_WITH({g('text')}, {g('text')})",
            lambda: f"CONTAINS(ms, {g('text')})",
            lambda: f"({g('date')} == null)",
        ],
        "text": [
            lambda: (
                "CONCAT(" + ", ".join(g(rng.choice(["text", "int"])) for _ in range(rng.randint(1, 4))) + ")"
            ),
            lambda: f"LOWER({g('text')})",
            lambda: f"UPPER({g('text')})",
            lambda: f"IF({g('bool')}, {g('text')}, {g('text')})",
            lambda: f"COALESCE({g('text')}, {g('text')})",
            lambda: f"MIN({g('text')}, 'b')",
        ],
        "date": [
            lambda: f"ADD_DAYS({g('date')}, {g('int')})",
            lambda: f"IF({g('bool')}, {g('date')}, {g('date')})",
            lambda: f"COALESCE({g('date')}, {g('date')})",
        ],
    }
    return rng.choice(choices[kind])()


@functools.cache
def near_the_limit(count: int = 40) -> list[str]:
    """Mixed conditions the parser accepts with a depth of at least SQL_DEPTH - 12 (seeded)."""
    rng = random.Random(20261203)
    found: list[str] = []
    while len(found) < count:
        text = mixed(rng, "bool", rng.randint(6, 14))
        try:
            node = parse(text)
        except ExpressionError:
            continue
        if sql_depth(node) >= SQL_DEPTH - 12:
            found.append(text)
    return found


def test_mixed_nestings_near_the_limit_run(served: tuple[TestClient, TestClient]) -> None:
    rep, _ = served
    for text in near_the_limit():
        answer = rep.get("/api/v1/t/thing", params={"where": text, "count": "true"})
        assert answer.status_code == 200, (text, answer.text[:300])


def test_what_used_to_overflow_sqlite_is_refused_when_parsed() -> None:
    for text in (
        "CONCAT(" * 20 + "t" + ")" * 20 + " == 'x'",
        "IF(true, " * 38 + "1" + ", 0)" * 38 + " == 1",
        " - ".join(["i"] * 120) + " == 0",
        "CONCAT(" + ", ".join(["t"] * 150) + ") == 'x'",
    ):
        with pytest.raises(ExpressionError, match="nests too deeply"):
            parse(text)
    with pytest.raises(ExpressionError, match="nests too deeply") as caught:
        parse("b or " + "IF(b, 1, " * 15 + "2" + ")" * 15 + " == 1")
    assert caught.value.offset > 5  # points inside the nesting, not at its start


def test_flat_chains_cost_nothing_however_long() -> None:
    for text in (
        " and ".join(["i == 1"] * 80),
        " or ".join(["b"] * 180),
        " + ".join(["i"] * 180) + " == 1",
        " * ".join(["i"] * 180) + " == 1",
    ):
        assert sql_depth(parse(text)) <= 2 * 4, text[:20]


def test_arguments_repeated_in_sql_cannot_blow_up() -> None:
    # ROUND on SQLite writes x + x * ε, so each level doubled the SQL: 16 levels hung a worker.
    started = time.monotonic()
    for text in (
        "ROUND(" * 16 + "d" + ", 2)" * 16 + " > 1",
        "ADD_DAYS(" * 8 + "day" + ", i)" * 8 + " == TODAY()",
        "MIN(" * 12 + "i" + ", i)" * 12 + " == 1",
    ):
        with pytest.raises(ExpressionError, match="too large"):
            parse(text)
    assert time.monotonic() - started < 1
    assert sql_size(parse("ROUND(" * 8 + "d" + ", 2)" * 8 + " > 1")) <= SQL_SIZE


# -- request bodies ------------------------------------------------------------------


def call(
    app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, dict[str, Any], int]:
    """Call the ASGI app directly: the status, the JSON answer and how many chunks it read."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        await asyncio.sleep(3600)  # the client would wait for an answer
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body else {}, pulled


@pytest.fixture
def small_limits(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, str]]:
    monkeypatch.setenv(MAX_BODY_ENV, "64k")
    monkeypatch.setenv(MAX_UPLOAD_ENV, "256k")
    pack = write_pack(
        tmp_path / "pack", {"thing": FORMS["thing"], "other": FORMS["other"], "line": FORMS["line"]}
    )
    write_files(pack, {"app.yaml": APP})
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    yield runtime, admin_token(runtime.engine)
    runtime.engine.dispose()


def test_a_declared_body_over_the_limit_is_refused_before_a_byte_is_read(
    small_limits: tuple[Runtime, str],
) -> None:
    runtime, token = small_limits
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    status, answer, pulled = call(
        runtime.api, "POST", "/api/v1/t/thing", {**headers, "content-length": str(65 * 1024)}, [b"{}"]
    )
    assert (status, pulled) == (413, 0)
    assert answer["errors"][0]["code"] == "too_large" and "65536 bytes" in answer["errors"][0]["message"]
    status, _, pulled = call(runtime.api, "POST", "/api/v1/t/thing", headers, [b'{"t": "x"', b', "i": 1}'])
    assert (status, pulled) == (201, 2)


def test_a_streamed_body_stops_at_the_limit(small_limits: tuple[Runtime, str]) -> None:
    runtime, token = small_limits
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    chunks = [b'{"t": "'] + [b"x" * 16 * 1024] * 100 + [b'"}']  # 1.6 MB, chunked, no length given
    status, answer, pulled = call(runtime.api, "POST", "/api/v1/t/thing", headers, chunks)
    assert status == 413 and pulled == 5, (status, pulled)
    assert answer["errors"][0]["code"] == "too_large"
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})
    form = client.post(
        "/login",
        content=b"username=" + b"a" * 70 * 1024,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 413


def test_an_upload_stops_streaming_at_the_file_limit(
    small_limits: tuple[Runtime, str], tmp_path: Path
) -> None:
    runtime, token = small_limits
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    chunks = [head] + [b"\x00" * 256 * 1024] * 80 + [f"\r\n--{boundary}--\r\n".encode()]  # 20 MiB
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": f"multipart/form-data; boundary={boundary}",
    }
    status, answer, pulled = call(runtime.api, "POST", "/api/v1/files", headers, chunks)
    # 256 KiB of file and 1 MiB for the framing: the sixth chunk passes the limit, the rest is never read
    assert (status, pulled) == (413, 6), (status, pulled, answer)
    assert answer["errors"][0]["code"] == "too_large"
    assert not [p for p in (tmp_path / "files").rglob("*") if p.is_file()], "nothing is kept"
    small = [head, b"x" * 1000, f"\r\n--{boundary}--\r\n".encode()]
    status, answer, _ = call(runtime.api, "POST", "/api/v1/files", headers, small)
    assert status == 201 and answer["size"] == 1000
    over = [head, b"x" * (256 * 1024 + 1), f"\r\n--{boundary}--\r\n".encode()]
    status, answer, _ = call(runtime.api, "POST", "/api/v1/files", headers, over)
    assert status == 422 and answer["errors"][0]["code"] == "max_size"  # the file itself, exactly


def test_sizes_are_read_from_serve_options_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [parse_size(t) for t in ("2097152", "512k", "2M", "2MiB", "1g", " 3 kb ")] == [
        2097152,
        524288,
        2097152,
        2097152,
        1024**3,
        3072,
    ]
    with pytest.raises(ValueError):
        parse_size("lots")
    monkeypatch.delenv(MAX_BODY_ENV, raising=False)
    monkeypatch.delenv(MAX_UPLOAD_ENV, raising=False)
    assert (max_body(), max_upload()) == (2 * 1024 * 1024, 50 * 1024 * 1024)
    monkeypatch.setenv(MAX_UPLOAD_ENV, "5M")
    args = cli_parser().parse_args(["serve", "pack", "--max-body", "1M"])
    assert (args.max_body, args.max_upload) == (1024 * 1024, 5 * 1024 * 1024)
