"""Load-time checks of documents and their templates.

Templates are the `.j2` files of a folder pack's `documents/` (or the app's map
`document_templates`). Each is compiled in the environment documents render in
(runtime/documents/environment.py), so a syntax error or an unknown filter is reported
at its line (`documents/quote.html.j2:12:1: template error: …`), and every template it
includes, imports or extends must exist. Each document must name a top-level form, a
template that exists (or one per option of its `choose_by` select field), a boolean
`when` and declared roles; a `document` effect must name a document of its own form and
an attachment field to keep the PDF in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import TemplateSyntaxError, meta

from runtime.documents.environment import BUILT_IN_TEMPLATES, checking_environment
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.salvage import NOTHING_BROKEN, Broken, is_stub
from runtime.loading.source import FormSource, PathKey, SourceFile
from runtime.model import App, Form
from runtime.model.document import MAX_TEMPLATE, TEMPLATE_NAME_RE, TEMPLATE_SUFFIX, Document
from runtime.model.fields import SelectField
from runtime.model.process import Effect

if TYPE_CHECKING:
    from runtime.loading.process_checks import Checker


@dataclass(frozen=True)
class TemplateSource:
    """A template's text and where it was written: its own file, or the app file's map."""

    name: str
    text: str
    file: str | None = None
    inline: SourceFile | None = None

    def at(self, line: int, message: str) -> Problem:
        """A problem at `line` of the template (1-based)."""
        if self.inline is not None:
            before = self.text.split("\n")[: max(line - 1, 0)]
            offset = sum(len(text) + 1 for text in before)
            return self.inline.inside(("document_templates", self.name), offset, self.text, message)
        return Problem(self.file or self.name, max(line, 1), 1, message)


def inline_templates(app: App, source: SourceFile, found: dict[str, TemplateSource]) -> None:
    """The templates written in the app file's `document_templates`."""
    for name, text in app.document_templates.items():
        found[name] = TemplateSource(name, text, inline=source)


def read_templates(root: Path, found: dict[str, TemplateSource], problems: list[Problem]) -> None:
    """The `.j2` files of `documents/` (sub-folders are not read)."""
    folder = root / "documents"
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(TEMPLATE_SUFFIX)):
        shown = str(path.relative_to(root))
        if not TEMPLATE_NAME_RE.match(path.name):
            problems.append(
                Problem(shown, 1, 1, "invalid template name: use letters, digits, '_', '.' and '-'")
            )
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(shown, 1, 1, f"cannot read the file: {exc}"))
            continue
        if len(text) > MAX_TEMPLATE:
            problems.append(Problem(shown, 1, 1, f"a template may hold at most {MAX_TEMPLATE} characters"))
            continue
        if path.name in found:
            problems.append(Problem(shown, 1, 1, f"template '{path.name}' is also in document_templates"))
            continue
        found[path.name] = TemplateSource(path.name, text, file=shown)


def check_documents(
    app: App,
    where: dict[tuple[str, str], FormSource],
    templates: dict[str, TemplateSource],
    broken: Broken = NOTHING_BROKEN,
) -> list[Problem]:
    """Every problem of the app's templates and documents."""
    from runtime.loading.process_checks import Checker

    problems: list[Problem] = []
    for source in templates.values():
        _check_template(source, set(templates), problems)
    for document in app.documents:
        checker = Checker(app, where[("documents", document.document)], problems, broken)
        _check_document(checker, document, set(templates))
    return problems


def _check_template(source: TemplateSource, names: set[str], problems: list[Problem]) -> None:
    env = checking_environment()
    try:
        env.compile(source.text, source.name)  # compiling finds unknown filters and tests too
        tree = env.parse(source.text)
    except TemplateSyntaxError as exc:
        problems.append(source.at(exc.lineno, f"template error: {exc.message}"))
        return
    known = names | set(BUILT_IN_TEMPLATES)
    for name in meta.find_referenced_templates(tree):
        if name is not None and name not in known:
            line = next((i for i, text in enumerate(source.text.split("\n"), 1) if name in text), 1)
            problems.append(source.at(line, f"unknown template '{name}'{did_you_mean(name, known)}"))


def _check_document(checker: Checker, document: Document, names: set[str]) -> None:
    form = checker.top_form(document.form, ("form",))
    checker.roles(document.roles, ("roles",))
    checker.condition(document.when, checker.scope(form), ("when",))
    if document.template is not None:
        _template_exists(checker, document.template, ("template",), names)
    for option, name in document.templates.items():
        _template_exists(checker, name, ("templates", option), names)
    if document.choose_by is None or form is None:
        return
    spec = form.field(document.choose_by)
    if is_stub(spec):
        return
    if not isinstance(spec, SelectField):
        checker.fail(("choose_by",), f"'{document.choose_by}' is not a select field of {form.form}")
        return
    options = spec.option_keys()
    for option in document.templates:
        if option not in options:
            message = f"'{option}' is not an option of {document.choose_by}{did_you_mean(option, options)}"
            checker.problems.append(checker.at.at(("templates", option), message, key=True))


def _template_exists(checker: Checker, name: str, path: PathKey, names: set[str]) -> None:
    if name not in names:
        checker.fail(path, f"no template '{name}' in documents/{did_you_mean(name, sorted(names))}")


def check_document_effect(
    checker: Checker, form: Form | None, effect: Effect, path: PathKey, form_key: str
) -> None:
    """A `document` effect names a document of its form and an attachment field of it."""
    spec = effect.document
    assert spec is not None
    where: PathKey = (*path, "document")
    document = checker.app.document(spec.document)
    if document is None:
        names = [d.document for d in checker.app.documents]
        checker.missing((*where, "document"), "document", spec.document, names)
    elif document.form != form_key and checker.app.form(document.form) is not None:
        checker.fail((*where, "document"), f"document '{spec.document}' is of form {document.form}")
    if form is None:
        return
    target = form.field(spec.store_in)
    if not is_stub(target) and (target is None or target.type != "attachment"):
        checker.fail((*where, "store_in"), f"'{spec.store_in}' is not an attachment field of {form.form}")
