"""The commands that change a database's definitions: plan, publish, history, export, purge."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import Engine

from builder.publishing.export import export_published
from builder.publishing.publish import PublishRefused, make_plan, publish
from builder.publishing.purge import find_retired, purge
from builder.scenarios.staging import allow_clock
from runtime.db import make_engine
from runtime.loading.loader import load_packs
from runtime.schema import published
from runtime.schema.migrate import upgrade_system_tables


class CommandError(Exception):
    """A command that cannot go on; printed as `error: …` with exit code 1."""


def add_commands(commands: Any) -> None:
    """Register the publishing commands on the `formloom` parser."""
    from builder.cli import db_option

    plan = commands.add_parser("plan", help="show what a publish would change, in words and SQL")
    plan.add_argument("paths", nargs="+", metavar="PATH")
    db_option(plan)
    plan.add_argument("--coerce", action="store_true", help="show the plan as if forcing coercible steps")
    plan.set_defaults(run=_plan)

    pub = commands.add_parser("publish", help="apply the plan atomically and record the version")
    pub.add_argument("paths", nargs="+", metavar="PATH")
    db_option(pub)
    pub.add_argument(
        "--coerce",
        action="store_true",
        help="force coercible steps: values that do not fit are backed up, then changed",
    )
    pub.add_argument("--author", default=None, help="who publishes (default: your login name)")
    pub.add_argument("--backups", default="backups", help="folder for backup files (default: backups)")
    pub.add_argument(
        "--allow-clock",
        action="store_true",
        help="mark a staging database: `formloom worker --at TIME` may then run its due work as of a "
        "later time (never on production: see docs/processes.md)",
    )
    pub.set_defaults(run=_publish)

    history = commands.add_parser("history", help="list the published versions")
    db_option(history)
    history.add_argument("--app", default=None, help="only this app")
    history.set_defaults(run=_history)

    export = commands.add_parser("export", help="write the published definitions back to pack files")
    db_option(export)
    export.add_argument("--app", default=None, help="only this app")
    export.add_argument("--out", required=True, help="folder to write <app>/app.yaml and forms/ into")
    export.set_defaults(run=_export)

    drop = commands.add_parser("purge", help="drop retired columns and tables, after a JSONL backup")
    drop.add_argument("paths", nargs="+", metavar="PATH")
    db_option(drop)
    drop.add_argument("--yes", action="store_true", help="really drop (without it, only list)")
    drop.add_argument("--backups", default="backups", help="folder for backup files (default: backups)")
    drop.set_defaults(run=_purge)


def _plan(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    refused = 0
    try:
        for app in load_packs(args.paths):
            plan = make_plan(engine, app, coerce=args.coerce)
            print(plan.render(engine.dialect.name))
            refused += len(plan.refusals)
    finally:
        engine.dispose()  # close the connections now, not when the interpreter collects them
    return 1 if refused else 0


def _publish(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    try:
        return _publish_apps(args, engine)
    finally:
        engine.dispose()


def _publish_apps(args: argparse.Namespace, engine: Engine) -> int:
    from builder.cli import author

    for app in load_packs(args.paths):
        try:
            outcome = publish(
                engine, app, coerce=args.coerce, author=args.author or author(), backups=args.backups
            )
        except PublishRefused as exc:
            print(exc.plan.render(engine.dialect.name))
            raise CommandError(f"publish of {app.app} refused: {exc}; nothing was changed") from exc
        print(outcome.plan.render(engine.dialect.name))
        if outcome.version_id is None:
            print(f"{app.app} {app.version} is already published")
        else:
            print(f"published {app.app} {app.version} as version #{outcome.version_id}")
        if outcome.backup is not None:
            print(f"values changed by --coerce were saved first in {outcome.backup}")
    if args.allow_clock:
        fresh = allow_clock(engine, args.author or author())
        print(
            ("this database now allows" if fresh else "this database already allows")
            + " moving its clock with `formloom worker --at TIME`: a staging database only"
        )
    return 0


def _history(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    upgrade_system_tables(engine)
    with engine.connect() as conn:
        versions = published.history(conn, args.app)
    if not versions:
        print("no published versions")
    for v in versions:
        steps = len((v.plan or {}).get("steps", []))
        when = v.published_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        print(
            f"#{v.id:<4} {v.app:<12} {v.version:<10} {v.content_hash[:12]}  {when}  "
            f"{v.author or '-':<12} {steps} step(s)"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    upgrade_system_tables(engine)
    written = export_published(engine, args.out, args.app)
    if not written:
        raise CommandError("nothing is published in this database")
    for path in written:
        print(path)
    return 0


def _purge(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    for app in load_packs(args.paths):
        _require_published(engine, app)
        retired = find_retired(engine, app)
        if retired.empty:
            print(f"{app.app}: nothing is retired")
            continue
        for table, column in retired.columns:
            print(f"{app.app}: retired column {table}.{column}")
        for table in retired.tables:
            print(f"{app.app}: retired table {table}")
        if not args.yes:
            print("run again with --yes to back them up and drop them")
            continue
        _, path = purge(engine, app, args.backups)
        print(f"{app.app}: dropped; the data was saved first in {path}")
    return 0


def _require_published(engine: Any, app: Any) -> None:
    with engine.connect() as conn:
        current = published.current_hashes(conn)
    if current.get(app.app) != published.content_hash(app):
        raise CommandError(f"these files are not the published version of {app.app}; publish them first")
