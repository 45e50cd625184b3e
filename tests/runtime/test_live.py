"""A running server follows a publish without a restart."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event

from builder.publishing.publish import publish
from runtime import live
from runtime.boot import start
from runtime.loading.loader import load_pack
from tests.support import admin_token, count_queries, write_pack

NOTE = """\
form: note
label: Note
fields:
  - {key: title, type: text}
"""


def test_a_publish_reaches_a_running_server(db_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    runtime = start([write_pack(tmp_path / "v1", {"note": NOTE})], db_url, tmp_path / "files")
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"})
    assert client.post("/api/v1/t/note", json={"title": "first"}).status_code == 201
    assert client.post("/api/v1/t/note", json={"title": "x", "body": "y"}).status_code == 422

    changed = NOTE + "  - {key: body, type: long_text}\n"
    publish(
        runtime.engine,
        load_pack(write_pack(tmp_path / "v2", {"note": changed})),
        backups=tmp_path / "backups",
    )

    created = client.post("/api/v1/t/note", json={"title": "second", "body": "now known"})
    assert created.status_code == 201, created.text
    assert created.json()["body"] == "now known"
    assert "body" in client.get("/openapi.json").json()["components"]["schemas"]["TNote"]["properties"]
    assert client.get("/api/v1/t/note?sort=id").json()["items"][0]["body"] is None
    runtime.engine.dispose()


def test_without_a_change_the_server_keeps_its_api(db_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    runtime = start([write_pack(tmp_path / "v1", {"note": NOTE})], db_url, tmp_path / "files")
    before = runtime.live.api
    assert runtime.live.refresh() is False
    assert runtime.live.api is before
    runtime.engine.dispose()


def test_the_publish_check_is_not_counted_as_a_statement_of_the_request(  # type: ignore[no-untyped-def]
    db_url: str, tmp_path: Path, monkeypatch
) -> None:
    runtime = start([write_pack(tmp_path / "v1", {"note": NOTE})], db_url, tmp_path / "files")
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"})
    everything: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *a: everything.append(a[2]))
    counted: dict[float, list[str]] = {}
    for every in (0.0, 3600.0):  # the check runs inside this request, then not at all
        monkeypatch.setattr(live, "CHECK_EVERY", every)
        everything.clear()
        with count_queries(runtime.engine) as counted[every]:
            assert client.get("/api/v1/t/note").status_code == 200
        assert any("formloom_apps" in s for s in everything) is (every == 0.0)
    assert counted[0.0] == counted[3600.0]
    assert not any("formloom_apps" in s for s in counted[0.0])
    runtime.engine.dispose()
