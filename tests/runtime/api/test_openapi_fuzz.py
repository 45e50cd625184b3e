"""Schemathesis drives the served sales pack from its own OpenAPI spec: no 5xx, no off-schema answer."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from runtime.boot import start
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import SALES, admin_token


@pytest.fixture(params=["sqlite", "postgresql"])
def sales_schema(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/fuzz.db"
    else:
        url = request.getfixturevalue("pg_schema_url")
    runtime = start([SALES], url, tmp_path / "files")
    people, data = demo_file(SALES, "users.yaml"), demo_file(SALES)
    assert people is not None and data is not None
    seed_users(runtime.service, people)
    seed_demo(runtime.service, "sales", data)
    token = admin_token(runtime.engine)
    loaded = schemathesis.openapi.from_asgi("/openapi.json", runtime.api)
    loaded.token = token  # type: ignore[attr-defined]
    yield loaded
    runtime.engine.dispose()


def test_the_api_never_fails_and_keeps_its_spec(sales_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in sales_schema.get_all_operations()]
    assert len(operations) >= 6 * 6 + 4  # six routes for each of six forms, files, apps
    statuses: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("FORMLOOM_FUZZ_EXAMPLES", "10")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                checks=[not_a_server_error, response_schema_conformance],
                headers={"Authorization": f"Bearer {sales_schema.token}"},  # type: ignore[attr-defined]
            )
            statuses[response.status_code] += 1

        exercise()
    assert statuses[200] and statuses[201] and statuses[422], statuses
