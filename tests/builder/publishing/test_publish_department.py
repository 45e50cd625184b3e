"""Publishing department fields: added and retired like user fields; other types do not become one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from builder.publishing.publish import PublishRefused, make_plan, publish
from runtime.boot import start
from runtime.db import make_engine
from runtime.loading.loader import load_pack
from tests.support import write_pack

TICKET = """\
form: ticket
label: Ticket
fields:
  - {key: title, type: text}
  - {key: code, type: text}
"""


def test_a_department_field_is_added_with_its_foreign_key_and_other_types_do_not_become_one(
    db_url: str, tmp_path: Path
) -> None:
    runtime = start([write_pack(tmp_path / "v1", {"ticket": TICKET})], db_url, tmp_path / "files")
    runtime.service.create("t", "ticket", {"title": "a", "code": "sales"})
    runtime.engine.dispose()
    engine = make_engine(db_url)
    try:
        added = TICKET + "  - {key: unit, type: department, default: current_user_department}\n"
        plan = make_plan(engine, load_pack(write_pack(tmp_path / "v2", {"ticket": added})))
        assert [s.words.split(" (")[0] for s in plan.steps] == ["add column unit"]
        publish(engine, load_pack(tmp_path / "v2"), backups=tmp_path / "backups")
        keys = inspect(engine).get_foreign_keys("t__ticket")
        references = {(tuple(k["constrained_columns"]), k["referred_table"]) for k in keys}
        assert (("unit",), "formloom_departments") in references
        retyped = added.replace("{key: code, type: text}", "{key: code, type: department}")
        with pytest.raises(PublishRefused) as caught:
            publish(
                engine, load_pack(write_pack(tmp_path / "v3", {"ticket": retyped})), backups=tmp_path / "b"
            )
        assert "a text field cannot become a department field" in caught.value.plan.render(
            engine.dialect.name
        )
        removed = TICKET  # dropping it retires the column, as for any field
        publish(engine, load_pack(write_pack(tmp_path / "v4", {"ticket": removed})), backups=tmp_path / "b")
        assert "unit" in {c["name"] for c in inspect(engine).get_columns("t__ticket")}
    finally:
        engine.dispose()
