"""What every endpoint of the client API shares: who is calling (the token,
its scopes, the actor it speaks as), parameters from a query string, a form,
multipart or JSON alike, errors as ``{"error": ...}``, and paging links."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from urllib.parse import urlencode

import sqlalchemy as sa
from aiohttp import web

from hub.context import Hub
from hub.inbox.access import Acting
from hub.store import actors as actor_store
from hub.store import mastodon as client_store
from hub.store import org as org_store

HUB_KEY = web.AppKey("mastodon_hub", Hub)
MAX_BODY = 256 * 1024  # JSON and forms; media uploads have their own limit

# Mastodon's scopes. A token with a top-level scope (``read``) has all of its sub-scopes;
# the legacy ``follow`` scope covers follows, blocks and mutes.
SUB_SCOPES = {
    "read": ("accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists", "mutes",
             "notifications", "search", "statuses"),
    "write": ("accounts", "blocks", "bookmarks", "conversations", "favourites", "filters", "follows", "lists",
              "media", "mutes", "notifications", "reports", "statuses"),
}
FOLLOW_COVERS = {"read:follows", "write:follows", "read:blocks", "write:blocks", "read:mutes", "write:mutes"}
ALL_SCOPES = ["read", "write", "follow", "push", "profile",
              *(f"{top}:{sub}" for top, subs in SUB_SCOPES.items() for sub in subs),
              # Roundtable: reading customers' granted data (/api/roundtable/v1/.../consent/...), never implied
              "read:consent", "write:consent"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(value, *, default: str = "read") -> list[str]:
    """A space- (or plus-, or comma-) separated scope string, checked against the known scopes."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(value)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "scope must be a space-separated string", error_code="invalid_scope")
    value = (value or "").replace("+", " ").replace(",", " ").strip() or default
    scopes = list(dict.fromkeys(value.split()))
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ApiError(400, f"unknown scope {unknown[0]!r}", error_code="invalid_scope")
    return scopes


def grants(scopes: list[str] | set[str], needed: str) -> bool:
    have = set(scopes)
    if needed in have:
        return True
    if needed.endswith(":consent"):
        return False  # only asked for by name: "read" does not reach customers' data
    top = needed.split(":")[0]
    if top in have and ":" in needed:
        return True
    if needed in FOLLOW_COVERS and "follow" in have:
        return True
    return needed == "profile" and ("read" in have or "read:accounts" in have)


def covered(requested: list[str], allowed: list[str]) -> bool:
    """Whether every requested scope is within what an app registered."""
    return all(grants(allowed, s) for s in requested)


@dataclasses.dataclass(frozen=True)
class Caller:
    token: sa.Row
    scopes: tuple[str, ...]
    account: sa.Row | None
    actor: sa.Row | None
    role: str

    @property
    def acting(self) -> Acting:
        return Acting(actor=self.actor, account=self.account, role=self.role)

    def need(self, scope: str) -> None:
        if not grants(self.scopes, scope):
            raise ApiError(403, f"This action is outside the authorized scopes (needs {scope})")


def bearer_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("access_token") or None


async def holder_of(conn, row: sa.Row | None) -> tuple[sa.Row, sa.Row, sa.Row] | None:
    """``(account, actor, membership)`` a live token speaks for, or None when it may no longer:
    the actor is gone, the login left it, or (for an organization's token) the member is neither
    an admin nor allowed to use apps any more. Checked on every request, stream poll and push."""
    if row is None or not row.account_id or row.revoked_at is not None:
        return None
    account = await actor_store.get_account_by_id(conn, row.account_id)
    actor = await actor_store.get_actor_by_id(conn, row.actor_id) if row.actor_id else None
    if account is None or actor is None or actor.deleted_at is not None:
        return None
    membership = await org_store.get_membership(conn, account_id=account.id, actor_id=actor.id)
    if membership is None:
        return None
    own = actor.username == account.username
    if not own and membership.role not in ("owner", "admin") and not membership.app_access:
        return None
    return account, actor, membership


async def caller_of(request: web.Request, *, required: bool = True, user: bool = True) -> Caller | None:
    """The token's owner. ``required``: 401 without one; ``user``: an app-only token is not enough."""
    hub = request.app[HUB_KEY]
    token = bearer_of(request)
    if token is None:
        if required:
            raise ApiError(401, "The access token is invalid")
        return None
    if len(token) > 200:
        raise ApiError(401, "The access token is invalid")
    async with hub.db.read() as conn:
        row = await client_store.get_token(conn, digest(token))
        holder = await holder_of(conn, row) if row is not None and row.account_id else None
    if row is None or (row.account_id and holder is None):
        raise ApiError(401, "The access token is invalid")
    account, actor, membership = holder or (None, None, None)
    if user and account is None:
        raise ApiError(422, "This method requires an authenticated user")
    if row.last_used_at is None or dt.datetime.now(dt.timezone.utc) - row.last_used_at > dt.timedelta(minutes=5):
        async with hub.db.write() as conn:
            await client_store.touch_token(conn, row.id)
    return Caller(token=row, scopes=tuple(row.scopes.split()), account=account, actor=actor,
                  role=membership.role if membership is not None else "agent")


