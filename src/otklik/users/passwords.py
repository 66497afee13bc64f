"""Password hashing with argon2id (argon2-cffi's tuned defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from otklik.kit.errors import Unprocessable

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()
# Verifying against this when the email is unknown makes both failures take the same time,
# so response timing does not reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password-only-for-timing")


class WeakPassword(Unprocessable):
    code = "weak_password"


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"A password may have at most {MAX_LENGTH} characters")
    if password.strip() == "" or len(set(password)) < 4:
        raise WeakPassword("The password is too simple")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
