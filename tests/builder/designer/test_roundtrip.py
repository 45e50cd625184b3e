"""Editing definition files keeps what people wrote: comments, key order, quoting and layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.designer.roundtrip import merge, open_document, plain
from tests.support import REPO

# the designer edits definitions; scenario files under tests/ are written by hand only
SALES_FILES = sorted(
    path for path in (REPO / "definitions" / "sales").rglob("*.yaml") if "tests" not in path.parts[-2:]
)


@pytest.mark.parametrize("path", SALES_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_sales_file_is_written_back_exactly_as_read(path: Path) -> None:
    document = open_document(path)
    merge(document.data, plain(document.data))
    assert document.text() == path.read_text(encoding="utf-8")


COMMENTED = """\
# The lead form.
form: lead
label: {zh: 线索, en: Lead}   # shown in the menu
fields:
  # --- Who
  - key: company
    type: text
    required: true   # a lead always names a company
  - key: email
    type: email

  # --- Money
  - key: budget
    type: money
    min: 0
layout:
  - section: {zh: 联系人, en: Contact}
    fields: [company, email]
"""


def edit(tmp_path: Path, change: object) -> str:
    path = tmp_path / "lead.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    document = open_document(path)
    data = plain(document.data)
    change(data)  # type: ignore[operator]
    merge(document.data, data)
    document.save()
    return path.read_text(encoding="utf-8")


def test_a_new_field_between_two_keeps_every_comment_and_the_key_order(tmp_path: Path) -> None:
    def add(data: dict) -> None:
        data["fields"].insert(
            1, {"key": "industry", "type": "select", "label": {"en": "Industry"}, "options": [{"key": "it"}]}
        )
        data["layout"][0]["fields"].insert(1, "industry")

    text = edit(tmp_path, add)
    for comment in (
        "# The lead form.",
        "# shown in the menu",
        "# --- Who",
        "# a lead always names a company",
        "# --- Money",
    ):
        assert comment in text
    assert text.index("key: company") < text.index("key: industry") < text.index("key: email")
    assert "    label: {en: Industry}\n    options:\n      - {key: it}\n" in text, (
        "written as a consultant would"
    )
    assert "fields: [company, industry, email]" in text
    assert [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "#"))] == [
        "form",
        "label",
        "fields",
        "layout",
    ]


def test_a_changed_value_changes_only_its_line(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["fields"][2]["min"] = 100
        data["fields"][0]["required"] = False

    text = edit(tmp_path, change)
    original = COMMENTED.splitlines()
    changed = [(a, b) for a, b in zip(original, text.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            "    required: true   # a lead always names a company",
            "    required: false  # a lead always names a company",  # the comment keeps its column
        ),
        ("    min: 0", "    min: 100"),
    ]


def test_moving_and_removing_fields_keep_the_other_fields_comments(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["fields"] = [data["fields"][2], data["fields"][0]]
        data["layout"][0]["fields"] = ["company"]

    text = edit(tmp_path, change)
    assert "key: email" not in text
    assert text.index("key: budget") < text.index("key: company")
    assert "# a lead always names a company" in text and "# The lead form." in text
