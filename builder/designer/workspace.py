"""The designer's view of a pack: its definition files (the draft) and the database they publish to.

The files are the draft. Saving from the designer writes them at once (comments and
order kept, see `roundtrip`), whether or not the pack is valid yet, so an admin never
loses work; each save answers the loader's problems. Only a valid pack can be planned
and published, through the same plan and publish the command line uses. A consultant
editing the same files in git sees exactly what the admin changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from builder.designer.roundtrip import Document, merge, open_document, plain
from builder.publishing.publish import Outcome, make_plan, publish
from builder.publishing.steps import Plan
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from runtime.model import App
from runtime.schema import published

# Definition kinds: the folder of their files and the key that names one.
KINDS = {"forms": "form", "workflows": "workflow", "approvals": "approval", "dashboards": "dashboard"}


class NoSuchDefinition(Exception):
    """The pack has no definition of that kind and key."""


class StaleDraft(Exception):
    """The file changed since the designer read it (someone else saved, or edited it by hand)."""


@dataclass
class Saved:
    """What a save wrote, the problems of the pack as it is now, and the file's new revision."""

    path: Path
    problems: list[str] = field(default_factory=list)
    revision: str = ""


class Workspace:
    """The pack folders served (by app key) and the database they publish to."""

    def __init__(self, packs: dict[str, Path], engine: Engine, backups: Path) -> None:
        self.packs = packs
        self.engine = engine
        self.backups = backups

    def folder(self, app_key: str) -> Path:
        """The pack folder of an app."""
        if app_key not in self.packs:
            raise NoSuchDefinition(f"app '{app_key}' is not served from a pack folder")
        return self.packs[app_key]

    def definitions(self, app_key: str, kind: str) -> list[tuple[str, Path]]:
        """The keys of one kind's definitions, with their files, in file name order."""
        found = []
        naming = re.compile(rf"^{KINDS[kind]}:\s*['\"]?([A-Za-z0-9_]+)['\"]?\s*(#.*)?$", re.M)
        for path in sorted((self.folder(app_key) / kind).glob("*.y*ml")):
            match = naming.search(path.read_text(encoding="utf-8"))
            if match:
                found.append((match.group(1), path))
        return found

    def load(self, app_key: str, kind: str, key: str) -> dict[str, Any]:
        """One definition as plain data (what the designer edits)."""
        data = plain(self._document(app_key, kind, key).data)
        assert isinstance(data, dict)
        return data

    def revision(self, app_key: str, kind: str, key: str) -> str:
        """A fingerprint of the definition's file as it is now (saves compare it)."""
        try:
            return _fingerprint(self._document(app_key, kind, key).path)
        except NoSuchDefinition:
            return ""

    def save(
        self, app_key: str, kind: str, key: str, data: dict[str, Any], revision: str | None = None
    ) -> Saved:
        """Write a definition (new or changed) into its file and check the whole pack.

        With `revision`, the file must still be as it was when read: a save over someone
        else's newer change is refused (StaleDraft) instead of undoing it.
        """
        if kind not in KINDS:
            raise NoSuchDefinition(f"unknown kind '{kind}'")
        try:
            document = self._document(app_key, kind, key)
        except NoSuchDefinition:
            document = open_document(self.folder(app_key) / kind / f"{data.get(KINDS[kind], key)}.yaml", {})
        if revision is not None and document.path.exists() and _fingerprint(document.path) != revision:
            raise StaleDraft(
                f"{document.path.name} changed since it was opened; reload it and redo the change"
            )
        merge(document.data, data)
        document.save()
        return Saved(document.path, self.problems(app_key), _fingerprint(document.path))

    def problems(self, app_key: str) -> list[str]:
        """Everything the loader finds wrong with the pack's files (`file:line:col: message`)."""
        try:
            load_pack(self.folder(app_key))
        except DefinitionError as error:
            root = self.folder(app_key)
            return [str(p).replace(str(root) + "/", "") for p in error.problems]
        return []

    def draft(self, app_key: str) -> App:
        """The app as its files define it now (raises DefinitionError when they are invalid)."""
        return load_pack(self.folder(app_key))

    def plan(self, app_key: str) -> Plan:
        """What publishing the files would do to the database now (nothing is changed)."""
        return make_plan(self.engine, self.draft(app_key), backups=self.backups)

    def publish(self, app_key: str, author: str) -> Outcome:
        """Publish the files through the plan (PublishRefused when a step is refused)."""
        return publish(self.engine, self.draft(app_key), author=author, backups=self.backups)

    def history(self, app_key: str) -> list[published.PublishedVersion]:
        """The app's published versions, newest first."""
        with self.engine.connect() as conn:
            return published.history(conn, app_key, limit=50)

    def published_fields(self, app_key: str, form_key: str) -> set[str]:
        """The field keys of the form as last published (they never change again)."""
        with self.engine.connect() as conn:
            version = published.latest(conn, app_key)
        form = version.model().form(form_key) if version is not None else None
        return {f.key for f in form.fields} if form is not None else set()

    def _document(self, app_key: str, kind: str, key: str) -> Document:
        for found, path in self.definitions(app_key, kind):
            if found == key:
                return open_document(path)
        raise NoSuchDefinition(f"no {KINDS.get(kind, kind)} '{key}' in {self.folder(app_key)}/{kind}/")


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
