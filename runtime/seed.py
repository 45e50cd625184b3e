"""Demo data: a pack's `demo/users.yaml` and `demo/data.yaml`, written on first start.

`users.yaml` holds departments (with parent and manager) and users (roles, department,
one shared demo password). `data.yaml` maps form keys to lists of records written
through the records service. A record may carry `ref: name`; a later value
`{ref: name}` becomes that record's id, and `{user: name}` a user's id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from runtime.db import write
from runtime.identity.directory import create_department, create_user, department_id_of, user_id_of
from runtime.loading.problems import DefinitionError, Problem
from runtime.loading.source import parse_file
from runtime.records.service import RecordsService
from runtime.schema.system import departments, users


def demo_file(pack: str | Path, name: str = "data.yaml") -> Path | None:
    """A demo file of the pack, if it has one."""
    path = Path(pack) / "demo" / name
    return path if path.is_file() else None


def seed_users(service: RecordsService, path: Path) -> list[tuple[str, list[str], str]]:
    """Create the demo departments and users that are missing; answers (user, roles, password)."""
    data = _read(path)
    password = str(data.get("password", ""))
    with write(service.engine) as conn:
        existing = set(conn.execute(select(users.c.username)).scalars())
        known = set(conn.execute(select(departments.c.key)).scalars())
        for item in data.get("departments", []):
            if item["key"] not in known:
                create_department(conn, item["key"], item["name"], item.get("parent"))
        for item in data.get("users", []):
            if item["username"] not in existing:
                create_user(
                    conn,
                    item["username"],
                    password,
                    item.get("display_name"),
                    tuple(item.get("roles", [])),
                    item.get("department"),
                    item.get("language", "zh"),
                    item.get("email"),
                )
        for item in data.get("departments", []):
            if item.get("manager"):
                conn.execute(
                    update(departments)
                    .where(departments.c.id == department_id_of(conn, item["key"]))
                    .values(manager_id=user_id_of(conn, item["manager"]))
                )
    return [(u["username"], list(u.get("roles", [])), password) for u in data.get("users", [])]


def seed_demo(service: RecordsService, app_key: str, path: Path) -> int:
    """Write the demo records unless the app already holds data; answers how many were written."""
    app = service.apps[app_key]
    with service.engine.connect() as conn:
        for form in app.forms.values():
            if form.form.single:
                continue  # a single form's record is there from the start
            if conn.execute(select(func.count()).select_from(form.table)).scalar_one():
                return 0
    refs: dict[str, int] = {}
    written = 0
    for form_key, records in (_read(path) or {}).items():
        for record in records:
            data = dict(record)
            name = data.pop("ref", None)
            values = _resolve(service, data, refs, path)
            created = _single_written(service, app_key, form_key, values) or service.create(
                app_key, form_key, values
            )
            if name:
                refs[str(name)] = int(created["id"])
            written += 1
    return written


def _single_written(service: RecordsService, app_key: str, form_key: str, values: Any) -> Any:
    """The demo values of a single form go into its existing record; None when it has none."""
    form = service.apps[app_key].forms.get(form_key)
    if form is None or not form.form.single:
        return None
    existing = service.list_page(app_key, form_key, [("limit", "1")])["items"]
    if not existing:
        return None
    return service.update(app_key, form_key, int(existing[0]["id"]), values)


def _read(path: Path) -> Any:
    source = parse_file(path)
    if source.problems:
        raise DefinitionError(source.problems)
    return source.data


def _resolve(service: RecordsService, value: Any, refs: dict[str, int], path: Path) -> Any:
    if isinstance(value, dict):
        if set(value) == {"ref"}:
            if str(value["ref"]) not in refs:
                raise DefinitionError([Problem(str(path), 1, 1, f"unknown ref '{value['ref']}'")])
            return refs[str(value["ref"])]
        if set(value) == {"user"}:
            with service.engine.connect() as conn:
                return user_id_of(conn, str(value["user"]))
        if set(value) == {"department"}:
            with service.engine.connect() as conn:
                return department_id_of(conn, str(value["department"]))
        return {k: _resolve(service, v, refs, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(service, v, refs, path) for v in value]
    return value
