"""Password hashing with scrypt from the standard library (RFC 7914).

Why scrypt: it is memory-hard (resists GPU/ASIC guessing), it is one of the algorithms OWASP's
Password Storage Cheat Sheet recommends, with the parameters used here (N=2^17, r=8, p=1), and
``hashlib.scrypt`` ships with Python's OpenSSL — no native dependency to build or keep patched.
The parameters are stored in each hash, so they can be raised later without invalidating users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP Password Storage Cheat Sheet, "scrypt": N=2^17 (128 MiB), r=8, p=1.
N, R, P = 2**17, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 8  # NIST SP 800-63B §5.1.1.2: at least 8 characters for user-chosen secrets
MAX_LENGTH = 256


class PasswordError(ValueError):
    """A password that breaks a rule (too short, too long)."""


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(
            f"password must have at least {MIN_LENGTH} characters [rule: password-length]"
        )
    if len(password) > MAX_LENGTH:
        raise PasswordError(
            f"password must have at most {MAX_LENGTH} characters [rule: password-length]"
        )


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * r * n + 1024 * 1024,  # default 32 MiB is below what N=2^17 needs
        dklen=KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` (base64)."""
    check_password_rules(password)
    salt = secrets.token_bytes(SALT_BYTES)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison against a stored hash; malformed hashes never verify."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or len(password) > MAX_LENGTH:
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4]), base64.b64decode(parts[5])
    except ValueError:
        return False
    return hmac.compare_digest(_derive(password, salt, n, r, p), key)
