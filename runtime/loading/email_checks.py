"""Load-time checks of the `email` effect: its paths of fields, attachments and templates.

`email_field` and `language_field` are paths from the effect's form: each part but the
last a `link` field, followed to its form; the last an `email` field (the address) or a
`select` or `text` field (the language, `zh` or `en`). `attach` names attachment fields
of the form. The templates must compile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jinja2 import TemplateSyntaxError

from runtime.loading.salvage import is_stub
from runtime.loading.source import PathKey
from runtime.model import Form
from runtime.model.process import Effect

if TYPE_CHECKING:
    from runtime.loading.process_checks import Checker

LANGUAGE_TYPES = ("select", "text")


def check_email_effect(checker: Checker, form: Form | None, effect: Effect, path: PathKey) -> None:
    """Each path leads to a field of the right type; attachments are attachment fields."""
    from runtime.loading.process_checks import TEMPLATES

    spec = effect.email
    assert spec is not None
    where: PathKey = (*path, "email")
    for index, address in enumerate(spec.to):
        at: PathKey = (*where, "to", index) if checker.written((*where, "to", index)) else (*where, "to")
        _path(checker, form, address.email_field, ("email",), (*at, "email_field"))
        if address.language_field is not None:
            _path(checker, form, address.language_field, LANGUAGE_TYPES, (*at, "language_field"))
    if form is not None:
        for index, key in enumerate(spec.attach):
            target = form.field(key)
            if not is_stub(target) and (target is None or target.type != "attachment"):
                item: PathKey = (*where, "attach", index)
                spot = item if checker.written(item) else (*where, "attach")
                checker.fail(spot, f"'{key}' is not an attachment field of {form.form}")
    for name, label in (("subject", spec.subject), ("message", spec.message)):
        for language in ("zh", "en"):
            text = getattr(label, language, None) if label is not None else None
            if text is None:
                continue
            try:
                TEMPLATES.from_string(text)
            except TemplateSyntaxError as exc:
                checker.fail((*where, name, language), f"template error: {exc.message}")


def _path(checker: Checker, form: Form | None, path: str, types: tuple[str, ...], at: PathKey) -> None:
    """Each part but the last is a link of the form reached so far; the last is one of `types`."""
    current = form
    parts = path.split(".")
    for number, part in enumerate(parts):
        if current is None:
            return  # a form that failed to load: its own problems are reported where it is written
        spec = current.field(part)
        if is_stub(spec):
            return
        last = number == len(parts) - 1
        if spec is None:
            checker.missing(at, f"field of {current.form}", part, [f.key for f in current.fields])
            return
        if not last:
            if spec.type != "link":
                message = f"'{part}' is not a link field of {current.form}: '{path}' cannot go through it"
                checker.fail(at, message)
                return
            current = checker.app.form(str(getattr(spec, "to", "")))
            continue
        if spec.type not in types:
            wanted = " or ".join(types)
            checker.fail(at, f"'{part}' of {current.form} must be a field of type {wanted}, not {spec.type}")
