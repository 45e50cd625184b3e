"""The `formloom` command line. Errors print as `file:line:col: message`, never a traceback."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from builder import identity_commands, publish_commands, serving, worker_command
from builder.scenarios import command as scenario_command
from builder.scenarios.model import scenario_schema
from runtime.api.https import HTTPS_ONLY_ENV, https_only
from runtime.api.limits import MAX_BODY_ENV, MAX_UPLOAD_ENV, parse_size
from runtime.db import resolve_url
from runtime.loading.loader import load_packs
from runtime.loading.problems import DefinitionError
from runtime.model import App, Form
from runtime.ops import notify
from runtime.ops.metrics import TOKEN_ENV as METRICS_TOKEN_ENV
from runtime.ops.metrics import metrics_token
from runtime.web.assets import missing_vendor_files

FORWARDED_ENV = "FORMLOOM_FORWARDED_ALLOW_IPS"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; answers the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    except publish_commands.CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"error: cannot use the database {safe_url(args)}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `formloom schema | head`
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="formloom", description="Definitions become a running app.")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check packs and report every problem")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(run=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of the definition language")
    schema.add_argument(
        "kind",
        nargs="?",
        choices=["app", "form", "scenario"],
        default="app",
        help="app: a whole pack in one file or app.yaml; form: a forms/*.yaml file; "
        "scenario: a tests/*.yaml file",
    )
    schema.set_defaults(run=_schema)

    serve = commands.add_parser("serve", help="serve packs over HTTP")
    serve.add_argument("paths", nargs="+", metavar="PATH")
    db_option(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--files",
        default=serving.default_files(),
        help=f"folder for uploaded files, which several servers may share (default: ${serving.FILES_ENV}, "
        "else files)",
    )
    serve.add_argument("--demo", action="store_true", help="write each pack's demo data into an empty app")
    serve.add_argument("--worker", action="store_true", help="also run a worker (timers, e-mails)")
    serve.add_argument("--backups", default="backups", help="folder for the backups of web publishes")
    serve.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get(FORWARDED_ENV) or None,
        metavar="IPS",
        help="proxies whose X-Forwarded-For/-Proto are believed: comma-separated addresses or networks "
        f"(default: ${FORWARDED_ENV}, else none: the peer's address is the client's)",
    )
    serve.add_argument(
        "--https-only",
        action="store_true",
        default=https_only(),
        help=f"the app is reached over https only: Secure cookies, and HSTS (also ${HTTPS_ONLY_ENV}=1)",
    )
    serve.add_argument(
        "--max-body",
        type=parse_size,
        default=os.environ.get(MAX_BODY_ENV) or None,
        metavar="SIZE",
        help=f"largest request body other than an upload, such as 2M (default: ${MAX_BODY_ENV}, else 2 MiB)",
    )
    serve.add_argument(
        "--max-upload",
        type=parse_size,
        default=os.environ.get(MAX_UPLOAD_ENV) or None,
        metavar="SIZE",
        help=f"largest uploaded file, such as 50M (default: ${MAX_UPLOAD_ENV}, else 50 MiB)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="server processes on this port (each with its own pool and listener); default 1",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long running requests may take to finish before the server stops (default 30)",
    )
    serve.add_argument(
        "--log-json",
        action="store_true",
        help="log one JSON line per request (with its X-Request-ID) and per event, on standard error",
    )
    serve.set_defaults(run=_serve)
    worker_command.add_command(commands, db_option, publish_commands.CommandError)
    publish_commands.add_commands(commands)
    identity_commands.add_commands(commands)
    scenario_command.add_command(commands, publish_commands.CommandError)
    return parser


def db_option(parser: argparse.ArgumentParser) -> None:
    """The `--db URL` option every database command takes."""
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="database URL (default: $FORMLOOM_DB, then sqlite:///formloom.db)",
    )


def safe_url(args: argparse.Namespace) -> str:
    """The database URL of the command, password hidden."""
    return make_url(resolve_url(getattr(args, "db", None))).render_as_string(hide_password=True)


def _validate(args: argparse.Namespace) -> int:
    for app in load_packs(args.paths):
        fields = sum(len(f.fields) for f in app.forms)
        print(f"ok: {app.app} {app.version}: {len(app.forms)} forms, {fields} fields")
    return 0


def definition_schema(kind: str) -> dict[str, object]:
    """The JSON Schema of an app file (`app`), a form file (`form`) or a scenario file (`scenario`)."""
    if kind == "scenario":
        return scenario_schema()
    model = App if kind == "app" else Form
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://formloom.dev/schema/{kind}.json"
    return schema


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(definition_schema(args.kind), indent=2, ensure_ascii=False))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from runtime.boot import NotPublished
    from runtime.seed import demo_file, seed_demo, seed_users

    paths = " ".join(args.paths)
    db = f" --db {safe_url(args)}" if args.db else ""
    if args.https_only:
        os.environ[HTTPS_ONLY_ENV] = "1"  # read where the API is built, also after each publish
    for value, name in ((args.max_body, MAX_BODY_ENV), (args.max_upload, MAX_UPLOAD_ENV)):
        if value is not None:
            os.environ[name] = str(value)  # read where the API and the file store are built

    if args.workers < 1:
        raise publish_commands.CommandError("--workers must be 1 or more")
    settings = serving.ServeSettings(
        paths=[str(p) for p in args.paths],
        db=args.db,
        files=str(args.files),
        backups=str(args.backups),
        log_json=args.log_json,
        hint=f"  formloom plan {paths}{db}\n  formloom publish {paths}{db}",
    )
    try:
        runtime = serving.build(settings)
    except NotPublished as exc:
        raise publish_commands.CommandError(str(exc)) from exc
    logins: list[tuple[str, list[str], str]] = []
    if args.demo:
        for path, app in zip(args.paths, runtime.apps, strict=True):
            people = demo_file(path, "users.yaml")
            if people is not None:
                logins.extend(seed_users(runtime.service, people))
            data = demo_file(path)
            if data is not None:
                count = seed_demo(runtime.service, app.app.app, data)
                print(
                    f"demo data: {count} records written to {app.app.app}"
                    if count
                    else f"demo data: {app.app.app} already holds records"
                )
    base = f"http://{args.host}:{args.port}"
    print(f"Formloom is serving {', '.join(a.app.app for a in runtime.apps)} at {base}")
    print(f"  web app: {base}/    designer (admins): {base}/designer")
    print(f"  API docs: {base}/docs    OpenAPI: {base}/openapi.json")
    for app in runtime.apps:
        print(f"  {app.app.app}: {base}/api/v1/{app.app.app}/{next(iter(app.forms))}")
    missing = missing_vendor_files()
    if missing:
        print(f"  warning: the web pages need {', '.join(missing)}: run `npm ci` (make run does)")
    if logins:
        print(f"  sign in at {base}/login (every demo user's password: {logins[0][2]}):")
        for username, roles, _ in logins:
            print(f"    {username:<16} {', '.join(roles)}")
        print("  API: formloom token create --user admin --db <URL>, then send Authorization: Bearer <token>")
    worker = worker_command.start_in_thread(runtime) if args.worker else None
    if worker is not None:
        print("  a worker runs timers, schedules, webhooks and e-mails in this process")
    if args.forwarded_allow_ips:
        print(f"  client addresses and https are taken from X-Forwarded-* sent by {args.forwarded_allow_ips}")
    if args.https_only:
        print("  https only: cookies are Secure and answers carry Strict-Transport-Security")
    if args.log_json:
        from runtime.ops.requests import log_as_json

        log_as_json()
        print("  logs: JSON lines on standard error, one per request")
    if metrics_token():
        print(f"  metrics: {base}/metrics (bearer ${METRICS_TOKEN_ENV})")
        print(f"  probes: {base}/healthz, {base}/readyz")
    else:
        print(f"  probes: {base}/healthz, {base}/readyz (set ${METRICS_TOKEN_ENV} to serve /metrics)")
    if runtime.live.pushed():
        print("  publishes reach this server by PostgreSQL notification")
    if args.workers > 1:
        print(f"  {args.workers} server processes")
    sys.stdout.flush()
    # uvicorn answers SIGTERM by finishing the requests in flight (up to --grace seconds), then
    # raises the signal again with the handler found before it started: this one, so that the
    # command goes on to stop its worker and exits 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        if args.workers > 1:  # each process builds its own app; this one only supervises (and runs --worker)
            if worker is None:
                notify.stop_all()
                runtime.engine.dispose()
            serving.to_env(settings)
            uvicorn.run(
                serving.IMPORT,
                factory=True,
                workers=args.workers,
                # a process still starting (imports, building the app) answers the supervisor's
                # health check late on a busy machine; uvicorn's 5 s would restart it for ever
                timeout_worker_healthcheck=60,
                **server_options(args),
            )
        else:
            uvicorn.run(runtime.api, **server_options(args))
    finally:  # SIGTERM: uvicorn let running requests finish; the worker finishes its job
        if worker is not None:
            worker.stop()
            worker.join(args.grace)
        notify.stop_all()
    return 0


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """What `serve` hands uvicorn: forwarded headers are believed only from the proxies given.

    uvicorn's own default believes X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS);
    a server behind no proxy, or whose proxy is not named, must not take a client's word
    for its address (sign-in throttling counts by it) or its scheme.
    """
    allowed = [a.strip() for a in (args.forwarded_allow_ips or "").split(",") if a.strip()]
    return {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "proxy_headers": bool(allowed),
        "forwarded_allow_ips": allowed,
        "timeout_graceful_shutdown": getattr(args, "grace", None),
    }


def author() -> str:
    """Who is publishing: the login name of the person running the command."""
    try:
        return getpass.getuser()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
