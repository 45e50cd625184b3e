"""A settings change moves records: automatic transitions whose guard now holds are taken by a sweep."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.process.engine import engine_for
from runtime.process.sweeps import BATCH
from runtime.process.worker import Worker
from tests.support import serve, write_files, write_pack

SETTINGS = """
form: settings
label: Settings
single: true
fields:
  - {key: threshold, type: integer, label: Threshold, default: 60, required: true}
"""

LEAD = """
form: lead
label: Lead
fields:
  - {key: name, type: text, label: Name}
  - {key: score, type: integer, label: Score}
  - {key: qualifies, type: boolean, label: Qualifies, formula: "score >= settings.threshold"}
  - key: status
    type: select
    label: Status
    options: [new, qualified, lost]
"""

WORKFLOW = """
workflow: lead
form: lead
field: status
states:
  - {key: new, initial: true}
  - {key: qualified}
  - {key: lost, final: true}
transitions:
  - {action: qualify, from: new, to: qualified, auto: true, guard: qualifies}
  - {action: lose, from: [new, qualified], to: lost}
"""


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    pack = write_pack(tmp_path / "pack", {"settings": SETTINGS, "lead": LEAD})
    write_files(pack, {"workflows/lead.yaml": WORKFLOW})
    runtime, client = serve(pack, db_url, tmp_path / "files")
    yield runtime, client
    runtime.engine.dispose()


def statuses(client: TestClient) -> dict[str, str]:
    items = client.get("/api/v1/t/lead", params={"limit": "500"}).json()["items"]
    return {item["name"]: item["status"] for item in items}


def run_worker(runtime: Runtime) -> int:
    return Worker(engine_for(runtime.service), "test").run_until_idle().done


def test_a_fresh_install_has_its_settings_record_with_the_defaults(app: tuple[Runtime, TestClient]) -> None:
    _, client = app
    [settings] = client.get("/api/v1/t/settings").json()["items"]
    assert settings["threshold"] == 60
    assert client.post("/api/v1/t/settings", json={}).json()["errors"][0]["code"] == "single"
    client.post("/api/v1/t/lead", json={"name": "hot", "score": 70})
    assert statuses(client) == {"hot": "qualified"}, "formulas read the settings from the first record"


def test_lowering_the_threshold_qualifies_the_open_leads_that_now_reach_it(
    app: tuple[Runtime, TestClient],
) -> None:
    runtime, client = app
    for name, score in [("cold", 30), ("warm", 50), ("hot", 70), ("gone", 55)]:
        assert client.post("/api/v1/t/lead", json={"name": name, "score": score}).status_code == 201
    gone = next(i for i in client.get("/api/v1/t/lead").json()["items"] if i["name"] == "gone")
    assert client.post(f"/api/v1/t/lead/{gone['id']}/transitions/lose", json={}).status_code == 200
    settings = client.get("/api/v1/t/settings").json()["items"][0]
    assert client.patch(f"/api/v1/t/settings/{settings['id']}", json={"threshold": 45}).status_code == 200
    assert statuses(client)["warm"] == "new", "the sweep is the worker's: the admin's save stays quick"
    run_worker(runtime)
    assert statuses(client) == {"cold": "new", "warm": "qualified", "hot": "qualified", "gone": "lost"}
    history = client.get(f"/api/v1/t/lead/{gone['id']}/history").json()["items"]
    assert [h["action"] for h in history].count("transition") == 1, "a final state is left alone"


def test_a_sweep_works_in_batches_and_takes_each_transition_once(app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    many = [{"name": f"lead {n}", "score": 50} for n in range(BATCH + 5)]
    assert client.post("/api/v1/t/lead/bulk", json=many).status_code == 201
    settings = client.get("/api/v1/t/settings").json()["items"][0]
    client.patch(f"/api/v1/t/settings/{settings['id']}", json={"threshold": 50})
    client.patch(f"/api/v1/t/settings/{settings['id']}", json={"threshold": 40})  # two sweeps queued
    assert run_worker(runtime) >= 3  # two sweeps, and the second batch of the first
    assert set(statuses(client).values()) == {"qualified"}
    first = client.get("/api/v1/t/lead", params={"limit": "1", "sort": "id"}).json()["items"][0]
    history = client.get(f"/api/v1/t/lead/{first['id']}/history").json()["items"]
    assert [h.get("changes", {}).get("action") for h in history].count("qualify") == 1
