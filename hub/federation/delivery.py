"""``ap.deliver``: POST one stored activity to one inbox, signed at send time.

Retry policy (the runner applies the waits, see ``hub.jobs``):

* 2xx: delivered.
* 404 / 410: that inbox is gone; it is remembered and skipped from now on.
* 408, 429, 5xx, network errors: try again later; ``Retry-After`` on 429 /
  503 is honoured when it asks for longer than our schedule.
* any other 4xx: failed for good (the peer refuses this activity).
* RFC 9421 "double knock": when a host we believed reads RFC 9421 answers
  400, 401 or 403, or a server error (some Mastodon builds answered 500 to
  RFC 9421, Fedify issue #907), the same request is sent at once with a
  draft-cavage signature; if that works the host is remembered as cavage-only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub.actors import signing_key
from hub.federation import httpsig
from hub.federation.documents import host_of
from hub.federation.render import AP_CONTENT_TYPE
from hub.jobs import Outcome
from hub.net import status_error
from hub.store import actors as actor_store
from hub.store import jobs as job_store

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)
BODY_CACHE_SIZE = 256


async def _load(fed: Federation, activity_id: str, signer_id: str, *, sealed_key: str | None = None,
                key_id: str | None = None):
    """The body and the key that signs it: the signer's own, or (a pull-mode Move from an archive) an old
    actor's key, kept sealed in the job."""
    key = f"{activity_id}:{signer_id}:{key_id or ''}"
    cached = fed.bodies.get(key)
    if cached is not None:
        fed.bodies.move_to_end(key)
        return cached
    async with fed.hub.db.read() as conn:
        activity = await job_store.get_activity_by_id(conn, activity_id)
        signer = await actor_store.get_actor_by_id(conn, signer_id)
    if activity is None or signer is None:
        return None
    if sealed_key and key_id:
        from hub import sealing

        pem = sealing.unseal(fed.hub.cfg, sealed_key)
        if pem is None:
            return None
        private_key = fed.hub.keys.private(pem)
    else:
        key_id, private_key = signing_key(fed.hub, signer)
    body = activity.raw.encode()
    item = (body, key_id, private_key, (httpsig.digest_header(body), httpsig.content_digest_header(body)))
    fed.bodies[key] = item
    if len(fed.bodies) > BODY_CACHE_SIZE:
        fed.bodies.popitem(last=False)
    return item


def knock_again(status: int) -> bool:
    return status in (400, 401, 403) or status >= 500


async def handle_deliver(fed: Federation, job: sa.Row) -> Outcome:
    p = job.payload
    inbox = p["inbox"]
    loaded = await _load(fed, p["activity_id"], p["signer_id"], sealed_key=p.get("sealed_key"), key_id=p.get("key_id"))
    if loaded is None:
        return Outcome("failed", error="activity or signer no longer exists")
    body, key_id, private_key, digests = loaded
    host = host_of(inbox)
    scheme = await fed.scheme_for(host)
    headers = {"Content-Type": AP_CONTENT_TYPE, "Accept": fed.accept}
    resp = await fed.http.request(
        "POST", inbox, body=body, headers=headers, signer=fed.signer(key_id, private_key, scheme, digests=digests), follow_redirects=False
    )
    if scheme == "rfc9421" and knock_again(resp.status):
        log.info("%s refused an RFC 9421 signature (%s); knocking again with draft-cavage", host, resp.status)
        resp = await fed.http.request(
            "POST", inbox, body=body, headers=headers, signer=fed.signer(key_id, private_key, "cavage", digests=digests),
            follow_redirects=False,
        )
        if 200 <= resp.status < 300:
            await fed.remember_scheme(host, "cavage")
    status = resp.status
    if 200 <= status < 300:
        return Outcome("done", status=status)
    if status in (404, 410):
        async with fed.hub.db.write() as conn:
            await job_store.mark_inbox_gone(conn, inbox, status)
        return Outcome("gone", status=status, error=f"inbox answered {status}")
    err = status_error(resp, inbox)
    detail = resp.body[:200].decode("utf-8", "replace").strip()
    error = f"{inbox} answered {status}" + (f": {detail}" if detail else "")
    if err.permanent:
        return Outcome("failed", status=status, error=error)
    return Outcome("retry", status=status, error=error, retry_after_s=err.retry_after_s)

