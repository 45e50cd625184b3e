"""The publishing commands (plan, publish, history, export, purge) and serve refusing, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main
from runtime.loading.loader import load_pack
from runtime.schema.published import content_hash
from tests.support import write_pack

CONTACT = """\
form: contact
label: Contact
fields:
  - {key: name, type: text, required: true}
  - {key: phone, type: phone}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_promotion_workflow(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v1 = write_pack(tmp_path / "v1", {"contact": CONTACT})
    code, out, _ = run(capsys, "publish", str(v1), "--db", db_url, "--author", "dev")
    assert code == 0 and "published t 1.0.0 as version #1" in out

    v2 = write_pack(
        tmp_path / "v2",
        {
            "contact": CONTACT.replace(
                "{key: phone, type: phone}", "{key: mobile, type: phone, renamed_from: phone}"
            )
        },
    )
    code, out, _ = run(capsys, "serve", str(v2), "--db", db_url)
    assert code == 1
    code, out, err = run(capsys, "serve", str(v2), "--db", db_url)
    assert "formloom plan" in err and "formloom publish" in err and "Traceback" not in err

    code, out, _ = run(capsys, "plan", str(v2), "--db", db_url)
    assert code == 0
    assert "rename column phone to mobile: the data stays" in out
    assert "RENAME COLUMN phone TO mobile" in out or "RENAME phone TO mobile" in out

    code, out, _ = run(capsys, "publish", str(v2), "--db", db_url, "--author", "ops")
    assert code == 0 and "version #2" in out
    code, out, _ = run(capsys, "history", "--db", db_url)
    assert out.index("ops") < out.index("dev")

    code, out, _ = run(capsys, "export", "--db", db_url, "--out", str(tmp_path / "restored"))
    assert code == 0
    restored = load_pack(tmp_path / "restored" / "t")
    assert content_hash(restored) == content_hash(load_pack(v2))


def test_a_refused_plan_exits_1_and_publish_changes_nothing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.boot import start

    runtime = start([write_pack(tmp_path / "v1", {"contact": CONTACT})], db_url, tmp_path / "files")
    runtime.service.create("t", "contact", {"name": "Wang"})
    runtime.engine.dispose()
    v2 = write_pack(tmp_path / "v2", {"contact": CONTACT + "  - {key: city, type: text, required: true}\n"})
    code, out, _ = run(capsys, "plan", str(v2), "--db", db_url)
    assert code == 1 and "REFUSED" in out and "1 existing row(s) have no value" in out
    code, _, err = run(capsys, "publish", str(v2), "--db", db_url)
    assert code == 1 and "nothing was changed" in err
    code, out, _ = run(capsys, "history", "--db", db_url)
    assert out.count("\n") == 1


def test_purge_lists_then_drops_after_a_backup(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.boot import start

    runtime = start([write_pack(tmp_path / "v1", {"contact": CONTACT})], db_url, tmp_path / "files")
    runtime.service.create("t", "contact", {"name": "Wang", "phone": "13800138000"})
    runtime.engine.dispose()
    v2 = write_pack(tmp_path / "v2", {"contact": CONTACT.replace("  - {key: phone, type: phone}\n", "")})
    assert run(capsys, "publish", str(v2), "--db", db_url)[0] == 0
    code, out, _ = run(capsys, "purge", str(v2), "--db", db_url)
    assert code == 0 and "retired column t__contact.phone" in out and "--yes" in out
    backups = tmp_path / "b"
    code, out, _ = run(capsys, "purge", str(v2), "--db", db_url, "--yes", "--backups", str(backups))
    assert code == 0 and "dropped" in out
    saved = next(backups.glob("*.jsonl")).read_text(encoding="utf-8")
    assert '"value": "+8613800138000"' in saved
    assert "nothing is retired" in run(capsys, "purge", str(v2), "--db", db_url)[1]
