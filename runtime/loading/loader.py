"""Load a definition pack (a folder or a single file) into a validated `App`.

Every problem of a pack is reported in one run. Each file (or, in a single-file pack,
each entry of the app's lists) is validated alone; a part in error is reported and then
salvaged (runtime/loading/salvage.py), and the checks across parts — forms, workflows,
approvals, automations, dashboards — run on everything that loaded, quiet about
references to what did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from runtime.loading.checks import check_app
from runtime.loading.document_checks import TemplateSource, check_documents, inline_templates, read_templates
from runtime.loading.intake_checks import check_intakes
from runtime.loading.model_errors import problems_from
from runtime.loading.problems import DefinitionError, Problem
from runtime.loading.process_checks import PROCESS_KINDS, check_process
from runtime.loading.salvage import Broken, names_in, salvage, salvage_fields
from runtime.loading.source import FormSource, PathKey, SourceFile, parse_file
from runtime.model import App, Form
from runtime.model.dashboard import Dashboard
from runtime.model.document import Document
from runtime.model.intake import Intake
from runtime.model.process import Approval, Automation, Workflow

APP_FILES = ("app.yaml", "app.yml", "app.json")
SUFFIXES = (".yaml", ".yml", ".json")
KINDS = (*PROCESS_KINDS, "intakes", "documents")  # the parts besides forms, each in its folder and list
LISTS = ("forms", *KINDS)  # the app's lists of parts
# Stand-ins for required app keys in error, so the rest of the pack is still checked.
APP_PLACEHOLDERS: dict[str, Any] = {"app": "app", "label": {"en": "app"}, "version": "0"}

Part = Workflow | Approval | Automation | Dashboard | Intake | Document
PROCESS_MODELS: dict[str, type[Part]] = {
    "workflows": Workflow,
    "approvals": Approval,
    "automations": Automation,
    "dashboards": Dashboard,
    "intakes": Intake,
    "documents": Document,
}


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


@dataclass
class Parts:
    """A pack's parts as far as they loaded, each with its place, and what failed."""

    forms: list[tuple[Form, FormSource]] = field(default_factory=list)
    items: dict[str, list[tuple[Any, FormSource]]] = field(
        default_factory=lambda: {kind: [] for kind in KINDS}
    )
    templates: dict[str, TemplateSource] = field(default_factory=dict)  # document templates by name
    known: set[str] = field(default_factory=set)  # the key of every form written, loaded or not
    broken: Broken = field(default_factory=Broken)
    problems: list[Problem] = field(default_factory=list)


def _load_single(path: Path) -> App:
    source = parse_file(path)
    _raise_if(source.problems)
    parts = Parts()
    header = _app_file(source, parts)
    app = _assemble(header, parts) if header is not None else None
    _raise_if(parts.problems)
    assert app is not None
    return app


def _load_folder(root: Path) -> App:
    app_file = next((root / n for n in APP_FILES if (root / n).is_file()), None)
    if app_file is None:
        raise DefinitionError([Problem(str(root), 1, 1, "the folder has no app.yaml")])
    source = parse_file(app_file, app_file.name)
    parts = Parts(problems=list(source.problems))
    header = _app_file(source, parts) if not source.problems else None
    for path in _files_in(root / "forms"):
        _part_file(root, path, "forms", parts)
    for kind in KINDS:
        for path in _files_in(root / kind):
            _part_file(root, path, kind, parts)
    read_templates(root, parts.templates, parts.problems)
    app = _assemble(header, parts) if header is not None else None
    _raise_if(parts.problems)
    assert app is not None
    return app


def _app_file(source: SourceFile, parts: Parts) -> App | None:
    """The app's own keys (its lists go to `parts`); None when they cannot be read at all."""
    data = source.data
    app, problems = _validate(App, source, data, ())
    parts.problems.extend(problems)
    if isinstance(app, App):
        inline_templates(app, source, parts.templates)
        for kind in LISTS:
            raw = data.get(kind) if isinstance(data, dict) else None
            for index, item in enumerate(getattr(app, kind)):
                _note_known(kind, raw[index] if isinstance(raw, list) else None, parts)
                _keep(kind, item, FormSource(source, (kind, index)), parts)
        return app.model_copy(update={kind: [] for kind in LISTS})
    if not isinstance(data, dict):
        return None
    own = {key: value for key, value in data.items() if key not in LISTS}
    header = salvage(App.model_validate, own, parts.broken, APP_PLACEHOLDERS).item
    if not isinstance(header, App):
        return None
    inline_templates(header, source, parts.templates)
    if own.get("roles") is not None and not isinstance(own.get("roles"), list):
        parts.broken.roles = True  # the roles are unknown: role names are not judged
    for kind in LISTS:
        raw = data.get(kind)
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            _salvage_part(kind, item, source, (kind, index), parts)
    return header


