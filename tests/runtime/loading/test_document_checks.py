"""Documents and their templates are checked at load: each mistake one exact `file:line:col: message`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.runtime.documents.doc_pack import write_doc_pack
from tests.support import write_files

DOCUMENT = "document: offer\nform: offer\nlabel: Offer\ntemplate: offer.html.j2\n"
BASE = '{% extends "formloom/base.html.j2" %}\n{% block content %}\n'


def problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    pack = write_doc_pack(tmp_path / "pack")
    write_files(pack, files)
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    return [str(p) for p in caught.value.problems]


def send_with(effect: str) -> str:
    """The offer's workflow, its `send` step doing `effect`."""
    return f"""\
        workflow: offer_flow
        form: offer
        field: status
        states: [{{key: draft}}, {{key: sent}}]
        transitions:
          - action: send
            from: draft
            to: sent
            effects:
              - {effect}
        """


def test_a_sound_pack_loads_its_documents_and_templates(tmp_path: Path) -> None:
    app = load_pack(write_doc_pack(tmp_path / "pack"))
    assert [d.document for d in app.documents] == ["costing", "offer"]
    assert sorted(app.document_templates) == ["framework.html.j2", "offer.html.j2"]
    offer = app.document("offer")
    assert offer is not None and offer.template_for("framework") == "framework.html.j2"
    assert offer.template_for("custom") == "offer.html.j2" and [d.document for d in app.documents_of("offer")]


def test_a_document_names_a_form_templates_roles_and_a_condition(tmp_path: Path) -> None:
    wrong = DOCUMENT.replace("form: offer", "form: ofer").replace("offer.html.j2", "ofer.html.j2")
    assert problems(tmp_path / "a", {"documents/offer.yaml": wrong + "roles: [boss]\n"}) == [
        "documents/offer.yaml:2:7: unknown form 'ofer' (did you mean 'offer'?)",
        "documents/offer.yaml:4:11: no template 'ofer.html.j2' in documents/ (did you mean 'offer.html.j2'?)",
        "documents/offer.yaml:5:9: unknown role 'boss'",
    ]
    assert problems(tmp_path / "b", {"documents/offer.yaml": DOCUMENT + "when: amount + 1\n"}) == [
        "documents/offer.yaml:5:7: the expression gives a decimal value; this needs a boolean value"
    ]


def test_choose_by_is_a_select_field_whose_options_key_the_templates(tmp_path: Path) -> None:
    chosen = DOCUMENT + "choose_by: {field}\ntemplates:\n  {option}: framework.html.j2\n"
    assert problems(
        tmp_path / "a", {"documents/offer.yaml": chosen.format(field="customer", option="x")}
    ) == ["documents/offer.yaml:5:12: 'customer' is not a select field of offer"]
    assert problems(
        tmp_path / "b", {"documents/offer.yaml": chosen.format(field="kind", option="frame_work")}
    ) == ["documents/offer.yaml:7:3: 'frame_work' is not an option of kind (did you mean 'framework'?)"]


def test_the_shape_of_a_document_is_checked(tmp_path: Path) -> None:
    bare = "document: offer\nform: offer\nlabel: Offer\n"
    assert problems(tmp_path / "a", {"documents/offer.yaml": bare}) == [
        "documents/offer.yaml:1:1: a document needs 'template' or 'templates'"
    ]
    assert problems(tmp_path / "b", {"documents/offer.yaml": bare + "template: offer.html\n"}) == [
        "documents/offer.yaml:4:11: template: invalid template name 'offer.html': name a file of "
        "documents/ ending in .j2, such as quote.html.j2"
    ]
    assert problems(tmp_path / "c", {"documents/offer.yaml": bare + "templates: {framework: a.j2}\n"}) == [
        "documents/offer.yaml:1:1: 'templates' and 'choose_by' go together"
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "{{ record.number | nofilter }}\n",
            "documents/framework.html.j2:3:1: template error: No filter named 'nofilter'.",
        ),
        (
            "<p>ok</p>\n{% if %}\n",
            "documents/framework.html.j2:4:1: template error: "
            "Expected an expression, got 'end of statement block'",
        ),
        (
            "{% for x in y %}\n",
            "documents/framework.html.j2:4:1: template error: Encountered unknown tag 'endblock'.",
        ),
        (
            '{% include "letterhed.html.j2" %}\n',
            "documents/framework.html.j2:3:1: "
            "unknown template 'letterhed.html.j2' (did you mean 'letterhead.html.j2'?)",
        ),
    ],
)
def test_template_errors_point_at_their_line(tmp_path: Path, body: str, expected: str) -> None:
    template = BASE + body + "{% endblock %}\n"
    found = problems(
        tmp_path, {"documents/framework.html.j2": template, "documents/letterhead.html.j2": "<p></p>"}
    )
    assert len(found) == 1 and found[0].startswith(expected), found


def test_template_files_need_plain_names(tmp_path: Path) -> None:
    assert problems(tmp_path, {"documents/Bad Name.j2": "x"}) == [
        "documents/Bad Name.j2:1:1: invalid template name: use letters, digits, '_', '.' and '-'"
    ]


def test_a_document_effect_names_a_document_of_its_form_and_an_attachment(tmp_path: Path) -> None:
    other = {
        "documents/prod.yaml": DOCUMENT.replace("document: offer", "document: prod").replace(
            "form: offer", "form: product"
        )
    }
    found = problems(
        tmp_path / "a",
        {"workflows/offer.yaml": send_with("document: {document: ofer, store_in: notes}"), **other},
    )
    assert found == [
        "workflows/offer.yaml:10:30: unknown document 'ofer' (did you mean 'offer'?)",
        "workflows/offer.yaml:10:46: 'notes' is not an attachment field of offer",
    ]
    found = problems(
        tmp_path / "b",
        {"workflows/offer.yaml": send_with("document: {document: prod, store_in: sent_pdf}"), **other},
    )
    assert found == ["workflows/offer.yaml:10:30: document 'prod' is of form product"]


def test_a_document_that_failed_to_load_is_not_reported_again(tmp_path: Path) -> None:
    broken = DOCUMENT.replace("template: offer.html.j2", "template: 7")
    found = problems(tmp_path, {"documents/offer.yaml": broken})
    assert len(found) == 1 and found[0].startswith("documents/offer.yaml:4:11: "), found  # not the effect's


def test_templates_of_a_single_file_pack_point_into_it(tmp_path: Path) -> None:
    pack = tmp_path / "single.yaml"
    pack.write_text(
        textwrap.dedent(
            """\
            app: s
            label: S
            version: "1"
            forms:
              - form: deal
                label: Deal
                fields:
                  - {key: title, type: text}
            documents:
              - document: deal
                form: deal
                label: Deal
                template: deal.html.j2
            document_templates:
              deal.html.j2: |
                <h1>{{ record.title }}</h1>
                {% if %}
              other.html.j2: "<p>{{ x | bad }}</p>"
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    assert [str(p) for p in caught.value.problems] == [
        f"{pack}:17:5: template error: Expected an expression, got 'end of statement block'",
        f"{pack}:18:19: template error: No filter named 'bad'.",
    ]


def test_a_document_file_that_cannot_be_read_is_not_reported_again(tmp_path: Path) -> None:
    found = problems(tmp_path, {"documents/offer.yaml": "document: offer\nform: [offer\n"})
    assert len(found) == 1 and found[0].startswith("documents/offer.yaml:"), found  # not the send step's
