"""`formloom test PATH [PATH …] [--db URL] [-k NAME] [--junit FILE]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from builder.scenarios.runner import Databases, check_database, junit, load, run_all, selected


def add_command(commands: Any, error: type[Exception]) -> None:
    """Register `formloom test`."""
    test = commands.add_parser(
        "test", help="run the scenarios in packs' tests/ folders, each on a fresh database"
    )
    test.add_argument("paths", nargs="+", metavar="PATH", help="a pack folder (its tests/) or scenario files")
    test.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="a PostgreSQL database: the scenarios run in a fresh schema of it, dropped afterwards "
        "(default: a fresh SQLite database in a temporary folder); each scenario starts from the "
        "pack as just published",
    )
    test.add_argument(
        "-k",
        dest="keywords",
        action="append",
        default=[],
        metavar="NAME",
        help="only the scenarios whose name, or file name, contains NAME (repeatable)",
    )
    test.add_argument("--junit", default=None, metavar="FILE", help="also write the results as JUnit XML")
    test.set_defaults(run=lambda args: run_command(args, error))


def run_command(args: argparse.Namespace, error: type[Exception]) -> int:
    refused = check_database(args.db)
    if refused:
        raise error(refused)
    suites, packs = load(args.paths)
    runs = selected(suites, args.keywords)
    if not runs:
        print("no scenario matches", file=sys.stderr)
        return 1
    databases = Databases(args.db)
    databases.check()
    summary = run_all(runs, packs, databases, sys.stdout)
    if args.junit:
        junit(summary, Path(args.junit))
    print(summary.line())
    return 1 if summary.failed else 0
