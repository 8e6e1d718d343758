"""Web Push for the client API: one subscription per access token
(``/api/v1/push/subscription``), and for each notification of the token's
actor that the subscription's alerts and policy let through, a ``push.send``
job that POSTs the notification to the push service, encrypted for the
subscriber (RFC 8291, ``aes128gcm``, with the ``http_ece`` library) and
signed with the instance's VAPID key (RFC 8292, with ``py_vapid``).

The VAPID key pair is made once and kept in the instance actor's local
settings (never federated), so every process of an instance signs with the
same key and clients see one ``server_key``/``vapid_key``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import weakref
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.jobs import Outcome
from hub.mastodon.core import HUB_KEY, ApiError, as_bool, caller_of, holder_of, json_response, params_of
from hub.net import FetchError, status_error
from hub.store import actors as actor_store
from hub.store import mastodon as client_store

log = logging.getLogger(__name__)
KIND = "push.send"
ALERTS = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
          "admin.sign_up", "admin.report")
POLICIES = ("all", "followed", "follower", "none")
TTL_S = 48 * 3600
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(value: str) -> bytes:
    value = value.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


async def vapid_key(hub) -> ec.EllipticCurvePrivateKey:
    """The instance's VAPID private key, made on first use."""
    if hub in _KEYS:
        return _KEYS[hub]
    from hub.actors import ensure_instance_actor

    instance = await ensure_instance_actor(hub)
    async with hub.db.write() as conn:
        row = await actor_store.get_actor_by_id(conn, instance.id)
        settings = dict(row.settings or {})
        pem = settings.get("vapid_private_key")
        if not pem:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
            settings["vapid_private_key"] = pem
            await actor_store.update_actor(conn, instance.id, {"settings": settings})
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    _KEYS[hub] = key
    return key


