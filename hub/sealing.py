"""Sealing small secrets that must be kept (not only hashed) but must not be
readable from the database alone: Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) under the instance's secret key.

The key is ``secret_key`` from the configuration (``ROUNDTABLE_SECRET_KEY``),
or else 32 random bytes made once in the data directory (``secret.key``,
mode 0600). Several machines sharing one database set the same
``secret_key``.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken

from hub.config import Config

_CACHE: dict[str, Fernet] = {}


def _key_material(cfg: Config) -> bytes:
    if cfg.secret_key:
        return cfg.secret_key.encode()
    path = cfg.data / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.urlsafe_b64encode(os.urandom(32)))
                fh.flush()
                os.fsync(fh.fileno())
    return path.read_bytes().strip()


def _fernet(cfg: Config) -> Fernet:
    cache_key = f"{cfg.secret_key and 'cfg'}:{cfg.data}"
    if cache_key not in _CACHE:
        digest = hashlib.sha256(b"roundtable sealing\0" + _key_material(cfg)).digest()
        _CACHE[cache_key] = Fernet(base64.urlsafe_b64encode(digest))
    return _CACHE[cache_key]


def seal(cfg: Config, text: str) -> str:
    return _fernet(cfg).encrypt(text.encode()).decode()


def unseal(cfg: Config, sealed: str) -> str | None:
    """The text, or None if it was sealed under another key (or tampered with)."""
    try:
        return _fernet(cfg).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None
