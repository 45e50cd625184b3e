"""The service's problems as messages beside the inputs they belong to, in the user's language.

Problem paths (`email`, `lines[0].quantity`) are the input names of the web form.
English pages show the service's own message; Chinese pages translate the common
codes and fall back to the service's message for the rest.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from runtime.records.compiled import CompiledForm
from runtime.records.errors import FieldProblem
from runtime.web.form_data import ROW_INPUT
from runtime.web.i18n import Translate

# Codes whose message depends on the field type; the catalog key is `error.<code>.<type>`.
BY_TYPE = {"invalid", "type"}
TRANSLATED = {
    "required",
    "unique",
    "duplicate",
    "read_only",
    "unknown_field",
    "option",
    "max_length",
    "link_filter",
    # the process engine's refusals people meet on the pages
    "material",
    "too_soon",
    "decided",
    "waiting",
    "task_closed",
    "self_approval",
    "locked",
}


def by_input(
    problems: list[FieldProblem], form: CompiledForm | None, t: Translate, language: str
) -> dict[str, list[str]]:
    """Messages keyed by input name; problems of no field are keyed by ""."""
    found: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        name = problem.field or ""
        found[name].append(message(problem, _kind(form, name), t, language))
    return dict(found)


def message(problem: FieldProblem, kind: str, t: Translate, language: str) -> str:
    """One problem's message for people."""
    text = problem.message
    if language == "en" or problem.code == "rule":
        return text[:1].upper() + text[1:]
    if problem.code in BY_TYPE:
        key = f"error.{problem.code}.{kind}"
        translated = t(key)
        return translated if translated != key else text
    if problem.code in TRANSLATED:
        return t(f"error.{problem.code}")
    return text


def held_message(problem: FieldProblem, form: CompiledForm | None, t: Translate, language: str) -> str:
    """A change the record's approval or state does not allow (`material`, `locked`), for people.

    English pages show the engine's message (the approval's `change_message`, when it has
    one); Chinese pages name the field the change touched.
    """
    if language == "en":
        return message(problem, "", t, language)
    spec = form.form.field(problem.field) if form is not None and problem.field else None
    if problem.code == "material" and spec is not None:
        return t("error.material_field", field=spec.title(language))
    return t(f"error.{problem.code}")


def _kind(form: CompiledForm | None, name: str) -> str:
    if form is None:
        return ""
    match = ROW_INPUT.match(name)
    if match:
        child = form.children.get(match.group(1))
        field: Any = child.fields.get(match.group(3)) if child else None
    else:
        field = form.fields.get(name)
    return field.type if field is not None else ""
