"""Password hashing (argon2id) and the password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified against when the username is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = _HASHER.hash("kakehashi-timing-equalizer")

MIN_LENGTH = 10
MAX_LENGTH = 256


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with no hash, spend the same time and say no."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def password_problems(password: str, username: str) -> list[str]:
    """Why a new password is refused (empty list: it is fine). Length over composition rules (NIST 800-63B)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"use at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        problems.append("do not put the user name in the password")
    if password and len(set(password)) < 4:
        problems.append("use more different characters")
    return problems
