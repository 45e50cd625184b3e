"""Load a definition pack (a folder or a single file) into a validated `App`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from runtime.loading.checks import check_app
from runtime.loading.model_errors import problems_from
from runtime.loading.problems import DefinitionError, Problem
from runtime.loading.process_checks import PROCESS_KINDS, check_process
from runtime.loading.source import FormSource, SourceFile, parse_file
from runtime.model import App, Form
from runtime.model.dashboard import Dashboard
from runtime.model.process import Approval, Automation, Workflow

APP_FILES = ("app.yaml", "app.yml", "app.json")
SUFFIXES = (".yaml", ".yml", ".json")


def load_pack(path: str | Path) -> App:
    """Load one pack; raise `DefinitionError` listing every problem found."""
    root = Path(path)
    if root.is_dir():
        return _load_folder(root)
    if root.is_file():
        return _load_single(root)
    raise DefinitionError([Problem(str(root), 1, 1, "no such file or folder")])


def load_packs(paths: Iterable[str | Path]) -> list[App]:
    """Load several packs for one server; app keys must differ."""
    apps: list[App] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            app = load_pack(path)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if any(other.app == app.app for other in apps):
            problems.append(Problem(str(path), 1, 1, f"app '{app.app}' is loaded twice"))
        apps.append(app)
    if problems:
        raise DefinitionError(problems)
    return apps


def _load_single(path: Path) -> App:
    source = parse_file(path)
    _raise_if(source.problems)
    app, problems = _validate(App, source, source.data, ())
    _raise_if(problems)
    assert isinstance(app, App)
    _raise_if(_repeated_forms(app, source))
    where = {f.form: FormSource(source, ("forms", i)) for i, f in enumerate(app.forms)}
    _check(app, where, {f.form for f in app.forms})
    process_where: dict[tuple[str, str], FormSource] = {}
    for kind in PROCESS_KINDS:
        for i, item in enumerate(getattr(app, kind)):
            process_where[(kind, _process_key(item))] = FormSource(source, (kind, i))
    _raise_if(check_process(app, process_where))
    return app


def _load_folder(root: Path) -> App:
    app_file = next((root / n for n in APP_FILES if (root / n).is_file()), None)
    if app_file is None:
        raise DefinitionError([Problem(str(root), 1, 1, "the folder has no app.yaml")])
    source = parse_file(app_file, app_file.name)
    problems = list(source.problems)
    app, found = _validate(App, source, source.data, ()) if not problems else (None, [])
    problems.extend(found)
    forms: list[Form] = []
    where: dict[str, FormSource] = {}
    if isinstance(app, App):
        problems.extend(_repeated_forms(app, source))
        forms.extend(app.forms)
        where.update({f.form: FormSource(source, ("forms", i)) for i, f in enumerate(app.forms)})
    known = {f.form for f in forms}
    for form_file in _form_files(root):
        form_source = parse_file(form_file, str(form_file.relative_to(root)))
        problems.extend(form_source.problems)
        if form_source.problems:
            continue
        known.update(_raw_form_key(form_source.data))
        form, found = _validate(Form, form_source, form_source.data, ())
        problems.extend(found)
        if found and isinstance(form_source.data, dict):
            form = _salvage(form_source.data)
        if isinstance(form, Form):
            if form.form in where:
                problems.append(form_source.at(("form",), f"form '{form.form}' is defined twice"))
                continue
            forms.append(form)
            where[form.form] = FormSource(form_source, ())
    process, process_where = _load_process_files(root, app, source, problems)
    if isinstance(app, App):
        full = app.model_copy(update={"forms": forms, **process})
        problems.extend(check_app(full, where, known))
        if not problems:
            problems.extend(check_process(full, process_where))
    _raise_if(problems)
    assert isinstance(app, App)
    return full


PROCESS_MODELS: dict[str, type[Workflow | Approval | Automation | Dashboard]] = {
    "workflows": Workflow,
    "approvals": Approval,
    "automations": Automation,
    "dashboards": Dashboard,
}


def _process_key(item: Workflow | Approval | Automation | Dashboard) -> str:
    if isinstance(item, Workflow):
        return item.workflow
    if isinstance(item, Approval):
        return item.approval
    if isinstance(item, Dashboard):
        return item.dashboard
    return item.automation


def _load_process_files(
    root: Path, app: BaseModel | None, app_source: SourceFile, problems: list[Problem]
) -> tuple[dict[str, list[Any]], dict[tuple[str, str], FormSource]]:
    """Workflows, approvals and automations: from the app file's lists and their own folders."""
    found: dict[str, list[Any]] = {}
    where: dict[tuple[str, str], FormSource] = {}
    for kind, model in PROCESS_MODELS.items():
        items: list[Any] = list(getattr(app, kind)) if isinstance(app, App) else []
        for index, item in enumerate(items):
            where[(kind, _process_key(item))] = FormSource(app_source, (kind, index))
        for path in _files_in(root / kind):
            source = parse_file(path, str(path.relative_to(root)))
            problems.extend(source.problems)
            if source.problems:
                continue
            item, errors = _validate(model, source, source.data, ())
            problems.extend(errors)
            if item is None:
                continue
            key = (kind, _process_key(item))  # type: ignore[arg-type]
            if key in where:
                name = kind[:-1]
                problems.append(source.at((name,), f"{name} '{key[1]}' is defined twice"))
                continue
            items.append(item)
            where[key] = FormSource(source, ())
        found[kind] = items
    return found, where


def _salvage(data: dict[str, Any]) -> Form | None:
    """The form with its invalid fields replaced by plain ones, to check the rest of it."""
    fields = data.get("fields")
    if not isinstance(fields, list):
        return None
    plain = []
    for raw in fields:
        try:
            Form.model_validate({**data, "fields": [raw], "layout": [], "list": {}})
            plain.append(raw)
        except ValidationError:
            key = raw.get("key") if isinstance(raw, dict) else None
            if isinstance(key, str):
                plain.append({"key": key, "type": "long_text"})
    try:
        return Form.model_validate({**data, "fields": plain})
    except ValidationError:
        return None


def _repeated_forms(app: App, source: SourceFile) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, form in enumerate(app.forms):
        if form.form in seen:
            problems.append(source.at(("forms", index, "form"), f"form '{form.form}' is defined twice"))
        seen.add(form.form)
    return problems


def _form_files(root: Path) -> list[Path]:
    return _files_in(root / "forms")


def _files_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def _raw_form_key(data: Any) -> set[str]:
    if isinstance(data, dict) and isinstance(data.get("form"), str):
        return {data["form"]}
    return set()


def _validate(
    model: type[BaseModel], source: SourceFile, data: Any, prefix: tuple[str | int, ...]
) -> tuple[BaseModel | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [source.at(prefix, f"expected a mapping of keys for the {model.__name__}")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from(exc, model, source, data, prefix)


def _check(app: App, where: dict[str, FormSource], known: set[str]) -> None:
    _raise_if(check_app(app, where, known))


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise DefinitionError(problems)
