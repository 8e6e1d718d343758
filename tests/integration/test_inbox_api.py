"""The inbox through the JSON API: tokens, members and roles, listing,
filters and search, state changes, notes, signatures, the OpenAPI document,
and webhooks signed with HMAC and retried through the job queue."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from urllib.parse import quote

import pytest
from aiohttp import web

from hub import actors
from hub.api import BASE, ROUTES
from hub.commands_inbox import hash_token
from hub.inbox import access
from hub.openapi import document
from hub.store import org as org_store
from tests.helpers import free_port


async def token_for(hub, username: str) -> str:
    from hub.store import actors as actor_store

    token = "rt_test_" + username
    async with hub.db.write() as conn:
        account = await actor_store.get_account_by_username(conn, username)
        await org_store.put_token(conn, account_id=account.id, token_hash=hash_token(token), name="test")
    return token


class Api:
    def __init__(self, hub, session, token):
        self.base = hub.cfg.base_url + BASE
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method, path, body=None, **params):
        async with self.session.request(method, self.base + path, json=body, params=params or None,
                                        headers=self.headers) as resp:
            data = await resp.json(content_type=None) if resp.status != 204 else None
            return resp.status, data


@pytest.fixture
async def world(served_hub, session):
    hub = served_hub
    names = {}
    for username, kind in (("acme", "organization"), ("globex", "organization"), ("carol", "person"),
                           ("dave", "person"), ("dana", "person"), ("ada", "person"), ("gil", "person")):
        names[username] = await actors.create_local_actor(hub, username, kind=kind, name=username.capitalize(),
                                                          password="password123")
    owner = await access.acting_as(hub, "acme")
    await access.add_member(hub, owner, "dana", role="agent")
    await access.add_member(hub, owner, "ada", role="admin")
    await access.add_member(hub, await access.acting_as(hub, "globex"), "gil", role="agent")
    apis = {u: Api(hub, session, await token_for(hub, u)) for u in ("carol", "dave", "dana", "ada", "gil", "acme")}
    return hub, names, apis


async def start(api, actor, to, text):
    status, data = await api.call("POST", f"/actors/{actor}/conversations", {"to": to, "text": text})
    assert status == 201, data
    return data["conversation"]


async def test_tokens_are_required_and_checked(world, session):
    hub, _names, apis = world
    for api in (Api(hub, session, None), Api(hub, session, "rt_wrong")):
        status, data = await api.call("GET", "/me")
        assert status == 401 and data["error"]
    status, me = await apis["dana"].call("GET", "/me")
    assert status == 200 and {(a["username"], a["role"]) for a in me["actors"]} == {("dana", "owner"), ("acme", "agent")}
    async with hub.db.read() as conn:
        import sqlalchemy as sa

        from hub.store.schema import api_tokens

        stored = {r[0] for r in await conn.execute(sa.select(api_tokens.c.token_hash))}
    assert hash_token("rt_test_dana") in stored and not any("rt_test" in h for h in stored)  # hashed at rest


async def test_a_customer_and_an_organizations_agents_work_one_conversation(world):
    hub, names, apis = world
    conv = await start(apis["carol"], "carol", ["@acme@" + hub.cfg.domain], "Hello, my invoice is wrong")
    assert conv["owner"] == names["carol"].uri and conv["status"] == "open" and conv["hosted_here"]
    status, page = await apis["dana"].call("GET", "/actors/acme/conversations")
    assert status == 200 and [c["id"] for c in page["items"]] == [conv["id"]]
    assert page["items"][0]["unread"] == 1
    status, by_uri = await apis["dana"].call("GET", "/actors/acme/conversations/" + quote(conv["uri"], safe=""))
    assert status == 200 and by_uri["conversation"]["id"] == conv["id"]  # the URI works as well as the id
    status, item = await apis["dana"].call("PATCH", f"/actors/acme/conversations/{conv['id']}",
                                           {"status": "pending", "assignee": "dana", "add_labels": ["billing", "vip"]})
    assert status == 200 and (item["status"], item["assignee"], item["labels"]) == ("pending", "dana", ["billing", "vip"])
    status, notes = await apis["dana"].call("POST", f"/actors/acme/conversations/{conv['id']}/notes", {"text": "refund 20 EUR"})
    assert status == 201 and [n["text"] for n in notes["notes"]] == ["refund 20 EUR"]
    status, sent = await apis["dana"].call("POST", f"/actors/acme/conversations/{conv['id']}/messages",
                                           {"text": "We will refund you."})
    assert status == 201
    status, view = await apis["carol"].call("GET", f"/actors/carol/conversations/{conv['id']}")
    assert status == 200 and view["notes"] == []
    reply = next(m for m in view["messages"] if m["uri"] == sent["uri"])
    assert reply["author"] == names["acme"].uri and reply["text"].endswith("— Dana, Acme")
    assert reply["delivery"] is None and reply["member"] is None  # not carol's message: none of her business
    assert view["conversation"]["status"] == "open"  # carol's own state, untouched by the organization's
    status, view = await apis["ada"].call("GET", f"/actors/acme/conversations/{conv['id']}")
    own = next(m for m in view["messages"] if m["uri"] == sent["uri"])
    assert own["member"] == "dana" and own["delivery"] == [{"recipient": names["carol"].uri, "state": "delivered", "inbox": None}]
    assert view["conversation"]["status"] == "pending"
    assert view["conversation"]["unread"] == 1  # ada had not read carol's message yet (dana had)
    _s, again = await apis["ada"].call("GET", f"/actors/acme/conversations/{conv['id']}")
    assert again["conversation"]["unread"] == 0
    # a new customer message moves a pending conversation? no: only resolved and snoozed reopen
    await apis["carol"].call("POST", f"/actors/carol/conversations/{conv['id']}/messages", {"text": "Thanks"})
    _s, view = await apis["ada"].call("GET", f"/actors/acme/conversations/{conv['id']}")
    assert view["conversation"]["status"] == "pending"
    await apis["dana"].call("PATCH", f"/actors/acme/conversations/{conv['id']}", {"status": "resolved"})
    await apis["carol"].call("POST", f"/actors/carol/conversations/{conv['id']}/messages", {"text": "One more thing"})
    _s, view = await apis["ada"].call("GET", f"/actors/acme/conversations/{conv['id']}")
    assert view["conversation"]["status"] == "open"
    status, audit = await apis["ada"].call("GET", "/actors/acme/audit")
    assert status == 200
    assert {("dana", "conversation.update"), ("dana", "message.create"), ("ada", "conversation.read")} <= {
        (e["member"], e["action"]) for e in audit["items"]}


async def test_nobody_reads_or_changes_what_is_not_theirs(world):
    hub, _names, apis = world
    conv = await start(apis["carol"], "carol", ["@acme@" + hub.cfg.domain], "For acme only")
    cid = conv["id"]
    checks = [
        (apis["gil"], "GET", "/actors/acme/conversations", None, 403),  # another organization's agent
        (apis["gil"], "GET", f"/actors/acme/conversations/{cid}", None, 403),
        (apis["gil"], "PATCH", f"/actors/acme/conversations/{cid}", {"status": "resolved"}, 403),
        (apis["gil"], "GET", f"/actors/globex/conversations/{cid}", None, 404),  # globex is not in it
        (apis["dave"], "GET", f"/actors/dave/conversations/{cid}", None, 404),  # another customer
        (apis["dave"], "GET", f"/actors/carol/conversations/{cid}", None, 403),
        (apis["dave"], "POST", f"/actors/dave/conversations/{cid}/messages", {"text": "let me in"}, 404),
        (apis["dana"], "POST", "/actors/acme/members", {"username": "dave", "role": "agent"}, 403),  # agents: no admin
        (apis["dana"], "POST", "/actors/acme/webhooks", {"url": "https://example.org/h"}, 403),
        (apis["dana"], "GET", "/actors/acme/audit", None, 403),
        (apis["ada"], "POST", "/actors/acme/members", {"username": "dave", "role": "owner"}, 403),  # admin: no owners
        (apis["dana"], "POST", f"/actors/acme/conversations/{cid}/participants", {"handle": "@globex@" + hub.cfg.domain}, 403),
    ]
    for api, method, path, body, expected in checks:
        status, data = await api.call(method, path, body)
        assert status == expected, (method, path, status, data)
        assert data["error"]
    status, _ = await apis["ada"].call("POST", "/actors/acme/members", {"username": "dave", "role": "agent"})
    assert status == 201
    # an admin lets an agent speak as the organization from fediverse apps, and stops it
    status, member = await apis["ada"].call("POST", "/actors/acme/members", {"username": "dave", "role": "agent",
                                                                           "apps": True})
    assert status == 201 and member["apps"] is True
    status, listed = await apis["ada"].call("GET", "/actors/acme/members")
    assert {m["username"]: m["apps"] for m in listed["items"]}["dave"] is True
    status, member = await apis["ada"].call("POST", "/actors/acme/members", {"username": "dave", "role": "agent",
                                                                           "apps": False})
    assert member["apps"] is False
    status, err = await apis["ada"].call("POST", "/actors/acme/members", {"username": "dave", "role": "agent",
                                                                        "apps": "yes"})
    assert status == 400 and "apps" in err["error"]


async def test_listing_pages_filters_and_searches(world):
    hub, _names, apis = world
    ids = []
    for n in range(23):
        word = "zeppelin" if n == 7 else "ordinary"
        conv = await start(apis["carol"], "carol", ["@acme@" + hub.cfg.domain], f"Question {n} about a {word} thing")
        ids.append(conv["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        status, page = await apis["dana"].call("GET", "/actors/acme/conversations", **params)
        assert status == 200
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest activity first, each once
    _s, found = await apis["dana"].call("GET", "/actors/acme/conversations", q="zeppel")
    assert [c["id"] for c in found["items"]] == [ids[7]]
    for hostile in ('"; DROP TABLE messages; --', "NEAR(", "col:x", "*", "\x00", "zeppelin\x00", "(", "😀"):
        status, found = await apis["dana"].call("GET", "/actors/acme/conversations", q=hostile)
        assert status == 200, (hostile, found)
        assert [c["id"] for c in found["items"]] == ([ids[7]] if "zeppelin" in hostile else []), hostile
    await apis["dana"].call("PATCH", f"/actors/acme/conversations/{ids[3]}", {"add_labels": ["urgent"], "assignee": "dana"})
    await apis["dana"].call("PATCH", f"/actors/acme/conversations/{ids[4]}", {"status": "resolved"})
    _s, by_label = await apis["dana"].call("GET", "/actors/acme/conversations", label="urgent")
    _s, by_assignee = await apis["dana"].call("GET", "/actors/acme/conversations", assignee="dana")
    _s, resolved = await apis["dana"].call("GET", "/actors/acme/conversations", status="resolved")
    _s, unassigned = await apis["dana"].call("GET", "/actors/acme/conversations", assignee="none", limit="200")
    assert [c["id"] for c in by_label["items"]] == [ids[3]] == [c["id"] for c in by_assignee["items"]]
    assert [c["id"] for c in resolved["items"]] == [ids[4]]
    assert len(unassigned["items"]) == 22
    status, data = await apis["dana"].call("GET", "/actors/acme/conversations", status="lost")
    assert status == 400 and "invalid status" in data["error"]
    status, data = await apis["dana"].call("GET", "/actors/acme/conversations", cursor="bogus!")
    assert status == 400


async def test_canned_responses_fill_in_the_customer(world):
    hub, _names, apis = world
    conv = await start(apis["carol"], "carol", ["@acme@" + hub.cfg.domain], "hi")
    status, _ = await apis["ada"].call("POST", "/actors/acme/canned-responses",
                                       {"name": "thanks", "text": "Thank you {customer_name}, this is {member_name}."})
    assert status == 204
    status, sent = await apis["dana"].call("POST", f"/actors/acme/conversations/{conv['id']}/messages", {"canned": "thanks"})
    assert status == 201
    _s, view = await apis["carol"].call("GET", f"/actors/carol/conversations/{conv['id']}")
    assert any("Thank you Carol, this is dana." in m["text"] for m in view["messages"])


async def test_bad_bodies_are_refused_clearly(world, session):
    hub, _names, apis = world
    api = apis["carol"]
    async with session.post(api.base + "/actors/carol/conversations", data=b"{nope", headers=api.headers) as resp:
        assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]
    for body, message in (({"to": []}, "'to'"), ({"to": ["@acme@" + hub.cfg.domain]}, "'text'"),
                          ({"to": "x", "text": 5}, "must be")):
        status, data = await api.call("POST", "/actors/carol/conversations", body)
        assert status == 400 and message in data["error"], (body, data)
    status, data = await api.call("GET", "/nothing/here")
    assert status == 404
    status, _ = await api.call("GET", "/me/")  # trailing slash
    assert status == 200


async def test_the_openapi_document_describes_every_route(world, session):
    hub, _names, _apis = world
    async with session.get(hub.cfg.base_url + BASE + "/openapi.json") as resp:
        assert resp.status == 200
        served = await resp.json()
    assert served == json.loads(json.dumps(document(hub.cfg.base_url)))
    documented = {(method.upper(), path) for path, ops in served["paths"].items() for method in ops}
    from hub.bridges.api import ROUTES as BRIDGE_ROUTES

    routed = {(method, path) for method, path, _h in ROUTES + BRIDGE_ROUTES}
    assert documented == routed


async def test_webhooks_are_signed_and_retried(world):
    hub, _names, apis = world
    received: list[tuple[dict, dict, bytes]] = []
    statuses = [500, 200, 200, 200, 200, 200]

    async def receive(request):
        body = await request.read()
        received.append((dict(request.headers), json.loads(body), body))
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, hook = await apis["ada"].call("POST", "/actors/acme/webhooks",
                                              {"url": f"http://127.0.0.1:{port}/hook", "events": ["conversation.created", "message.created"]})
        assert status == 201 and hook["secret"]
        status, listed = await apis["ada"].call("GET", "/actors/acme/webhooks")
        assert "secret" not in listed["items"][0]
        await start(apis["carol"], "carol", ["@acme@" + hub.cfg.domain], "A customer writes")
        for _ in range(60):
            await hub.runner.drain(raise_errors=False)
            if len(received) >= 3:
                break
            await asyncio.sleep(0.1)
        events = [b["event"] for _h, b, _r in received]
        assert sorted(set(events)) == ["conversation.created", "message.created"]
        assert len(received) == 3  # one event answered 500 once, then was sent again
        for headers, body, raw in received:
            ts = headers["X-Roundtable-Timestamp"]
            expected = "sha256=" + hmac.new(hook["secret"].encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
            assert headers["X-Roundtable-Signature"] == expected
            assert headers["X-Roundtable-Event"] == body["event"] and headers["X-Roundtable-Delivery"] == body["id"]
        refused = received[0][1]["id"]  # answered 500
        assert [b["id"] for _h, b, _r in received[1:]].count(refused) == 1  # sent again, with the same id
        assert "notes" not in json.dumps([b for _h, b, _r in received])
    finally:
        await runner.cleanup()


async def test_only_the_owner_publishes_a_conversation(world, session):
    hub, names, apis = world
    conv = await start(apis["carol"], "carol", ["@acme@" + hub.cfg.domain], "Is the manual online?")
    path = f"/actors/{{}}/conversations/{conv['id']}/publish"
    status, err = await apis["dana"].call("POST", path.format("acme"), {"public": True})
    assert status == 403 and "admin role" in err["error"]  # an organization publishes through an admin
    status, err = await apis["ada"].call("POST", path.format("acme"), {"public": True})
    assert status == 403 and "owner" in err["error"]  # and only what it owns
    assert (await apis["carol"].call("POST", path.format("carol"), {"public": "yes"}))[0] == 400
    async with session.get(conv["uri"], headers={"Accept": "text/html"}) as r:
        assert r.status == 404
    assert (await apis["carol"].call("POST", path.format("carol"), {"public": True}))[0] == 204
    status, item = await apis["carol"].call("GET", f"/actors/carol/conversations/{conv['id']}")
    assert status == 200 and item["conversation"]["public"] is True
    async with session.get(conv["uri"], headers={"Accept": "text/html"}) as r:
        assert r.status == 200 and "Is the manual online?" in await r.text()
    assert (await apis["carol"].call("POST", path.format("carol"), {"public": False}))[0] == 204
    async with session.get(conv["uri"], headers={"Accept": "text/html"}) as r:
        assert r.status == 404
