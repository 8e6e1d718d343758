"""An in-memory network: the smallest complete connector.

It is the reference for writing a connector (every verb, every capability)
and the network the contract tests (``tests/integration/test_bridge_contract.py``)
run beside the real ones. Its "network" is two lists in this process: what
people wrote (``receive`` reads the JSON items put there) and what the hub
sent (``outbox``). Nothing else uses it.

An item is JSON: ``{"id", "from": {"id", "name"}, "text", "reply_to", "edit_of", "txn"}``.
"""

from __future__ import annotations

import json
import secrets

from hub.bridges.base import Capabilities, Connector, Envelope, Outbound, Rejected, Sender, SendError


class MemoryConnector(Connector):
    kind = "memory"
    capabilities = Capabilities(edits=True, deletes=True, reactions=False, attachments=False, threading=True,
                                direct_messages=True, read_receipts=False)

    def __init__(self, name: str = "memory"):
        super().__init__(name)
        self.outbox: list[tuple[str, Outbound]] = []
        self.refuse: set[str] = set()
        """Recipients the network refuses for good (to test failures)."""

    async def receive(self, raw: bytes, *, sender: str | None = None, recipients: list[str] | None = None) -> Envelope | Rejected:
        try:
            data = json.loads(raw)
            who = data["from"]
            remote_id = str(data["id"])
            text = str(data.get("text") or "")
        except (ValueError, KeyError, TypeError):
            return Rejected("not an item of this network", ["malformed"])
        if not isinstance(who, dict) or not who.get("id"):
            return Rejected("an item without a sender", ["malformed"])
        return Envelope(
            network=self.name, remote_id=remote_id, sender=Sender(str(who["id"]), who.get("name")), text=text,
            recipients=list(recipients or []), reply_to=[str(data["reply_to"])] if data.get("reply_to") else [],
            txn_id=data.get("txn"), edit_of=data.get("edit_of"),
        )

    async def send(self, outbound: Outbound) -> str:
        if outbound.to in self.refuse:
            raise SendError(f"{outbound.to} does not exist on this network", permanent=True)
        if outbound.kind in ("edit", "delete") and outbound.target_remote_id:
            remote_id = outbound.target_remote_id
        else:
            remote_id = "mem-" + secrets.token_hex(8)
        self.outbox.append((remote_id, outbound))
        return remote_id
