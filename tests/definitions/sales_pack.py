"""Helpers of the sales pack's tests: an API client signed in as one of the demo users."""

from __future__ import annotations

from fastapi.testclient import TestClient

from runtime.boot import Runtime
from tests.support import user_token


def as_user(runtime: Runtime, username: str) -> TestClient:
    """An API client signed in as `username` (a demo user; created without roles when missing)."""
    token = user_token(runtime.engine, username, ())
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})
