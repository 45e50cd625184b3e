"""The generated form has an input for every field type, and what it sends is stored."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.identity.actor import SYSTEM
from runtime.model.fields import FIELD_TYPES
from tests.support import serve, web_client, write_pack

# One field of every type; the test below fails when a new type has no entry here.
EVERY_TYPE = {
    "text": ("{type: text}", "plain"),
    "long_text": ("{type: long_text}", "line one\nline two"),
    "email": ("{type: email}", "ann@example.com"),
    "phone": ("{type: phone, region: CN}", "13800138000"),
    "url": ("{type: url}", "https://example.com"),
    "integer": ("{type: integer}", "1,234"),
    "decimal": ("{type: decimal, scale: 2}", "3.25"),
    "money": ("{type: money, currency: USD}", "99.90"),
    "percent": ("{type: percent}", "12.5"),
    "boolean": ("{type: boolean}", "true"),
    "date": ("{type: date}", "2026-12-01"),
    "datetime": ("{type: datetime}", "2026-12-01T08:00"),
    "select": ("{type: select, options: [a, b]}", "b"),
    "multi_select": ("{type: multi_select, options: [a, b]}", "a"),
    "link": ("{type: link, to: other}", None),
    "table": ("{type: table, form: row}", None),
    "user": ("{type: user}", None),
    "department": ("{type: department}", None),
    "auto_number": ('{type: auto_number, pattern: "N-{####}"}', None),
    "attachment": ("{type: attachment}", None),
}
STORED = {
    "long_text": "line one\nline two",
    "phone": "+8613800138000",
    "integer": 1234,
    "decimal": "3.25",
    "money": "99.90",
    "percent": "0.125000",
    "boolean": True,
    "datetime": "2026-12-01T08:00:00Z",
    "multi_select": ["a"],
}


def pack(root: Path) -> Path:
    fields = "\n".join(f"  - {{key: f_{kind}, {spec[1:-1]}}}" for kind, (spec, _) in EVERY_TYPE.items())
    return write_pack(
        root,
        {
            "every": f"form: every\nlabel: {{en: Every}}\nfields:\n{fields}\n",
            "other": "form: other\nlabel: {en: Other}\ntitle_field: name\nfields: [{key: name, type: text}]",
            "row": "form: row\nlabel: {en: Row}\nchild: true\nfields: [{key: item, type: text}]\n",
        },
    )


def test_every_field_type_has_an_entry_here() -> None:
    assert set(EVERY_TYPE) == set(FIELD_TYPES)


def test_the_form_draws_an_input_for_every_field_type_and_stores_what_it_sends(
    db_url: str, tmp_path: Path
) -> None:
    runtime, _ = serve(pack(tmp_path / "pack"), db_url, tmp_path / "files")
    other = runtime.service.create("t", "other", {"name": "Target"}, SYSTEM)
    admin = web_client(runtime, "ada", ("admin",))
    page = admin.get("/app/t/every/new").text
    for kind in FIELD_TYPES:
        assert f'data-field="f_{kind}"' in page, kind
    assert 'type="email"' in page and 'type="tel"' in page and 'type="url"' in page
    assert 'type="date"' in page and 'type="datetime-local"' in page and 'type="file"' in page
    assert re.search(r'<span class="affix" aria-hidden="true">USD</span>', page)
    sent = [(f"f_{kind}", value) for kind, (_, value) in EVERY_TYPE.items() if value is not None]
    sent = [("f_boolean", "false"), *sent, ("f_link", str(other["id"])), ("_present", "f_table")]
    sent += [("f_table[0].item", "first row")]
    answer = admin.post_form("/app/t/every/new", sent)
    assert answer.status_code == 303, re.findall(r'class="error"[^>]*>([^<]*)', answer.text)
    record = runtime.service.list_page("t", "every", [], SYSTEM)["items"][0]
    for kind, (_, value) in EVERY_TYPE.items():
        if value is not None:
            assert record[f"f_{kind}"] == STORED.get(kind, value), kind
    assert record["f_link"]["display"] == "Target"
    assert record["f_table"][0]["item"] == "first row"
    assert record["f_auto_number"] == "N-0001"
    assert record["f_user"] is None
    assert record["f_department"] is None
