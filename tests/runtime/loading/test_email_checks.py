"""The `email` effect is checked at load: its paths, attachments and templates, each at its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.support import write_files, write_pack

PERSON = """\
form: person
label: Person
fields:
  - {key: name, type: text}
  - {key: email, type: email}
  - {key: phone, type: phone}
  - {key: lang, type: select, options: [zh, en]}
  - {key: visits, type: integer}
"""
ORDER = """\
form: order
label: Order
fields:
  - {key: title, type: text}
  - {key: person, type: link, to: person}
  - {key: doc, type: attachment}
  - {key: status, type: select, options: [open, shipped]}
"""
SOUND = """\
automation: tell
form: order
trigger: created
effects:
  - email:
      to: {email_field: person.email, language_field: person.lang}
      subject: {zh: "订单 {{ record.title }}", en: "Order {{ record.title }}"}
      message: {zh: "{{ recipient.name }}：{{ record.labels.status }}", en: "{{ recipient.name }}"}
      attach: doc
"""


def pack(tmp_path: Path, automation: str) -> Path:
    root = write_pack(tmp_path / "pack", {"person": PERSON, "order": ORDER})
    return write_files(root, {"automations/tell.yaml": automation})


def problems(tmp_path: Path, automation: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack(tmp_path, automation))
    return [str(p) for p in caught.value.problems]


def test_a_sound_email_effect_loads(tmp_path: Path) -> None:
    app = load_pack(pack(tmp_path, SOUND))
    (effect,) = app.automations[0].effects
    assert effect.kind == "email"
    assert effect.email is not None
    assert [a.email_field for a in effect.email.to] == ["person.email"]
    assert effect.email.attach == ["doc"]


def test_the_address_path_goes_through_links_to_an_email_field(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        SOUND.replace("email_field: person.email", "email_field: title.email").replace(
            "language_field: person.lang", "language_field: person.visits"
        ),
    )
    assert found == [
        "automations/tell.yaml:6:25: 'title' is not a link field of order: "
        "'title.email' cannot go through it",
        "automations/tell.yaml:6:54: 'visits' of person must be a field of type select or text, not integer",
    ]


def test_the_address_must_be_an_email_field_that_exists(tmp_path: Path) -> None:
    assert problems(tmp_path, SOUND.replace("person.email", "person.phone")) == [
        "automations/tell.yaml:6:25: 'phone' of person must be a field of type email, not phone"
    ]
    assert problems(tmp_path, SOUND.replace("person.email", "person.emial")) == [
        "automations/tell.yaml:6:25: unknown field of person 'emial' (did you mean 'email'?)"
    ]


def test_attachments_are_attachment_fields_and_templates_compile(tmp_path: Path) -> None:
    broken = SOUND.replace("attach: doc", "attach: [doc, title]").replace(
        'en: "Order {{ record.title }}"', 'en: "Order {{ record.title "'
    )
    found = problems(tmp_path, broken)
    assert len(found) == 2
    assert found[0].startswith("automations/tell.yaml:7:") and "template error" in found[0]
    assert found[1] == "automations/tell.yaml:9:21: 'title' is not an attachment field of order"


def test_an_email_effect_needs_an_address_and_a_message(tmp_path: Path) -> None:
    found = problems(
        tmp_path, SOUND.replace("      to: {email_field: person.email, language_field: person.lang}\n", "")
    )
    assert len(found) == 1 and "to" in found[0]
    found = problems(tmp_path, SOUND.replace("email_field: person.email", "email_field: Person.Email"))
    assert len(found) == 1 and "email_field" in found[0]
