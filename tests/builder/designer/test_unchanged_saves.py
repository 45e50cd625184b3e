"""Saving a definition in the designer without changing anything leaves its file exactly as it was.

Run over every workflow and approval of the sales pack: what the editors show, posted
back as a browser would, must write the same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime.boot import Runtime
from tests.builder.designer.html_forms import submitted
from tests.builder.designer.pack import serve_designer
from tests.support import SALES, WebClient, web_client


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runtime, Path]:
    root = tmp_path_factory.mktemp("sales")
    pack = Path(shutil.copytree(SALES, root / "pack"))
    return serve_designer(pack, f"sqlite:///{root}/sales.db", root), pack


@pytest.fixture(scope="module")
def admin(sales: tuple[Runtime, Path]) -> WebClient:
    return web_client(sales[0], "ada", ("admin",))


def definitions(kind: str) -> list[str]:
    return sorted(p.name for p in (SALES / kind).glob("*.yaml"))


CASES = [(kind, file) for kind in ("workflows", "approvals") for file in definitions(kind)]


@pytest.mark.parametrize(("kind", "file"), CASES)
def test_an_unchanged_save_writes_the_same_file(
    sales: tuple[Runtime, Path], admin: WebClient, kind: str, file: str
) -> None:
    pack = sales[1]
    path = pack / kind / file
    before = path.read_text(encoding="utf-8")
    lines = before.splitlines()
    key = next(line.split(":", 1)[1].strip() for line in lines if line.startswith(kind[:-1] + ":"))
    action = f"/designer/sales/{kind}/{key}"
    page = admin.get(action)
    assert page.status_code == 200
    answer = admin.post_form(action, submitted(page.text, action))
    assert answer.status_code == 200, answer.text[-500:]
    assert path.read_text(encoding="utf-8") == before


@pytest.mark.parametrize("file", definitions("forms"))
def test_a_form_saved_unchanged_from_the_form_designer_writes_the_same_file(
    sales: tuple[Runtime, Path], admin: WebClient, file: str
) -> None:
    pack = sales[1]
    path = pack / "forms" / file
    before = path.read_text(encoding="utf-8")
    key = next(line.split(":", 1)[1].strip() for line in before.splitlines() if line.startswith("form:"))
    form = admin.get(f"/designer/sales/forms/{key}/model").json()["form"]
    answer = admin.post(
        f"/designer/sales/forms/{key}", json={"form": form}, headers={"X-CSRF-Token": admin.csrf}
    )
    assert answer.json()["problems"] == []
    assert path.read_text(encoding="utf-8") == before
