"""A form-encoded submission (`application/x-www-form-urlencoded` or multipart) as a JSON-like body.

Names are field keys, the honeypot and `_token`; a multiple choice repeats its name once per
option. Inputs are read as the web pages read them (runtime/web/form_data.py): empty means
not given, a tick box sends `true` (`on`, `1` and `yes` count too), a percentage is typed as
people say it (35 for 35 %), a datetime without an offset is in the app's time zone. Names the
intake does not know are kept, so that the intake refuses them by name.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from runtime.model.intake import Intake
from runtime.records.compiled import CompiledApp
from runtime.web.form_data import scalar

TRUE = ("true", "on", "1", "yes")


def body_from_form(app: CompiledApp, intake: Intake, data: FormData) -> dict[str, Any]:
    """The submission as the JSON route would receive it."""
    form = app.forms[intake.form]
    zone = app.app.zone()
    body: dict[str, Any] = {}
    for name in dict.fromkeys(data.keys()):
        texts = [v for v in data.getlist(name) if isinstance(v, str)]
        field = form.fields.get(name) if name in intake.fields else None
        if field is None:
            body[name] = texts[0] if len(texts) == 1 else texts
        elif field.type == "multi_select":
            body[name] = [v for v in texts if v.strip()]
        elif field.type == "boolean":
            body[name] = any(v.strip().lower() in TRUE for v in texts)
        else:
            body[name] = scalar(field.type, texts[-1] if texts else None, zone)
    return body
