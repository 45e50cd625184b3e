"""Field keys come from labels, in English or in pinyin, and never collide."""

from __future__ import annotations

from builder.designer.keys import key_from_label


def test_english_labels_become_snake_case_keys() -> None:
    assert key_from_label("Industry segment") == "industry_segment"
    assert key_from_label("Café crème (EUR)") == "cafe_creme_eur"


def test_chinese_labels_become_pinyin_keys() -> None:
    assert key_from_label("所属行业") == "suo_shu_hang_ye"
    assert key_from_label("预算 2026") == "yu_suan_2026"


def test_keys_are_unique_valid_identifiers() -> None:
    assert key_from_label("Industry", ["industry", "industry_2"]) == "industry_3"
    assert key_from_label("2026 budget") == "f_2026_budget"
    assert key_from_label("!!!") == "field"
    assert len(key_from_label("x" * 100)) == 40
