"""The ActivityPub adapter: signatures, discovery, inbox, outbox and delivery.

``Federation`` is attached to a :class:`hub.context.Hub` at start-up: it
registers the ``ap.*`` and ``outbox.publish`` job handlers and keeps the
process-wide federation state (HTTP session, the instance actor's key, what
each peer host accepts). The core never imports this package.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING

from hub import crypto
from hub.federation import httpsig
from hub.net import AP_ACCEPT, Signer
from hub.store import jobs as job_store

if TYPE_CHECKING:
    import sqlalchemy as sa

    from hub.context import Hub

log = logging.getLogger(__name__)

# Software whose NodeInfo name tells us it verifies RFC 9421 signatures.
RFC9421_SOFTWARE = {"roundtable": (0, 0), "mastodon": (4, 5), "hollo": (0, 0)}


def _version_tuple(text: str) -> tuple[int, int]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 2:
        parts.append(0)
    return parts[0], parts[1]


class Federation:
    accept = AP_ACCEPT

    def __init__(self, hub: Hub):
        self.hub = hub
        self.http = hub.http
        self.instance_actor: sa.Row | None = None
        self.key_refetch_at: dict[str, float] = {}
        self.key_cache: dict[str, tuple[float, sa.Row]] = {}
        self.key_lookups: dict[tuple[str, bool], asyncio.Future] = {}
        self._schemes: dict[str, str] = {}
        self._probes: dict[str, asyncio.Future] = {}
        self.bodies: collections.OrderedDict[str, tuple] = collections.OrderedDict()

    @classmethod
    async def attach(cls, hub: Hub) -> Federation:
        from hub import actors
        from hub.federation import delivery, discovery, handlers, publish

        fed = cls(hub)
        fed.instance_actor = await actors.ensure_instance_actor(hub)
        hub.federation = fed
        hub.resolve_handle = lambda handle: discovery.resolve_handle(fed, handle)
        hub.registry.register("outbox.publish", lambda job: publish.handle_publish(fed, job))
        hub.registry.register("ap.deliver", lambda job: delivery.handle_deliver(fed, job))
        hub.registry.register("ap.inbound", lambda job: handlers.handle_inbound(fed, job))
        return fed

    # --- signing ------------------------------------------------------------------

    def signer(
        self, key_id: str, private_key: crypto.PrivateKey, scheme: str = "cavage", *, digests: tuple[str, str] | None = None
    ) -> Signer:
        """A signer for one key and scheme; ``digests`` are the body's precomputed
        ``(Digest, Content-Digest)`` values when the same body goes to many inboxes."""
        if scheme == "rfc9421":
            fn, digest = httpsig.sign_rfc9421, digests[1] if digests else None
        else:
            fn, digest = httpsig.sign_cavage, digests[0] if digests else None

        def sign(method: str, url: str, body: bytes | None) -> dict[str, str]:
            return fn(method=method, url=url, body=body, key_id=key_id, private_key=private_key, digest=digest)

        return sign

    def instance_signer(self, scheme: str = "cavage") -> Signer:
        actor = self.instance_actor
        return self.signer(self.hub.uris.instance_key_id(), self.hub.keys.private(actor.private_key_pem), scheme)

    # --- what each host accepts ---------------------------------------------------------

    async def scheme_for(self, host: str) -> str:
        """``rfc9421`` for hosts known to verify it, else ``cavage``.

        Known means: the host signed a request to us with RFC 9421, or its
        NodeInfo names software that verifies it. Unknown hosts are probed
        once (NodeInfo), concurrently-safe.
        """
        cached = self._schemes.get(host)
        if cached is not None:
            return cached
        async with self.hub.db.read() as conn:
            row = await job_store.get_host(conn, host)
        if row is not None and row.signature_scheme:
            self._schemes[host] = row.signature_scheme
            return row.signature_scheme
        probe = self._probes.get(host)
        if probe is None:
            probe = asyncio.ensure_future(self._probe(host))
            self._probes[host] = probe
            probe.add_done_callback(lambda _f: self._probes.pop(host, None))
        return await asyncio.shield(probe)

    async def _probe(self, host: str) -> str:
        software, version = await self._nodeinfo_software(host)
        scheme = "cavage"
        if software in RFC9421_SOFTWARE and _version_tuple(version) >= RFC9421_SOFTWARE[software]:
            scheme = "rfc9421"
        await self.remember_scheme(host, scheme, software=software)
        return scheme

    async def _nodeinfo_software(self, host: str) -> tuple[str | None, str]:
        from hub.errors import FetchError
        from hub.federation.documents import as_list

        scheme = "http" if self.hub.cfg.dev and self.hub.cfg.scheme == "http" else "https"
        try:
            index, _ = await self.http.get_json(
                f"{scheme}://{host}/.well-known/nodeinfo", accept="application/json", signer=self.instance_signer()
            )
            href = None
            for link in as_list(index.get("links") if isinstance(index, dict) else None):
                if isinstance(link, dict) and str(link.get("rel", "")).startswith("http://nodeinfo.diaspora.software/ns/schema/"):
                    href = link.get("href")
            if not isinstance(href, str):
                return None, ""
            info, _ = await self.http.get_json(href, accept="application/json", signer=self.instance_signer())
            software = info.get("software", {}) if isinstance(info, dict) else {}
            return str(software.get("name", "")).lower() or None, str(software.get("version", ""))
        except (FetchError, AttributeError, TypeError) as exc:
            log.debug("no NodeInfo from %s: %s", host, exc)
            return None, ""

    async def remember_scheme(self, host: str, scheme: str, *, software: str | None = None) -> None:
        if self._schemes.get(host) == scheme and software is None:
            return
        self._schemes[host] = scheme
        values = {"signature_scheme": scheme}
        if software:
            values["software"] = software[:64]
        async with self.hub.db.write() as conn:
            await job_store.put_host(conn, host, **values)