def public_key(hub) -> str | None:
    """The VAPID public key (URL-safe base64 of the uncompressed P-256 point), once loaded."""
    key = _KEYS.get(hub)
    if key is None:
        return None
    return _b64(key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


async def public_key_async(hub) -> str:
    await vapid_key(hub)
    return public_key(hub)


# --- subscriptions ------------------------------------------------------------------------


def _subscription_json(hub, row) -> dict:
    # Mastodon sends this id as a number and Tusky and Ice Cubes decode it as one: our id's time part
    return {"id": number_of(row.id), "endpoint": row.endpoint, "standard": bool(row.standard), "alerts": row.alerts,
            "policy": row.policy, "server_key": public_key(hub)}


def number_of(ulid: str) -> int:
    """An id's millisecond time part: a number apps that want one (push payloads) can hold."""
    from hub.ids import _ALPHABET

    value = 0
    for ch in ulid[:10]:
        value = value * 32 + _ALPHABET.index(ch)
    return value


def _alerts_of(params: dict, current: dict | None = None) -> dict:
    data = params.get("data") if isinstance(params.get("data"), dict) else {}
    given = data.get("alerts") if isinstance(data.get("alerts"), dict) else {}
    out = dict(current or {a: False for a in ALERTS})
    for name in ALERTS:
        if name in given:
            out[name] = as_bool(given[name])
    return out


def _policy_of(params: dict, current: str = "all") -> str:
    data = params.get("data") if isinstance(params.get("data"), dict) else {}
    policy = data.get("policy") or params.get("policy") or current
    if policy not in POLICIES:
        raise ApiError(422, f"Validation failed: policy must be one of {', '.join(POLICIES)}")
    return policy


async def create_subscription(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    caller = await caller_of(request)
    caller.need("push")
    params = await params_of(request)
    sub = params.get("subscription") if isinstance(params.get("subscription"), dict) else {}
    keys = sub.get("keys") if isinstance(sub.get("keys"), dict) else {}
    endpoint = str(sub.get("endpoint") or "")
    p256dh, auth = str(keys.get("p256dh") or ""), str(keys.get("auth") or "")
    parts = urlsplit(endpoint)
    if len(endpoint) > 2000 or parts.scheme not in ("https", "http") or not parts.netloc:
        raise ApiError(422, "Validation failed: subscription[endpoint] must be an https URL")
    if parts.scheme == "http" and not hub.cfg.dev:
        raise ApiError(422, "Validation failed: subscription[endpoint] must be an https URL")
    try:
        point, secret = _unb64(p256dh), _unb64(auth)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError):
        raise ApiError(422, "Validation failed: subscription[keys][p256dh] is not a P-256 public key") from None
    if len(secret) != 16:
        raise ApiError(422, "Validation failed: subscription[keys][auth] must be 16 bytes")
    await vapid_key(hub)
    from hub import sealing
    from hub.mastodon.core import bearer_of

    async with hub.db.write() as conn:
        await client_store.put_push_subscription(conn, caller.token.id, {
            "endpoint": endpoint, "p256dh": p256dh, "auth": auth, "alerts": _alerts_of(params),
            "policy": _policy_of(params), "standard": as_bool(sub.get("standard")),
            "sealed_token": sealing.seal(hub.cfg, bearer_of(request))})
        row = await client_store.get_push_subscription(conn, caller.token.id)
    return json_response(_subscription_json(hub, row))


async def _own(request: web.Request):
    hub = request.app[HUB_KEY]
    caller = await caller_of(request)
    caller.need("push")
    async with hub.db.read() as conn:
        row = await client_store.get_push_subscription(conn, caller.token.id)
    if row is None:
        raise ApiError(404, "Record not found")
    await vapid_key(hub)
    return hub, caller, row


async def get_subscription(request: web.Request) -> web.Response:
    hub, _caller, row = await _own(request)
    return json_response(_subscription_json(hub, row))


async def update_subscription(request: web.Request) -> web.Response:
    hub, caller, row = await _own(request)
    params = await params_of(request)
    async with hub.db.write() as conn:
        await client_store.update_push_subscription(conn, caller.token.id, {
            "alerts": _alerts_of(params, row.alerts), "policy": _policy_of(params, row.policy)})
        row = await client_store.get_push_subscription(conn, caller.token.id)
    return json_response(_subscription_json(hub, row))


async def delete_subscription(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    caller = await caller_of(request)
    caller.need("push")
    async with hub.db.write() as conn:
        await client_store.delete_push_subscription(conn, caller.token.id)
    return json_response({})


# --- sending ------------------------------------------------------------------------------


def encrypt(payload: bytes, p256dh: str, auth: str, *, standard: bool) -> tuple[bytes, dict]:
    """The payload encrypted for one subscriber with a fresh key: RFC 8291 ``aes128gcm`` for an app
    that said it takes it, else the older ``aesgcm`` draft Mastodon sends (salt and key in headers).
    Returns ``(body, headers)``."""
    import os

    import http_ece

    ephemeral = ec.generate_private_key(ec.SECP256R1())
    if standard:
        body = http_ece.encrypt(payload, private_key=ephemeral, dh=_unb64(p256dh), auth_secret=_unb64(auth),
                                version="aes128gcm")
        return body, {"Content-Encoding": "aes128gcm"}
    salt = os.urandom(16)
    body = http_ece.encrypt(payload, private_key=ephemeral, dh=_unb64(p256dh), auth_secret=_unb64(auth),
                            salt=salt, version="aesgcm")
    server = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    return body, {"Content-Encoding": "aesgcm", "Encryption": f"salt={_b64(salt)}", "Crypto-Key": f"dh={_b64(server)}"}


def vapid_headers(hub, key: ec.EllipticCurvePrivateKey, endpoint: str, *, standard: bool,
                  crypto_key: str | None = None) -> dict:
    """RFC 8292 (``vapid t=..., k=...``) with aes128gcm; with aesgcm, the draft form Mastodon sends
    (``WebPush <JWT>`` and ``p256ecdsa=`` in ``Crypto-Key``)."""
    from py_vapid import Vapid01, Vapid02

    parts = urlsplit(endpoint)
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + 12 * 3600,
              "sub": f"mailto:admin@{hub.cfg.domain.split(':')[0]}"}
    if standard:
        return Vapid02(private_key=key).sign(claims)
    return Vapid01(private_key=key).sign(claims, crypto_key=crypto_key)


async def _allowed_by_policy(conn, policy: str, recipient_id: str, from_id: str) -> bool:
    from hub.store import social

    if policy == "all":
        return True
    if policy == "none":
        return False
    if policy == "followed":
        return await social.is_following(conn, follower_id=recipient_id, followee_id=from_id)
    return await social.is_following(conn, follower_id=from_id, followee_id=recipient_id)


async def handle(hub, job) -> Outcome:
    from hub.mastodon.entities import View
    from hub.text import html_to_text

    p = job.payload
    async with hub.db.read() as conn:
        sub = await client_store.get_push_subscription(conn, p["token_id"])
        token = await client_store.get_token_by_id(conn, p["token_id"])
        note = await client_store.get_notification(conn, p["actor_id"], p["notification_id"])
        if sub is None or token is None or sub.id != p["subscription_id"]:
            return Outcome("done", error="not sent: the subscription or its token is gone")
        if await holder_of(conn, token) is None:
            return Outcome("done", error="not sent: the token no longer speaks for this actor")
        if note is None:
            return Outcome("done", error="not sent: the notification was dismissed")
        if not sub.alerts.get(note.type) or "push" not in token.scopes.split():
            return Outcome("done", error="not sent: the subscription does not want this kind")
        if not await _allowed_by_policy(conn, sub.policy, note.actor_id, note.from_actor_id):
            return Outcome("done", error=f"not sent: policy {sub.policy}")
        data = await View(hub, conn, None).notification(note)
    if data is None:
        return Outcome("done", error="not sent: the notification's status is gone")
    who = data["account"]["display_name"] or data["account"]["acct"]
    titles = {"mention": f"{who} mentioned you", "follow": f"{who} followed you",
              "follow_request": f"{who} asked to follow you", "favourite": f"{who} favourited your post",
              "reblog": f"{who} boosted your post", "status": f"{who} just posted", "update": f"{who} edited a post"}
    body = html_to_text(data["status"]["content"])[:400] if data.get("status") else ""
    from hub import sealing

    # As Mastodon's: apps find the account by its token (Elk, Phanpy, Ice Cubes) and the notification
    # by a number (Ice Cubes); that number names the notification in this API too (see api.get_notification).
    token_value = sealing.unseal(hub.cfg, sub.sealed_token) if sub.sealed_token else None
    payload = json.dumps({
        "access_token": token_value, "notification_id": number_of(note.id), "notification_type": note.type,
        "preferred_locale": "en", "title": titles.get(note.type, f"New notification from {who}"), "body": body,
        "icon": data["account"]["avatar"],
    }).encode()
    key = await vapid_key(hub)
    encrypted, crypto_headers = encrypt(payload, sub.p256dh, sub.auth, standard=bool(sub.standard))
    headers = {"Content-Type": "application/octet-stream", "TTL": str(TTL_S), "Urgency": "normal",
               **crypto_headers}
    headers.update(vapid_headers(hub, key, sub.endpoint, standard=bool(sub.standard),
                                 crypto_key=crypto_headers.get("Crypto-Key")))
    try:
        resp = await hub.http.request("POST", sub.endpoint, body=encrypted,
                                      headers=headers, follow_redirects=False, max_bytes=64 * 1024)
    except FetchError as exc:
        return Outcome("failed" if exc.permanent else "retry", error=str(exc))
    if 200 <= resp.status < 300:
        return Outcome("done", status=resp.status)
    if resp.status in (404, 410):  # the push service forgot the subscription: so do we
        async with hub.db.write() as conn:
            await client_store.delete_push_subscription(conn, p["token_id"])
        return Outcome("gone", status=resp.status, error="the push service no longer knows this subscription")
    err = status_error(resp, sub.endpoint)
    return Outcome("failed" if err.permanent else "retry", status=resp.status, error=str(err),
                   retry_after_s=err.retry_after_s)


async def queue_for(conn, notification_ids: list[str]) -> None:
    """``push.send`` jobs for new notifications, one per subscribed token of the notified actor."""
    from hub.store.jobs import job_row, put_jobs
    from hub.store.schema import notifications, oauth_tokens, push_subscriptions

    if not notification_ids:
        return
    stmt = (sa.select(notifications.c.id, notifications.c.actor_id, push_subscriptions.c.id.label("sub_id"),
                      push_subscriptions.c.token_id)
            .join(oauth_tokens, oauth_tokens.c.actor_id == notifications.c.actor_id)
            .join(push_subscriptions, push_subscriptions.c.token_id == oauth_tokens.c.id)
            .where(notifications.c.id.in_(notification_ids), oauth_tokens.c.revoked_at.is_(None)))
    rows = [job_row(KIND, {"notification_id": r.id, "actor_id": r.actor_id, "subscription_id": r.sub_id,
                           "token_id": r.token_id}, dedupe_key=f"push:{r.id}:{r.sub_id}")
            for r in await conn.execute(stmt)]
    if rows:
        await put_jobs(conn, rows)


def register(hub) -> None:
    hub.registry.register(KIND, lambda job: handle(hub, job))


def setup(app: web.Application, hub) -> None:
    async def load(_app) -> None:
        try:
            await vapid_key(hub)
        except Exception:  # noqa: BLE001 - the key is made on first use otherwise
            log.warning("could not load the VAPID key at start-up", exc_info=True)

    app.on_startup.append(load)

