"""Equal footing in the inbox: a customer (a household with two logins) and an
organization (two members) get exactly the same tools, with the same results.

One scenario runs for a subject of each kind, written to by the same customer
through the JSON API: unread marks per login, status, assignee, labels,
private notes, signatures, waiting time and first response, reopening on a
new message, snoozes that end (with their webhook), canned responses, the
audit log and its role check. The two runs must produce the same record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from aiohttp import web

from hub import actors
from hub.inbox import access, state
from tests.helpers import free_port
from tests.integration.test_inbox_api import Api, token_for

KINDS = ("person", "organization")


class HookReceiver:
    def __init__(self):
        self.events: list[dict] = []

    async def __aenter__(self):
        async def receive(request):
            self.events.append(json.loads(await request.read()))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


async def settle(hub, until, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        await hub.runner.drain(raise_errors=False)
        if until():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def scenario(hub, session, kind: str, n: int) -> dict:
    """Everything one subject of ``kind`` can do with its inbox; returns what
    it saw, with names and times taken out so both kinds can be compared."""
    subject, helper, customer = f"subj{n}", f"helper{n}", f"pat{n}"
    await actors.create_local_actor(hub, subject, kind=kind, name="Subject", password="password123")
    await actors.create_local_actor(hub, helper, kind="person", name="Robin", password="password123")
    await actors.create_local_actor(hub, customer, kind="person", name="Pat", password="password123")
    await access.add_member(hub, await access.acting_as(hub, subject), helper, role="agent")
    own, second, pat = [Api(hub, session, await token_for(hub, u)) for u in (subject, helper, customer)]
    base = f"/actors/{subject}/conversations"
    record: dict = {}

    async with HookReceiver() as hooks:
        status, hook = await own.call("POST", f"/actors/{subject}/webhooks",
                                      {"url": f"http://127.0.0.1:{hooks.port}/hook", "events": ["conversation.status_changed"]})
        assert status == 201, hook

        status, started = await pat.call("POST", f"/actors/{customer}/conversations",
                                         {"to": [f"@{subject}@{hub.cfg.domain}"], "text": "Hello, a question"})
        assert status == 201, started
        cid = started["conversation"]["id"]
        conv = f"{base}/{cid}"

        # A new conversation: open, unread for each login, waiting for an answer.
        _s, page = await second.call("GET", base)
        (item,) = page["items"]
        assert item["status"] == "open" and item["unread"] == 1 and item["waiting_since"] and item["first_response_at"] is None
        assert item["owner"] != hub.cfg.base_url + f"/users/{subject}"  # the customer who started it owns it
        _s, viewed = await second.call("GET", conv)  # the second login reads it...
        _s, page = await own.call("GET", base)
        assert page["items"][0]["unread"] == 1  # ...which is not the first login's read
        _s, page = await second.call("GET", base)
        record["unread_after_own_read"] = page["items"][0]["unread"]

        # Working state: status, assignee, labels, priority, team, a private note.
        status, item = await own.call("PATCH", conv, {"status": "pending", "assignee": helper, "add_labels": ["Billing", "vip"],
                                                      "priority": 2, "team": "first line"})
        assert status == 200, item
        record["worked"] = {k: item[k] for k in ("status", "labels", "priority", "team")} | {"assignee": item["assignee"] == helper}
        status, notes = await second.call("POST", f"{conv}/notes", {"text": "private: check the invoice"})
        assert status == 201
        _s, mine = await own.call("GET", conv)
        record["notes_seen_by_other_login"] = [x["text"] for x in mine["notes"]]

        # An answer from the second login: signed, ends the wait, first response recorded.
        status, sent = await second.call("POST", f"{conv}/messages", {"text": "Here is the answer"})
        assert status == 201
        _s, theirs = await pat.call("GET", f"/actors/{customer}/conversations/{cid}")
        answer = next(m for m in theirs["messages"] if m["uri"] == sent["uri"])
        record["signature"] = answer["text"].rsplit("\n", 1)[-1]
        record["customer_sees_notes"] = theirs["notes"] or "private: check the invoice" in json.dumps(theirs)
        record["customer_status_untouched"] = theirs["conversation"]["status"]
        _s, mine = await own.call("GET", conv)
        record["after_answer"] = {"waiting": mine["conversation"]["waiting_since"] is not None,
                                  "first_response": mine["conversation"]["first_response_at"] is not None}
        own_msg = next(m for m in mine["messages"] if m["uri"] == sent["uri"])
        record["own_delivery"] = [d["state"] for d in own_msg["delivery"]]
        record["own_member"] = own_msg["member"] == helper

        # Resolved, then a new customer message reopens it and starts the wait again.
        await own.call("PATCH", conv, {"status": "resolved"})
        await pat.call("POST", f"/actors/{customer}/conversations/{cid}/messages", {"text": "One more thing"})
        _s, mine = await own.call("GET", conv)
        record["reopened"] = (mine["conversation"]["status"], mine["conversation"]["waiting_since"] is not None)

        # A snooze that ends reopens the conversation by itself, with its event.
        until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat()
        status, item = await own.call("PATCH", conv, {"status": "snoozed", "snooze_until": until})
        assert status == 200 and item["status"] == "snoozed" and item["snoozed_until"]
        await asyncio.sleep(1.1)
        woken = await state.wake_all_snoozed(hub)  # what each job runner does every periodic_s
        _s, mine = await own.call("GET", conv)
        record["snooze_woken"] = (woken, mine["conversation"]["status"], mine["conversation"]["snoozed_until"])
        await settle(hub, lambda: len(hooks.events) >= 5)
        # Webhook deliveries are independent jobs: they may arrive in any order.
        ordered = sorted(hooks.events, key=lambda e: e["created_at"])
        record["status_events"] = [(e["data"]["previous"], e["data"]["status"]) for e in ordered]
        assert all(e["data"]["id"] == cid for e in hooks.events)

    # Canned responses with the customer's name, by an admin-made template.
    status, _ = await own.call("POST", f"/actors/{subject}/canned-responses", {"name": "hi", "text": "Hello {customer_name}!"})
    assert status == 204
    status, sent = await second.call("POST", f"{conv}/messages", {"canned": "hi"})
    _s, theirs = await pat.call("GET", f"/actors/{customer}/conversations/{cid}")
    record["canned"] = next(m for m in theirs["messages"] if m["uri"] == sent["uri"])["text"].split("\n")[0]

    # The audit log: every read and action of the second login, for the owner only.
    status, log = await own.call("GET", f"/actors/{subject}/audit", limit="500")
    assert status == 200
    record["audited"] = sorted({e["action"] for e in log["items"] if e["member"] == helper})
    status, _ = await second.call("GET", f"/actors/{subject}/audit")
    record["agent_reads_audit"] = status
    status, _ = await second.call("POST", f"/actors/{subject}/members", {"username": customer, "role": "agent"})
    record["agent_adds_members"] = status
    return record


EXPECTED = {
    "unread_after_own_read": 0,
    "worked": {"status": "pending", "labels": ["billing", "vip"], "priority": 2, "team": "first line", "assignee": True},
    "notes_seen_by_other_login": ["private: check the invoice"],
    "signature": "— Robin, Subject",
    "customer_sees_notes": False,
    "customer_status_untouched": "open",
    "after_answer": {"waiting": False, "first_response": True},
    "own_delivery": ["delivered"],
    "own_member": True,
    "reopened": ("open", True),
    "snooze_woken": (1, "open", None),
    "status_events": [("open", "pending"), ("pending", "resolved"), ("resolved", "open"), ("open", "snoozed"),
                      ("snoozed", "open")],
    "canned": "Hello Pat!",
    "audited": ["conversation.read", "conversation.update", "inbox.list", "message.create"],
    "agent_reads_audit": 403,
    "agent_adds_members": 403,
}


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_works_its_inbox_with_every_tool(served_hub, session, kind):
    record = await scenario(served_hub, session, kind, 1)
    assert record == EXPECTED


async def test_a_customer_and_an_organization_get_the_same_record(served_hub, session):
    person = await scenario(served_hub, session, "person", 1)
    organization = await scenario(served_hub, session, "organization", 2)
    assert person == organization


async def test_a_running_job_runner_ends_snoozes_by_itself(served_hub, session):
    import dataclasses

    from hub.jobs import Runner

    hub = served_hub
    for username, kind in (("shop", "organization"), ("kim", "person")):
        await actors.create_local_actor(hub, username, kind=kind, name=username, password="password123")
    shop, kim = Api(hub, session, await token_for(hub, "shop")), Api(hub, session, await token_for(hub, "kim"))
    _s, started = await kim.call("POST", "/actors/kim/conversations", {"to": [f"@shop@{hub.cfg.domain}"], "text": "hi"})
    conv = f"/actors/shop/conversations/{started['conversation']['id']}"
    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.5)).isoformat()
    _s, item = await shop.call("PATCH", conv, {"status": "snoozed", "snooze_until": until})
    assert item["status"] == "snoozed"
    runner = Runner(dataclasses.replace(hub.cfg, periodic_s=0.1), hub.db, hub.registry)
    task = asyncio.create_task(runner.run())
    try:
        from hub.store import conversations as conv_store

        for _ in range(100):  # read the state directly: listing would wake it too
            async with hub.db.read() as conn:
                row = await conv_store.get_state(conn, started["conversation"]["id"], (await access.acting_as(hub, "shop")).actor.id)
            if row.status == "open":
                break
            await asyncio.sleep(0.05)
        assert row.status == "open" and row.snoozed_until is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
