"""The README stays true: its curl examples, run in order against the sales pack as `make run`
serves it (published, demo users and data), answer as the README says.

The calls are read from the README itself — every `curl` line of its `sh` blocks, with the
`TOKEN=`/`AUTH=`/`MGR=` lines before them — and sent through the ASGI app with the same
method, path, headers and body. A call must answer 2xx, unless its comment says otherwise
(`# a bad record answers 422 …`, `# 201: the new quote`), and an export written with `-o`
must be an Excel file.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from builder.scenarios.harness import create_people, demo_users
from runtime.boot import start
from runtime.db import write
from runtime.identity.tokens import create_token
from runtime.seed import demo_file, seed_demo
from tests.support import REPO, SALES

README = REPO / "README.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
TOKEN_CALL = re.compile(r"\$\(\.venv/bin/formloom token create --user ([\w.]+)\)")
VARIABLE = re.compile(r"\$([A-Z_]+)|\$\{([A-Z_]+)\}")
STATUS = re.compile(r"\banswers (\d{3})\b|^\s*(\d{3})\b")


@dataclass
class Call:
    """One curl line of the README."""

    line: int
    text: str
    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    output: str | None = None
    status: int | None = None  # what its comment says it answers; None: any 2xx


def readme_calls(text: str) -> list[Call]:
    """The curl calls of the README's `sh` blocks, with the shell variables they use expanded."""
    calls: list[Call] = []
    variables: dict[str, str] = {}
    for block in SH_BLOCK.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).split("\n")
        comment = ""
        index = 0
        while index < len(lines):
            number, command = first + index, lines[index]
            while (command.endswith("\\") or not _balanced(command)) and index + 1 < len(lines):
                index += 1
                joined = command[:-1] if command.endswith("\\") else command + "\n"
                command = joined + " " + lines[index].strip()
            index += 1
            stripped = command.strip()
            if stripped.startswith("#"):
                comment += " " + stripped.lstrip("#")
                continue
            if not stripped:
                comment = ""
                continue
            expanded = TOKEN_CALL.sub(lambda m: f"@token:{m.group(1)}@", stripped)
            expanded = VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), expanded)
            trailing = command.split(" # ", 1)[1] if " # " in command else ""
            words = shlex.split(expanded, comments=True)
            if words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                name, value = words[0].split("=", 1)
                variables[name] = value
            elif words and words[0] == "curl":
                calls.append(_curl(number, stripped, words[1:], comment + " " + trailing))
            comment = ""
    return calls


def _balanced(command: str) -> bool:
    """Whether every quote the command opens is closed (a quoted body may span lines)."""
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def _curl(line: int, text: str, words: list[str], comment: str) -> Call:
    call = Call(line, text)
    options = iter(words)
    for word in options:
        if word == "-X":
            call.method = next(options)
        elif word == "-H":
            name, value = next(options).split(":", 1)
            call.headers[name.strip()] = value.strip()
        elif word == "-d":
            call.body = next(options)
        elif word == "-o":
            call.output = next(options)
        elif not word.startswith("-"):
            call.url = word
    if call.body is not None and "-X" not in words:
        call.method = "POST"
    found = STATUS.search(comment)
    if found:
        call.status = int(found.group(1) or found.group(2))
    return call


def test_the_readme_curl_lines_are_read() -> None:
    calls = readme_calls(README.read_text(encoding="utf-8"))
    assert len(calls) >= 10
    first = calls[0]
    assert (first.method, urlsplit("http://" + first.url).path) == ("POST", "/api/v1/sales/account")
    assert first.headers["Authorization"].startswith("Bearer @token:li.rep@")
    assert any(c.status == 422 for c in calls)
    assert all(c.url.startswith("localhost:8000/") for c in calls), [c.text for c in calls]


def test_the_readme_examples_answer_as_it_says(db_url: str, tmp_path: Path) -> None:
    runtime = start([SALES], db_url, tmp_path / "files")  # published, as `make run` does
    try:
        create_people(runtime.engine, *demo_users(SALES))  # without passwords: the calls use tokens
        data = demo_file(SALES)
        assert data is not None
        seed_demo(runtime.service, "sales", data)
        created: dict[str, Any] = {}
        tokens: dict[str, str] = {}

        def token(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in tokens:
                with write(runtime.engine) as conn:
                    tokens[name] = create_token(conn, name, "readme")
            return tokens[name]

        client = TestClient(runtime.api)
        for call in readme_calls(README.read_text(encoding="utf-8")):
            parts = urlsplit("http://" + call.url)
            headers = {k: re.sub(r"@token:([\w.]+)@", token, v) for k, v in call.headers.items()}
            answer = client.request(
                call.method,
                parts.path + (f"?{parts.query}" if parts.query else ""),
                headers=headers,
                content=call.body.encode("utf-8") if call.body is not None else None,
            )
            said = f"answered {answer.status_code}: {answer.text[:600]}"
            where = f"README.md:{call.line}: {call.text}\n  {said}"
            if call.status is None:
                assert 200 <= answer.status_code < 300, where
            else:
                assert answer.status_code == call.status, where
            if call.output and call.output.endswith(".xlsx"):
                assert answer.content[:2] == b"PK", where  # an Office Open XML file is a zip
            if call.method == "POST" and answer.status_code == 201:
                created.setdefault(parts.path, answer.json())
        # "create an account and a lead linked to it"
        account, lead = created["/api/v1/sales/account"], created["/api/v1/sales/lead"]
        assert lead["account"]["id"] == account["id"], (lead["account"], account["id"])
    finally:
        runtime.engine.dispose()


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("# x answers 422 with y", 422),
        ("curl -s -X POST localhost:8000/a   # 201: the new one", 201),
    ],
)
def test_a_comment_names_the_status(snippet: str, expected: int) -> None:
    command = f"{snippet}\ncurl -s localhost:8000/b" if snippet.startswith("#") else snippet
    text = f"```sh\n{command}\n```\n"
    (call,) = readme_calls(text)
    assert call.status == expected
