"""The composition root's product: one object holding what a process shares.

A ``Hub`` is built once per process (``roundtable serve``, a worker, a CLI
command, a test) from the frozen configuration, and passed explicitly. It
holds no request state. Adapters (federation, bridges) attach
themselves at start-up by registering job handlers and setting their slot.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hub import crypto
from hub.config import Config
from hub.db import Database, create_engine
from hub.jobs import Registry, Runner, queue
from hub.moderation import DomainBlocks
from hub.uris import Uris


@dataclasses.dataclass(eq=False)
class Hub:
    cfg: Config
    db: Database
    uris: Uris
    keys: crypto.KeyCache
    registry: Registry
    runner: Runner | None = None
    federation: Any = None
    """The ActivityPub adapter (``hub.federation.Federation``) once attached."""
    _http: Any = None
    resolve_handle: Any = None
    """``async (handle_or_uri) -> actor row``: set by the network adapter that
    can find actors (ActivityPub: WebFinger), so the core can look them up."""
    message_hooks: list = dataclasses.field(default_factory=list)
    """``async (conn, hub, event, conversation, message)`` called in the
    transaction that creates (``create``), edits (``edit``), deletes
    (``delete``) or removes (``remove``) a message of a conversation: how
    adapters such as bridges hear of messages without the core knowing them."""
    bridges: Any = None
    """The bridges adapter (``hub.bridges.Bridges``) once attached."""
    domain_blocks: DomainBlocks = dataclasses.field(default_factory=DomainBlocks)
    """The remote domains this instance refuses (``hub.moderation.DomainBlocks``)."""

    @property
    def http(self):
        """The process's outbound HTTP client (SSRF-guarded), made on first use."""
        if self._http is None:
            from hub.net import HttpClient

            self._http = HttpClient(self.cfg, is_blocked=self.domain_blocks.blocked)
        return self._http

    @classmethod
    def create(cls, cfg: Config) -> Hub:
        return cls(
            cfg=cfg,
            db=Database(create_engine(cfg)),
            uris=Uris(cfg.base_url),
            keys=crypto.KeyCache(),
            registry=Registry(),
        )

    async def message_event(self, conn, event: str, conversation, message) -> None:
        for hook in self.message_hooks:
            await hook(conn, self, event, conversation, message)

    def make_runner(self, **kwargs) -> Runner:
        self.runner = Runner(self.cfg, self.db, self.registry, **kwargs)
        return self.runner

    async def queue(self, rows: list[dict]) -> list[str]:
        return await queue(self.db, rows, self.runner)

    def wake(self) -> None:
        if self.runner is not None:
            self.runner.wake()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self.db.dispose()