def _part_file(root: Path, path: Path, kind: str, parts: Parts) -> None:
    """One file of `forms/`, `workflows/`, `approvals/`, `automations/`, `dashboards/` or `intakes/`."""
    source = parse_file(path, str(path.relative_to(root)))
    parts.problems.extend(source.problems)
    if source.problems:
        if kind == "forms":  # unread: its key is most likely its file's name
            parts.known.add(path.stem)
            parts.broken.forms.add(path.stem)
        elif kind == "documents":  # likewise: what names it is not reported as unknown
            parts.broken.names.add(path.stem)
        return
    model = Form if kind == "forms" else PROCESS_MODELS[kind]
    item, problems = _validate(model, source, source.data, ())
    parts.problems.extend(problems)
    if problems:
        _salvage_part(kind, source.data, source, (), parts)
    elif item is not None:
        _note_known(kind, source.data, parts)
        _keep(kind, item, FormSource(source, ()), parts)


def _salvage_part(kind: str, raw: Any, source: SourceFile, prefix: PathKey, parts: Parts) -> None:
    """A part in error (already reported): what is left of it, or a note of what failed."""
    broken = parts.broken
    _note_known(kind, raw, parts)
    if not isinstance(raw, dict):
        return
    if kind == "forms":
        label = {"label": {"en": str(raw.get("form") or "form")}}
        found = salvage(Form.model_validate, raw, broken, label, prepare=salvage_fields)
    else:
        found = salvage(PROCESS_MODELS[kind].model_validate, raw, broken)
    if found.item is None:
        broken.names.update(names_in(raw))
        owner = raw.get("form")
        if kind == "forms" and isinstance(owner, str):
            broken.forms.add(owner)
        elif kind == "workflows" and isinstance(owner, str):
            broken.workflow_forms.add(owner)
        return
    _keep(kind, found.item, FormSource(source, prefix, tuple(found.moved.items())), parts)


def _note_known(kind: str, raw: Any, parts: Parts) -> None:
    if kind == "forms" and isinstance(raw, dict) and isinstance(raw.get("form"), str):
        parts.known.add(raw["form"])


def _keep(kind: str, item: Any, at: FormSource, parts: Parts) -> None:
    if kind == "forms":
        parts.forms.append((item, at))
    else:
        parts.items[kind].append((item, at))


def _assemble(header: App, parts: Parts) -> App:
    """The app with every part that loaded (a key defined twice: the first), checked across parts."""
    forms: list[Form] = []
    where: dict[str, FormSource] = {}
    for form, at in parts.forms:
        if form.form in where:
            parts.problems.append(at.at(("form",), f"form '{form.form}' is defined twice"))
            continue
        forms.append(form)
        where[form.form] = at
    lists: dict[str, list[Any]] = {}
    process_where: dict[tuple[str, str], FormSource] = {}
    for kind in KINDS:
        lists[kind] = []
        name = kind[:-1]
        for item, at in parts.items[kind]:
            key = (kind, _process_key(item))
            if key in process_where:
                parts.problems.append(at.at((name,), f"{name} '{key[1]}' is defined twice"))
                continue
            lists[kind].append(item)
            process_where[key] = at
    templates = {name: source.text for name, source in parts.templates.items()}
    app = header.model_copy(update={"forms": forms, **lists, "document_templates": templates})
    parts.problems.extend(check_app(app, where, parts.known | parts.broken.forms, parts.broken))
    parts.problems.extend(check_process(app, process_where, parts.broken))
    parts.problems.extend(check_intakes(app, process_where, parts.broken))
    parts.problems.extend(check_documents(app, process_where, parts.templates, parts.broken))
    return app


def _process_key(item: Part) -> str:
    if isinstance(item, Document):
        return item.document
    if isinstance(item, Workflow):
        return item.workflow
    if isinstance(item, Approval):
        return item.approval
    if isinstance(item, Dashboard):
        return item.dashboard
    if isinstance(item, Intake):
        return item.intake
    return item.automation


def _files_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def _validate(
    model: type[BaseModel], source: SourceFile, data: Any, prefix: tuple[str | int, ...]
) -> tuple[BaseModel | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [source.at(prefix, f"expected a mapping of keys for the {model.__name__}")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from(exc, model, source, data, prefix)


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise DefinitionError(problems)
