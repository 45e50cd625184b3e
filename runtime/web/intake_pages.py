"""`GET` and `POST /public/{app}/{intake}`: a public intake's own page, for people and iframes.

The page needs no sign-in and no cookie (so no CSRF token: there is no session to ride).
It carries the intake's fields, an off-screen honeypot input and a signed time token
(runtime/intake/tokens.py); values can be filled from the page's query string
(`?campaign=expo`), which is how a marketing site passes `hidden` fields. A post is taken
by the same service as the JSON route, so the same rate, checks and answers apply: a
mistake is shown beside its input, everything else taken ends on the thank-you text (or
the intake's `redirect`). The page is framed only by the intake's `allowed_origins`
(`frame-ancestors`; `X-Frame-Options: DENY` when there are none) and runs no script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from runtime.api.intake_routes import client_address, language, origin_verdict, thank_you
from runtime.intake import tokens
from runtime.intake.form_input import body_from_form
from runtime.intake.service import TOKEN, IntakeService, RateLimited
from runtime.model.intake import Intake
from runtime.records.compiled import CompiledApp
from runtime.records.errors import FieldProblem, RecordError
from runtime.web.render import TEMPLATES
from runtime.web.security import CONTENT_SECURITY_POLICY

TEXT = {
    "zh": {
        "submit": "提交",
        "trap": "请勿填写此项",
        "expired": "表单已过期，请再提交一次。",
        "rate_limited": "提交过于频繁，请稍后再试。",
        "unavailable": "此表单暂时无法提交，请稍后再试。",
        "origin": "此网站不能提交这个表单。",
        "fix": "请检查标出的内容。",
    },
    "en": {
        "submit": "Send",
        "trap": "Leave this empty",
        "expired": "The form expired; please send it again.",
        "rate_limited": "Too many submissions; please try again in a while.",
        "unavailable": "This form cannot take submissions now; please try again later.",
        "origin": "This site may not send this form.",
        "fix": "Please check the marked entries.",
    },
}
INPUT_TYPES = {"email": "email", "phone": "tel", "url": "url", "date": "date", "datetime": "datetime-local"}
AUTOCOMPLETE = {"email": "email", "phone": "tel", "url": "url"}


@dataclass
class Input:
    """One input of the page."""

    name: str
    kind: str
    label: str
    required: bool
    value: Any
    error: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    input_type: str = "text"
    autocomplete: str = ""
    max_length: int | None = None


def intake_page_router(intakes: IntakeService) -> APIRouter:
    """The pages of every intake (not part of the API's spec)."""
    router = APIRouter(include_in_schema=False)

    def show(app_key: str, key: str, request: Request) -> Response:
        app, intake = intakes.find(app_key, key)
        values = {k: request.query_params.getlist(k) for k in intake.fields if k in request.query_params}
        token = tokens.issue(app.app.app, intake.intake, intakes.now())
        return _page(request, app, intake, values, token)

    async def take(app_key: str, key: str, request: Request) -> Response:
        app, intake = intakes.find(app_key, key)
        data = await request.form()
        values = {k: [v for v in data.getlist(k) if isinstance(v, str)] for k in intake.fields if k in data}
        sent_token = data.get(TOKEN)
        token = sent_token if isinstance(sent_token, str) else ""
        allowed, _ = origin_verdict(intake, request)
        if not allowed:
            return _page(request, app, intake, values, token, status=403, notice="origin")
        try:
            body = body_from_form(app, intake, data)
            await run_in_threadpool(intakes.submit, app.app.app, intake.intake, body, client_address(request))
        except RateLimited as error:
            answer = _page(request, app, intake, values, token, status=429, notice="rate_limited")
            answer.headers["Retry-After"] = str(error.retry_after)
            return answer
        except RecordError as error:
            if error.status == 404:
                raise
            return _mistakes(request, app, intake, values, token, error, intakes)
        if intake.redirect:
            return _secured(RedirectResponse(intake.redirect, status_code=303), intake)
        return _page(request, app, intake, {}, "", done=True)

    router.add_api_route("/public/{app_key}/{key}", show, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/public/{app_key}/{key}", take, methods=["POST"], response_class=HTMLResponse)
    return router


def _mistakes(
    request: Request,
    app: CompiledApp,
    intake: Intake,
    values: dict[str, list[str]],
    token: str,
    error: RecordError,
    intakes: IntakeService,
) -> Response:
    """The page again, each problem beside its input; a fresh token when the old one expired."""
    problems: list[FieldProblem] = error.problems
    if any(p.field == TOKEN for p in problems):
        fresh = tokens.issue(app.app.app, intake.intake, intakes.now())
        return _page(request, app, intake, values, fresh, status=error.status, notice="expired")
    if error.status == 503:
        return _page(request, app, intake, values, token, status=503, notice="unavailable")
    errors = {str(p.field): p.message for p in problems if p.field in intake.fields}
    loose = [p.message for p in problems if p.field not in intake.fields]
    return _page(
        request, app, intake, values, token, status=error.status, notice="fix", errors=errors, extra=loose
    )


def _page(
    request: Request,
    app: CompiledApp,
    intake: Intake,
    values: dict[str, list[str]],
    token: str,
    *,
    status: int = 200,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    extra: list[str] | None = None,
    done: bool = False,
) -> Response:
    chosen = language(request)
    text = TEXT[chosen]
    form = app.forms[intake.form]
    inputs: list[Input] = []
    hidden: list[Input] = []
    for key in intake.fields:
        spec = form.fields[key].spec
        given = values.get(key, [])
        item = Input(
            name=key,
            kind=spec.type,
            label=spec.label.text(chosen) if spec.label else key,
            required=bool(spec.required) and key not in intake.defaults,
            value=given if spec.type == "multi_select" else (given[-1] if given else ""),
            error=(errors or {}).get(key, ""),
            options=[(o.key, o.label.text(chosen) if o.label else o.key) for o in _options(spec)],
            input_type=INPUT_TYPES.get(spec.type, "text"),
            autocomplete=AUTOCOMPLETE.get(spec.type, ""),
            max_length=getattr(spec, "max_length", None),
        )
        (hidden if key in intake.hidden else inputs).append(item)
    message = text[notice] if notice else None
    if extra:
        message = " ".join([message or "", *extra]).strip()
    query = {"lang": request.query_params["lang"]} if "lang" in request.query_params else {}
    html = TEMPLATES.get_template("public_intake.html").render(
        language=chosen,
        text=text,
        title=(intake.label or form.form.label).text(chosen),
        description=intake.description.text(chosen) if intake.description else "",
        action=f"/public/{app.app.app}/{intake.intake}" + (f"?{urlencode(query)}" if query else ""),
        token=token,
        inputs=inputs,
        hidden=hidden,
        honeypot=intake.honeypot,
        notice=message,
        done=thank_you(intake, chosen) if done else "",
    )
    return _secured(HTMLResponse(html, status_code=status), intake)


def _options(spec: Any) -> list[Any]:
    return list(getattr(spec, "options", None) or [])


def _secured(response: Response, intake: Intake) -> Response:
    """The web pages' headers, except that the intake's origins may frame the page."""
    ancestors = " ".join(intake.allowed_origins) or "'none'"
    policy = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")
    if intake.redirect:  # browsers hold the redirect after a post to form-action as well
        target = urlsplit(intake.redirect)
        policy = policy.replace("form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}")
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if not intake.allowed_origins:
        response.headers["X-Frame-Options"] = "DENY"
    return response
