"""Stored files (attachments), kept on disk by their SHA-256 under the data
directory: ``media/ab/abcdef...``. The same content is stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from hub.config import Config

MAX_FILES = 8  # files one message may carry


@dataclass(frozen=True)
class NewFile:
    """A file someone attaches to a message they write (from a form or the API)."""

    filename: str
    content_type: str
    data: bytes
    description: str | None = None  # alt text
    file_id: str | None = None  # the id it keeps (a client API upload's), else a new one


def path_of(cfg: Config, sha256: str) -> Path:
    return cfg.data / "media" / sha256[:2] / sha256


def url_of(cfg: Config, attachment_id: str, filename: str) -> str:
    return f"{cfg.base_url}/media/{attachment_id}/{quote(filename)}"


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


# Types a browser may show inline; everything else is served as a download.
INLINE = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "application/pdf", "text/plain",
          "audio/mpeg", "audio/ogg", "video/mp4", "video/webm"}


def setup(app, hub) -> None:
    """``GET /media/{id}/{filename}``: an attachment, by its unguessable id."""
    from aiohttp import web

    from hub.ids import is_id
    from hub.store import bridges as bridge_store
    from hub.store import messages as msg_store

    async def serve(request: web.Request) -> web.StreamResponse:
        attachment_id = request.match_info["id"]
        if not is_id(attachment_id):
            raise web.HTTPNotFound(text="no such file")
        async with hub.db.read() as conn:
            row = await bridge_store.get_attachment(conn, attachment_id)
            message = await msg_store.get_message_by_id(conn, row.message_id) if row else None
        if row is None or message is None or message.deleted_at or message.removed_at or not row.sha256:
            raise web.HTTPNotFound(text="no such file")
        path = path_of(hub.cfg, row.sha256)
        if not path.exists():
            raise web.HTTPGone(text="the file is no longer kept")
        ctype = row.content_type.split(";")[0].strip().lower()
        disposition = "inline" if ctype in INLINE else "attachment"
        headers = {
            "Content-Type": ctype if ctype in INLINE else "application/octet-stream",
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(row.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=31536000, immutable",
        }
        return web.FileResponse(path, headers=headers)

    app.router.add_get("/media/{id}/{filename}", serve)