async def viewer_of(request: web.Request, scope: str = "read:statuses") -> Caller | None:
    """For what anyone may read: None without a token (the public view); with one, the token must
    hold ``scope`` (a push-only token reads nothing), and its actor is the viewer."""
    if bearer_of(request) is None:
        return None
    caller = await caller_of(request, user=False)
    if caller.actor is not None:
        caller.need(scope)
    return caller


def text_param(params: dict, key: str, *, default: str = "") -> str:
    """A parameter that must be text (a number is taken as its digits); 422 for a list or an object."""
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError(422, f"Validation failed: {key} must be a string")
    return str(value)


async def params_of(request: web.Request, *, files: bool = False, max_file: int = 0) -> dict:
    """Parameters from the query string and the body (JSON, urlencoded or multipart).

    ``key[]`` collects a list; ``a[b]`` and ``a[0][b]`` build the nested objects
    Rails-style forms send (``fields_attributes``, ``poll[options][]``). With
    ``files``, uploaded files come through as ``aiohttp`` field objects.
    """
    out: dict = {}
    for key in request.query.keys():
        _put(out, key, request.query.getall(key) if key.endswith("[]") else request.query.get(key))
    if request.method in ("GET", "HEAD") or not request.body_exists:
        return out
    ctype = request.content_type
    if ctype == "application/json":
        if request.content_length and request.content_length > MAX_BODY:
            raise ApiError(413, "the request body is too large")
        buf = bytearray()
        while chunk := await request.content.read(64 * 1024):  # the whole body, however it arrives
            buf.extend(chunk)
            if len(buf) > MAX_BODY:
                raise ApiError(413, "the request body is too large")
        raw = bytes(buf)
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError:
                raise ApiError(400, "the body is not valid JSON") from None
            if not isinstance(data, dict):
                raise ApiError(400, "the body must be a JSON object")
            out.update(data)
        return out
    if ctype == "multipart/form-data":
        reader = await request.multipart()
        total = files_total = 0
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.filename is not None:
                if not files:
                    raise ApiError(422, "this method takes no files")
                data = bytearray()
                while chunk := await part.read_chunk(256 * 1024):  # not part.read(): that stops at client_max_size
                    data.extend(chunk)
                    files_total += len(chunk)
                    if len(data) > max_file:
                        raise ApiError(413, f"File is larger than {max_file // (1024 * 1024)} MB")
                    if files_total > 2 * max_file:  # an avatar and a header at most
                        raise ApiError(413, "the request body is too large")
                out[part.name] = (part.filename, part.headers.get("Content-Type", "application/octet-stream"),
                                  bytes(data))
                continue
            value = (await part.read(decode=True)).decode("utf-8", "replace")
            total += len(value)
            if total > MAX_BODY:
                raise ApiError(413, "the request body is too large")
            _put(out, part.name or "", value)
        return out
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError(413, "the request body is too large")
    form = await request.post()
    for key in form.keys():
        values = [v for v in form.getall(key) if isinstance(v, str)]
        _put(out, key, values if key.endswith("[]") else (values[-1] if values else None))
    return out


def _put(out: dict, key: str, value) -> None:
    if "[" not in key:
        out[key] = value
        return
    head, rest = key.split("[", 1)
    parts = [head] + [p.rstrip("]") for p in rest.split("[")]
    target = out
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last:
            if part == "":
                return
            target[part] = value
            return
        if parts[i + 1] == "":  # a list: key[] or key[x][]
            existing = target.get(part)
            values = value if isinstance(value, list) else [value]
            target[part] = (existing if isinstance(existing, list) else []) + values
            return
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            return


def as_bool(value, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "t")


def as_list(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit() else 0)]
    return [value]


def limit_of(params: dict, default: int = 20, maximum: int = 40) -> int:
    try:
        n = int(params.get("limit") or default)
    except (TypeError, ValueError):
        raise ApiError(400, "limit must be a number") from None
    return max(1, min(n, maximum))


def paging(params: dict) -> dict:
    return {k: (str(params[k]) if params.get(k) else None) for k in ("max_id", "since_id", "min_id")}


def link_header(request: web.Request, ids: list[str], params: dict) -> dict:
    """``Link`` with ``next`` (older: ``max_id``) and ``prev`` (newer: ``min_id``), as Mastodon sends."""
    if not ids:
        return {}
    hub = request.app[HUB_KEY]
    base = f"{hub.cfg.base_url}{request.path}"
    keep = {k: v for k, v in request.query.items() if k not in ("max_id", "since_id", "min_id", "access_token")}
    nxt = f"{base}?{urlencode({**keep, 'max_id': ids[-1]})}"
    prev = f"{base}?{urlencode({**keep, 'min_id': ids[0]})}"
    return {"Link": f'<{nxt}>; rel="next", <{prev}>; rel="prev"'}


def json_response(data, *, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 with milliseconds, in UTC, as Mastodon writes it."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
