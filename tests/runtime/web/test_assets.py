"""Front-end packages come from npm (package.json and its lockfile) and are served, never committed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.web.assets import VENDOR, missing_vendor_files
from tests.support import REPO, serve, write_pack

LEAD = """\
form: note
label: {en: Note}
fields: [{key: text, type: text}]
"""


def test_the_pages_packages_are_locked_and_installed() -> None:
    package = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO / "package-lock.json").read_text(encoding="utf-8"))
    assert set(package["dependencies"]) == {"htmx.org", "@alpinejs/csp", "echarts", "sortablejs"}
    assert all(f"node_modules/{name}" in lock["packages"] for name in package["dependencies"])
    assert missing_vendor_files() == [], "make run / make test install them with npm ci"


def test_node_modules_is_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "node_modules"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""


def test_static_files_are_served_without_a_session(tmp_path: Path) -> None:
    runtime, _ = serve(write_pack(tmp_path / "pack", {"note": LEAD}), f"sqlite:///{tmp_path}/t.db", tmp_path)
    anonymous = TestClient(runtime.api)
    for name in VENDOR:
        answer = anonymous.get(f"/static/vendor/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
    assert anonymous.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert anonymous.get("/static/vendor/other.js").status_code == 404
    assert anonymous.get("/static/..%2Fsession.py").status_code == 404


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORMLOOM_NODE_MODULES", str(tmp_path / "empty"))
    assert missing_vendor_files() == sorted(VENDOR.values()) or set(missing_vendor_files()) == set(
        VENDOR.values()
    )
    runtime, _ = serve(write_pack(tmp_path / "pack", {"note": LEAD}), f"sqlite:///{tmp_path}/t.db", tmp_path)
    answer = TestClient(runtime.api).get("/static/vendor/htmx.js")
    assert answer.status_code == 404 and "npm ci" in answer.text
