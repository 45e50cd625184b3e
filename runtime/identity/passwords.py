"""Password hashing with Argon2id (argon2-cffi).

`verify_password` does the same Argon2 work whether or not there is a hash to check:
without one (an unknown or deactivated user, a user without a password) it checks
the password against a dummy hash made with the same parameters, so the time a
sign-in takes does not tell whether a user name exists.
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_LENGTH = 8
_DUMMY: list[str] = []
_DUMMY_LOCK = threading.Lock()


def hash_password(password: str) -> str:
    """An Argon2id hash of the password."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when the password matches the stored hash; never without one (but as slowly)."""
    try:
        matched = _HASHER.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(stored) and matched


def _dummy_hash() -> str:
    """A hash of a random secret, made once, with the parameters real hashes are made with."""
    with _DUMMY_LOCK:
        if not _DUMMY:
            _DUMMY.append(_HASHER.hash(secrets.token_urlsafe(32)))
        return _DUMMY[0]


def check_strength(password: str) -> str | None:
    """Why a password is too weak, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    return None
