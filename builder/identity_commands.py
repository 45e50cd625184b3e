"""`formloom user …`, `formloom token …` and `formloom department …`: the directory from the shell."""

from __future__ import annotations

import argparse
from typing import Any

from builder.publish_commands import CommandError
from runtime.db import make_engine, write
from runtime.identity.directory import (
    DirectoryError,
    add_role,
    create_department,
    create_user,
    remove_role,
    set_active,
    set_manager,
    set_password,
)
from runtime.identity.tokens import create_token, revoke_token
from runtime.schema.migrate import upgrade_system_tables


def add_commands(commands: Any) -> None:
    """Register the directory commands on the `formloom` parser."""
    from builder.cli import db_option

    user = commands.add_parser(
        "user", help="create users, give and take roles, set passwords, deactivate (each ends their sessions)"
    )
    user_commands = user.add_subparsers(dest="action", required=True)
    create = user_commands.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--password", required=True)
    create.add_argument("--role", action="append", default=[], help="a role (repeat for several)")
    create.add_argument("--department", default=None, help="department key")
    create.add_argument("--display-name", default=None)
    create.add_argument("--language", choices=["zh", "en"], default="zh")
    create.add_argument("--email", default=None, help="where e-mail notifications go")
    db_option(create)
    create.set_defaults(run=_user_create)
    role = user_commands.add_parser("role", help="give a user a role (--remove takes it away)")
    role.add_argument("name")
    role.add_argument("role")
    role.add_argument("--remove", action="store_true")
    db_option(role)
    role.set_defaults(run=_user_role)
    password = user_commands.add_parser("password", help="set a user's password")
    password.add_argument("name")
    password.add_argument("--password", required=True)
    db_option(password)
    password.set_defaults(run=_user_password)
    for verb, text in (
        ("deactivate", "deactivate a user: their sessions end and their API tokens are revoked"),
        ("activate", "let a deactivated user sign in again"),
    ):
        switch = user_commands.add_parser(verb, help=text)
        switch.add_argument("name")
        db_option(switch)
        switch.set_defaults(run=_user_active, active=verb == "activate")

    token = commands.add_parser("token", help="create or revoke API tokens")
    token_commands = token.add_subparsers(dest="action", required=True)
    make = token_commands.add_parser(
        "create", help="create a token; it is printed once, then only its hash is kept"
    )
    make.add_argument("--user", required=True)
    make.add_argument("--name", default="api")
    make.add_argument("--days", type=int, default=None, help="expire after this many days")
    db_option(make)
    make.set_defaults(run=_token_create)
    revoke = token_commands.add_parser("revoke", help="revoke a user's tokens of a name")
    revoke.add_argument("--user", required=True)
    revoke.add_argument("--name", default="api")
    db_option(revoke)
    revoke.set_defaults(run=_token_revoke)

    department = commands.add_parser("department", help="create departments (the org chart)")
    department_commands = department.add_subparsers(dest="action", required=True)
    add = department_commands.add_parser("create", help="create a department")
    add.add_argument("key")
    add.add_argument("--name", required=True)
    add.add_argument("--parent", default=None)
    add.add_argument("--manager", default=None, help="user name of the manager")
    db_option(add)
    add.set_defaults(run=_department_create)
    manager = department_commands.add_parser("manager", help="set a department's manager")
    manager.add_argument("key")
    manager.add_argument("user")
    db_option(manager)
    manager.set_defaults(run=_department_manager)


def _directory(args: argparse.Namespace, action: Any) -> Any:
    engine = make_engine(args.db)
    upgrade_system_tables(engine)
    try:
        with write(engine) as conn:
            return action(conn)
    except DirectoryError as exc:
        raise CommandError(str(exc)) from exc


def _user_create(args: argparse.Namespace) -> int:
    _directory(
        args,
        lambda conn: create_user(
            conn,
            args.name,
            args.password,
            args.display_name,
            tuple(args.role),
            args.department,
            args.language,
            args.email,
        ),
    )
    print(f"created user {args.name}" + (f" with roles {', '.join(args.role)}" if args.role else ""))
    return 0


def _user_role(args: argparse.Namespace) -> int:
    change = remove_role if args.remove else add_role
    _directory(args, lambda conn: change(conn, args.name, args.role))
    if args.remove:
        print(f"took role {args.role} from {args.name}; their sessions have ended")
    else:
        print(f"gave role {args.role} to {args.name}")
    return 0


def _user_password(args: argparse.Namespace) -> int:
    _directory(args, lambda conn: set_password(conn, args.name, args.password))
    print(f"password of {args.name} changed; their sessions have ended")
    return 0


def _user_active(args: argparse.Namespace) -> int:
    _directory(args, lambda conn: set_active(conn, args.name, args.active))
    if args.active:
        print(f"{args.name} is active again (earlier API tokens stay revoked)")
    else:
        print(f"{args.name} is deactivated; their sessions have ended and their API tokens are revoked")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    print(_directory(args, lambda conn: create_token(conn, args.user, args.name, args.days)))
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    count = _directory(args, lambda conn: revoke_token(conn, args.user, args.name))
    print(f"revoked {count} token(s)")
    return 0


def _department_create(args: argparse.Namespace) -> int:
    _directory(args, lambda conn: create_department(conn, args.key, args.name, args.parent, args.manager))
    print(f"created department {args.key}")
    return 0


def _department_manager(args: argparse.Namespace) -> int:
    _directory(args, lambda conn: set_manager(conn, args.key, args.user))
    print(f"{args.user} manages {args.key}")
    return 0
