"""The designer speaks Chinese and English, and offers every field type in its palette."""

from __future__ import annotations

import re

from builder.designer.pages import HERE, catalog
from runtime.model.fields import FIELD_TYPES


def test_both_catalogs_have_the_same_keys() -> None:
    assert set(catalog("zh")) == set(catalog("en"))


def test_every_string_the_designer_uses_is_in_its_catalogs() -> None:
    used: set[str] = set()
    for path in [*(HERE / "templates").glob("*.html"), *HERE.glob("*.py")]:
        used |= set(
            re.findall(r"""\bt\(\s*["'](d\.[a-z_.0-9]*[a-z0-9])["']""", path.read_text(encoding="utf-8"))
        )
    script = (HERE / "static" / "designer.js").read_text(encoding="utf-8")
    used |= set(re.findall(r"""\bt\(["'](d\.[a-z_.0-9]+)["']\)""", script))
    for language in ("zh", "en"):
        assert used - set(catalog(language)) == set(), language


def test_every_field_type_has_a_name_in_the_palette() -> None:
    for language in ("zh", "en"):
        assert {f"type.{kind}" for kind in FIELD_TYPES} <= set(catalog(language))


def test_the_form_designer_page_hands_the_script_every_string_it_shows() -> None:
    script = (HERE / "static" / "designer.js").read_text(encoding="utf-8")
    used = set(re.findall(r"""\bt\(["'](d\.[a-z_.0-9]+)["']\)""", script))
    page = (HERE / "templates" / "designer_form.html").read_text(encoding="utf-8")
    handed = set(re.findall(r'"(d\.[a-z_]+)"', page))
    assert used - handed == set()
