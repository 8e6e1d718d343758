"""Stored files (attachments), kept on disk by their SHA-256 under the data
directory: ``media/ab/abcdef...``. The same content is stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from hub.config import Config


def path_of(cfg: Config, sha256: str) -> Path:
    return cfg.data / "media" / sha256[:2] / sha256


def store(cfg: Config, data: bytes) -> str:
    """Write ``data`` (atomically, once) and return its SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    target = path_of(cfg, digest)
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest
