"""Rendering without a database: the sandbox, the filters, and PDF that fetches nothing."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from runtime.documents.environment import chinese_amount, environment, paragraphs
from runtime.documents.render import Renderer, pdf
from runtime.loading.loader import load_pack
from runtime.model import App
from runtime.records.errors import InvalidRecord
from tests.runtime.documents.doc_pack import write_doc_pack


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    return load_pack(write_doc_pack(tmp_path_factory.mktemp("pack")))


def renderer(app: App, text: str) -> Renderer:
    return Renderer(app.model_copy(update={"document_templates": {"t.html.j2": text}}))


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("0", "零元整"),
        ("10", "壹拾元整"),
        ("1010", "壹仟零壹拾元整"),
        ("10001", "壹万零壹元整"),
        ("100000001", "壹亿零壹元整"),
        ("10000100", "壹仟万零壹佰元整"),
        ("12345.6", "壹万贰仟叁佰肆拾伍元陆角"),
        ("100.05", "壹佰元零伍分"),
        ("0.5", "伍角"),
        ("394596", "叁拾玖万肆仟伍佰玖拾陆元整"),
        ("-3.10", "负叁元壹角"),
        ("1.005", "壹元零壹分"),  # rounded half up to the fen
        (None, ""),
        ("abc", ""),
    ],
)
def test_amounts_in_capital_chinese_numerals(amount: str | None, words: str) -> None:
    assert chinese_amount(amount) == words


def test_filters_follow_the_documents_language() -> None:
    template = environment({}).from_string(
        "{{ v | money }}|{{ v | money('USD') }}|{{ p | percent }}|{{ d | date }}|"
        "{{ t | datetime }}|{{ v | number }}"
    )
    app = {"currency": "CNY", "timezone": "Asia/Shanghai"}
    values = {"v": "1234.5", "p": "0.125", "d": "2026-12-31", "t": "2026-12-01T01:30:00Z", "app": app}
    assert (
        template.render(language="zh", **values)
        == "¥1,234.50|US$1,234.50|12.5%|2026年12月31日|2026-12-01 09:30|1,234.5"
    )
    assert template.render(language="en", **values).split("|")[:4] == [
        "CN¥1,234.50",
        "$1,234.50",
        "12.5%",
        "December 31, 2026",
    ]


def test_paragraphs_escape_and_keep_line_breaks() -> None:
    assert str(paragraphs("a<b>\nc\n\n\nd")) == "<p>a&lt;b&gt;<br>c</p><p>d</p>"
    assert str(paragraphs(None)) == ""


def test_the_sandbox_keeps_templates_to_their_values(app: App) -> None:
    """Python's insides and underscore names are out of reach (they render as nothing)."""
    reach = "[{{ ''.__class__.__mro__ }}][{{ settings._read }}][{{ settings.__class__ }}]"
    assert renderer(app, reach).html("t.html.j2", {"settings": _Holder()}) == "[][][]"
    with pytest.raises(InvalidRecord) as caught:
        renderer(app, "{{ ''.__class__.__mro__[1].__subclasses__() }}").html("t.html.j2", {})
    assert caught.value.problems[0].code == "template"
    escaped = renderer(app, "{{ v }}").html("t.html.j2", {"v": "<script>x</script>"})
    assert escaped == "&lt;script&gt;x&lt;/script&gt;"


class _Holder:
    _read = "secret"


def test_pdf_loads_nothing_from_outside(tmp_path: Path) -> None:
    leak = tmp_path / "leak.css"
    leak.write_text('body::after { content: "LEAKED" }', encoding="utf-8")
    html = (
        f'<html><head><link rel="stylesheet" href="file://{leak}">'
        f'<style>@import url("file://{leak}");</style></head>'
        f'<body><p>合同总金额 ¥394,596.00</p><img src="file:///etc/hostname"></body></html>'
    )
    content = pdf(html)
    text = PdfReader(BytesIO(content)).pages[0].extract_text()
    assert "合同总金额" in text and "LEAKED" not in text
