"""Schemathesis drives the served sales pack from its own OpenAPI spec, as an admin and as a
sales rep: no 5xx, no answer off the spec (body, status code or content type), and every
`$ref` of the spec resolves.

The in-suite run is small (`FORMLOOM_FUZZ_EXAMPLES` examples per operation, 5 by default)
and replays fixed examples under CI=true; run it with more examples, or run `st run`
against `formloom serve` (see docs/security.md), to explore further.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from runtime.boot import Runtime, start
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import SALES, admin_token

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
EXAMPLES = int(os.environ.get("FORMLOOM_FUZZ_EXAMPLES", "5"))


def served_sales(url: str, files: Path) -> Runtime:
    runtime = start([SALES], url, files)
    people, data = demo_file(SALES, "users.yaml"), demo_file(SALES)
    assert people is not None and data is not None
    seed_users(runtime.service, people)
    seed_demo(runtime.service, "sales", data)
    return runtime


@pytest.fixture(params=["sqlite", "postgresql"])
def sales(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/fuzz.db"
    else:
        url = request.getfixturevalue("pg_schema_url")
    runtime = served_sales(url, tmp_path / "files")
    yield runtime
    runtime.engine.dispose()


@pytest.mark.parametrize("user", ["admin", "li.rep"])
def test_the_api_never_fails_and_keeps_its_spec(sales: Runtime, user: str) -> None:
    token = admin_token(sales.engine, user)  # li.rep exists: a sales rep's token
    schema = schemathesis.openapi.from_asgi("/openapi.json", sales.api)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6 * 6 + 4  # six routes for each of six forms, files, apps
    statuses: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=os.environ.get("CI") == "true",
        )
        def exercise(case: schemathesis.Case) -> None:
            response = case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Bearer {token}"})
            statuses[response.status_code] += 1

        exercise()
    assert statuses[200] and statuses[422], statuses
    if user == "admin":
        assert statuses[201], statuses
    else:
        assert statuses[403] or statuses[404], statuses


def test_every_ref_of_the_spec_resolves(tmp_path: Path) -> None:
    runtime = start([SALES], f"sqlite:///{tmp_path}/spec.db", tmp_path / "files")
    spec = runtime.api.openapi()
    refs = list(_refs(spec, "#"))
    assert len(refs) > 100
    dangling = sorted({(ref, where) for where, ref in refs if not _resolves(spec, ref)})
    assert not dangling, dangling[:10]
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    runtime.engine.dispose()


def test_if_match_and_filters_are_typed_as_the_server_reads_them(tmp_path: Path) -> None:
    runtime = start([SALES], f"sqlite:///{tmp_path}/spec.db", tmp_path / "files")
    paths = runtime.api.openapi()["paths"]
    for method in ("patch", "delete"):
        (if_match,) = [
            p for p in paths["/api/v1/sales/lead/{record_id}"][method]["parameters"] if p["in"] == "header"
        ]
        assert if_match["schema"]["type"] == "string" and "pattern" in if_match["schema"], if_match
    listed = {p["name"]: p["schema"] for p in paths["/api/v1/sales/opportunity"]["get"]["parameters"]}
    assert listed["account"]["type"] == "integer" and listed["created_by"]["type"] == "integer"
    assert listed["stage"]["enum"][0] == "needs_analysis"
    assert listed["expected_close_date"] == {"type": "string", "format": "date"}
    assert listed["created_at"] == {"type": "string", "format": "date-time"}
    assert listed["amount"]["pattern"] and listed["count"] == {"type": "boolean"}
    lead = {p["name"] for p in paths["/api/v1/sales/lead"]["get"]["parameters"]}
    multi = [
        k for k, f in runtime.service.apps["sales"].forms["lead"].fields.items() if f.type == "multi_select"
    ]
    assert all(f"{key}__contains" in lead and key not in lead for key in multi)
    runtime.engine.dispose()


def _refs(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _refs(item, f"{where}/{index}")


def _resolves(spec: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
