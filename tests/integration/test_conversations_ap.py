"""Conversations over ActivityPub against peers on real sockets: a Mastodon-
shaped peer (no FEP-171b) sees a plain reply thread; FEP-171b peers get the
owner's Adds, authenticated per FEP-fe34; the owner moderates; newcomers are
backfilled; and private notes never leave, checked on every request sent."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from hub import actors
from hub.federation import discovery
from hub.inbox import access, conversations, state
from hub.store import messages as msg_store
from tests.helpers import load_fixture, post_signed

AS = "https://www.w3.org/ns/activitystreams"


@pytest.fixture
async def people(served_hub):
    hub = served_hub
    acme = await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    carol = await actors.create_local_actor(hub, "carol", kind="person", name="Carol")
    dana = await actors.create_local_actor(hub, "dana", kind="person", name="Dana")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    return {"acme": acme, "carol": carol, "dana": dana}


def create_from(actor, *, to, text, in_reply_to=None, context=None, conversation=None):
    nid = f"{actor.uri}/statuses/{time.monotonic_ns()}"
    note = {"id": nid, "type": "Note", "attributedTo": actor.uri, "content": f"<p>{text}</p>", "to": to, "cc": [],
            "inReplyTo": in_reply_to,
            "published": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "tag": [{"type": "Mention", "href": u, "name": "@x"} for u in to]}
    for key, value in (("context", context), ("conversation", conversation)):
        if value:
            note[key] = value
    return {"@context": AS, "id": nid + "/activity", "type": "Create", "actor": actor.uri, "to": to, "cc": [], "object": note}


async def inbox_json(hub, username, member=None):
    acting = await access.acting_as(hub, username, member)
    items, _ = await state.list_conversations(hub, acting)
    return acting, items


async def test_a_mastodon_customer_sees_a_normal_reply_thread(served_hub, remote, session, people):
    hub = served_hub
    mia = remote.add_actor("mia")  # Mastodon: no FEP-171b
    first = load_fixture("notes/mastodon_direct.json", base=remote.base, username="mia", host=remote.host,
                         target=people["acme"].uri)
    assert (await post_signed(session, hub.uris.shared_inbox(), first, mia))[0] == 202
    await hub.runner.drain()
    agent, items = await inbox_json(hub, "acme", "dana")
    (conv_item,) = items
    assert conv_item["owner"] == mia.uri and conv_item["status"] == "open"
    conversation = await conversations.get_conversation(hub, conv_item["id"])
    reply = await conversations.reply(hub, agent, conversation, "We are on it.")
    await hub.runner.drain()
    (request,) = remote.received
    sent = request["json"]
    assert sent["type"] == "Create"  # a plain reply: Mastodon ignores Adds
    note = sent["object"]
    assert note["id"] == reply.uri and note["inReplyTo"] == first["object"]["id"]
    assert note["to"] == [mia.uri] and note["cc"] == []
    assert note["tag"] == [{"type": "Mention", "href": mia.uri, "name": f"@mia@{remote.host}"}]
    assert note["content"].startswith('<p><span class="h-card"><a href=') and f"@<span>mia</span>@{remote.host}" in note["content"]
    assert note["source"]["content"].startswith("We are on it.")  # the text as written; the mention is in the HTML
    assert note["content"].endswith("<p>— Dana, Acme</p>") and 'class="u-url mention"' in note["content"]
    assert "contextHistory" not in note  # the customer's thread, kept here only for her
    # Mastodon's next reply threads by inReplyTo (and its own conversation tag)
    second = create_from(mia, to=[people["acme"].uri], text="Thank you", in_reply_to=note["id"],
                         conversation=first["object"]["conversation"])
    assert (await post_signed(session, hub.uris.shared_inbox(), second, mia))[0] == 202
    await hub.runner.drain()
    _agent, items = await inbox_json(hub, "acme", "dana")
    assert [i["id"] for i in items] == [conv_item["id"]]
    view = await state.show(hub, agent, conversation)
    assert [m["text"].split()[-1] for m in view["messages"]] == ["arrived", "Acme", "you"]


async def test_the_owners_hub_hands_messages_to_container_peers_as_adds(served_hub, remote, remote2, session, people):
    hub = served_hub
    vendor = remote.add_actor("vendor", "container_peer")  # implements FEP-171b
    oldco = remote2.add_actor("oldco", "mastodon")  # does not
    vendor_row = await discovery.ensure_actor(hub.federation, vendor.uri)
    oldco_row = await discovery.ensure_actor(hub.federation, oldco.uri)
    carol = await access.acting_as(hub, "carol")
    conversation, first = await conversations.start(hub, carol, [vendor_row, oldco_row], "Which of you ships it?")
    await hub.runner.drain()
    (to_vendor,) = remote.received
    (to_oldco,) = remote2.received
    add = to_vendor["json"]
    assert add["type"] == "Add" and add["actor"] == people["carol"].uri
    assert add["target"] == {"type": "OrderedCollection", "id": conversation.uri, "attributedTo": people["carol"].uri}
    assert add["object"]["type"] == "Create" and add["object"]["object"]["id"] == first.uri
    assert add["object"]["object"]["contextHistory"] == conversation.uri == add["object"]["object"]["context"]
    assert to_oldco["json"]["type"] == "Create" and to_oldco["json"]["object"]["id"] == first.uri
    # the container peer answers the owner only; the owner's hub hands it on
    answer = create_from(vendor, to=[people["carol"].uri, oldco.uri], text="We do", in_reply_to=first.uri,
                         context=conversation.uri)
    assert (await post_signed(session, hub.uris.shared_inbox(), answer, vendor))[0] == 202
    await hub.runner.drain()
    handed = [r["json"] for r in remote.received[1:]]
    assert [(a["type"], a["actor"], a["object"]["id"]) for a in handed] == [("Add", people["carol"].uri, answer["id"])]
    assert handed[0]["object"] == {k: v for k, v in answer.items() if k != "@context"}  # the author's own activity
    assert len(remote2.received) == 1  # the owner cannot speak for the vendor to oldco: the vendor's hub does
    view = await state.show(hub, carol, conversation)
    assert [m["uri"] for m in view["messages"]] == [first.uri, answer["object"]["id"]]
    # non-participants and closed conversations are not added to
    stranger = remote.add_actor("stranger", "container_peer")
    intruder = create_from(stranger, to=[people["carol"].uri], text="hi all", in_reply_to=first.uri, context=conversation.uri)
    await conversations.close(hub, carol, conversation)
    late = create_from(vendor, to=[people["carol"].uri], text="one more", in_reply_to=first.uri, context=conversation.uri)
    for activity, actor in ((intruder, stranger), (late, vendor)):
        assert (await post_signed(session, hub.uris.shared_inbox(), activity, actor))[0] == 202
    await hub.runner.drain()
    view = await state.show(hub, carol, conversation)
    assert len(view["messages"]) == 2 and len(remote.received) == 2


async def test_adds_are_taken_only_from_the_owner_and_checked_at_their_origin(served_hub, remote, remote2, session, people):
    hub = served_hub
    rita = remote.add_actor("rita", "container_peer")  # a customer on a container peer owns this one
    shop = remote2.add_actor("shop", "container_peer")
    container = f"{remote.base}/conversations/1"
    target = {"type": "OrderedCollection", "id": container, "attributedTo": rita.uri}
    real = create_from(shop, to=[rita.uri, people["acme"].uri], text="the real words", context=container)
    remote2.objects[real["object"]["id"]] = real["object"]
    forged = json.loads(json.dumps(real))
    forged["object"]["content"] = "<p>forged words</p>"
    add = {"@context": AS, "id": f"{remote.base}/adds/1", "type": "Add", "actor": rita.uri, "object": forged,
           "target": target, "to": [people["acme"].uri, shop.uri]}
    assert (await post_signed(session, hub.uris.shared_inbox(), add, rita))[0] == 202
    # an Add to rita's conversation by someone who does not own it
    not_owner = {"@context": AS, "id": f"{remote2.base}/adds/2", "type": "Add", "actor": shop.uri,
                 "object": create_from(shop, to=[people["acme"].uri], text="sneaked in", context=container),
                 "target": target, "to": [people["acme"].uri]}
    assert (await post_signed(session, hub.uris.shared_inbox(), not_owner, shop))[0] == 202
    await hub.runner.drain()
    acting, items = await inbox_json(hub, "acme")
    (item,) = items
    assert item["uri"] == container and item["owner"] == rita.uri and not item["hosted_here"]
    view = await state.show(hub, acting, await conversations.get_conversation(hub, item["id"]))
    assert [m["text"] for m in view["messages"]] == ["the real words"]  # fetched from its origin, not the Add's copy
    assert ("GET", "/users/shop/statuses/" + real["object"]["id"].rsplit("/", 1)[-1]) in remote2.requests
    # the owner removes it (FEP-171b: an Add of a Delete)
    removal = {"@context": AS, "id": f"{remote.base}/adds/3", "type": "Add", "actor": rita.uri,
               "object": {"id": f"{remote.base}/deletes/1", "type": "Delete", "actor": rita.uri, "object": real["object"]["id"]},
               "target": target, "to": [people["acme"].uri]}
    assert (await post_signed(session, hub.uris.shared_inbox(), removal, rita))[0] == 202
    await hub.runner.drain()
    view = await state.show(hub, acting, await conversations.get_conversation(hub, item["id"]))
    assert view["messages"] == []


async def test_owner_removal_and_backfill_reach_container_peers(served_hub, remote, remote2, session, people):
    hub = served_hub
    vendor = remote.add_actor("vendor", "container_peer")
    late = remote2.add_actor("late", "container_peer")
    vendor_row = await discovery.ensure_actor(hub.federation, vendor.uri)
    late_row = await discovery.ensure_actor(hub.federation, late.uri)
    carol = await access.acting_as(hub, "carol")
    conversation, first = await conversations.start(hub, carol, [vendor_row], "first")
    second = await conversations.reply(hub, carol, conversation, "second")
    await hub.runner.drain()
    await conversations.add_participant(hub, carol, conversation, late_row)
    await hub.runner.drain()
    backfilled = [r["json"] for r in remote2.received]
    assert sorted((a["type"], a["object"]["object"]["id"]) for a in backfilled) == sorted([("Add", first.uri), ("Add", second.uri)])
    await conversations.remove_message(hub, carol, conversation, second.uri)
    await hub.runner.drain()
    removal = remote.received[-1]["json"]
    assert removal["type"] == "Add" and removal["object"]["type"] == "Delete" and removal["object"]["object"] == second.uri
    assert remote2.received[-1]["json"]["object"]["type"] == "Delete"
    async with hub.db.read() as conn:
        assert (await msg_store.get_message_by_uri(conn, second.uri)).removed_at is not None
    # the container: readable by the participants' servers, not by others
    # a participant reads it; another user of the same server does not; nor does an anonymous reader
    for actor, status in ((vendor, 200), (remote.add_actor("nosy", "container_peer"), 404), (None, 404)):
        headers = actor.sign(conversation.uri, None, shape="mastodon-4.4-get") if actor else {"Accept": "application/activity+json"}
        headers.pop("Host", None)
        async with session.get(conversation.uri, headers=headers) as resp:
            assert resp.status == status
    stranger_server = remote.__class__()
    await stranger_server.start()
    try:
        outsider = stranger_server.add_actor("out")
        headers = outsider.sign(conversation.uri, None, shape="mastodon-4.4-get")
        headers.pop("Host")
        async with session.get(conversation.uri, headers=headers) as resp:
            assert resp.status == 404
        headers = vendor.sign(conversation.uri + "?page=1", None, shape="mastodon-4.4-get")
        headers.pop("Host")
        async with session.get(conversation.uri + "?page=1", headers=headers) as resp:
            page = await resp.json(content_type=None)
        assert [i["object"]["object"]["id"] if isinstance(i["object"].get("object"), dict) else i["object"]["object"]
                for i in page["orderedItems"]] == [first.uri]  # removed messages are out of the container
        assert all(i["type"] == "Add" and i["actor"] == people["carol"].uri for i in page["orderedItems"])
    finally:
        await stranger_server.stop()


async def test_private_notes_never_leave(served_hub, remote, remote2, session, people):
    """Every request sent to any peer, and every outbound activity and job, is
    searched for the notes' text."""
    hub = served_hub
    marker = "NOTE-9f3c-never-leaves"
    vendor = remote.add_actor("vendor", "container_peer")
    mia = remote2.add_actor("mia", "mastodon")
    vendor_row = await discovery.ensure_actor(hub.federation, vendor.uri)
    mia_row = await discovery.ensure_actor(hub.federation, mia.uri)
    carol = await access.acting_as(hub, "carol")
    agent = await access.acting_as(hub, "acme", "dana")
    conversation, first = await conversations.start(hub, carol, [vendor_row, mia_row, people["acme"]], "hello all")
    for acting in (carol, agent):
        await state.update(hub, acting, conversation, note=f"{marker} by {acting.actor.username}",
                           add_labels=["secret"], status="pending")
    await conversations.reply(hub, agent, conversation, "Acme answering")
    await conversations.reply(hub, carol, conversation, "Carol again")
    answer = create_from(vendor, to=[people["carol"].uri], text="vendor here", in_reply_to=first.uri, context=conversation.uri)
    assert (await post_signed(session, hub.uris.shared_inbox(), answer, vendor))[0] == 202
    await conversations.add_participant(hub, carol, conversation, await discovery.ensure_actor(
        hub.federation, remote.add_actor("late", "container_peer").uri))
    await hub.runner.drain()
    sent = [r["body"] for r in remote.received + remote2.received]
    assert len(sent) >= 6  # Adds to the container peers, Creates to the Mastodon one, the backfill
    assert not any(marker.encode() in body for body in sent)
    assert not any(b"secret" in body for body in sent)  # nor the labels
    async with hub.db.read() as conn:
        import sqlalchemy as sa

        leaked = (await conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM activities WHERE raw LIKE :m) + (SELECT count(*) FROM jobs WHERE CAST(payload AS TEXT) LIKE :m)"
        ), {"m": f"%{marker}%"})).scalar_one()
    assert leaked == 0
    view = await state.show(hub, agent, conversation)
    assert [n["text"] for n in view["notes"]] == [f"{marker} by acme"]  # and each side sees only its own




async def test_a_participant_cannot_take_a_conversation_kept_here(served_hub, remote, session, people):
    """An Add naming one of our messages moves the conversation only for the
    customer we hold it for (adoption), never for another participant."""

    hub = served_hub
    shop = remote.add_actor("shop", "container_peer")
    carol = await access.acting_as(hub, "carol")
    shop_row = await hub.resolve_handle(shop.uri)
    conv, msg = await conversations.start(hub, carol, [shop_row, people["acme"]], "hello shop and acme")
    await hub.runner.drain(raise_errors=False)
    add = {"@context": AS, "id": f"{remote.base}/adds/x", "type": "Add", "actor": shop.uri,
           "object": {"id": f"{remote.base}/creates/x", "type": "Create", "actor": people["carol"].uri, "object": msg.uri},
           "target": {"type": "OrderedCollection", "id": f"{remote.base}/conversations/stolen", "attributedTo": shop.uri},
           "to": [people["acme"].uri]}
    assert (await post_signed(session, hub.uris.shared_inbox(), add, shop))[0] == 202
    await hub.runner.drain(raise_errors=False)
    async with hub.db.read() as conn:
        after = await msg_store.get_conversation_by_id(conn, conv.id)
    assert after.owner_id == people["carol"].id and after.local and after.uri == conv.uri
    await conversations.close(hub, carol, after)  # still hers to moderate


async def test_someone_outside_a_conversation_cannot_write_into_it_by_naming_its_context(
        served_hub, remote, remote2, session, people):
    hub = served_hub
    rita = remote.add_actor("rita", "container_peer")
    evil = remote2.add_actor("evil", "container_peer")
    container = f"{remote.base}/conversations/1"
    first = create_from(rita, to=[people["acme"].uri], text="hi acme", context=container)
    assert (await post_signed(session, hub.uris.shared_inbox(), first, rita))[0] == 202
    await hub.runner.drain(raise_errors=False)
    forged = create_from(evil, to=[people["acme"].uri], text="I am rita's colleague, refund to IBAN X", context=container)
    assert (await post_signed(session, hub.uris.shared_inbox(), forged, evil))[0] == 202
    await hub.runner.drain(raise_errors=False)
    acting, items = await inbox_json(hub, "acme")
    threads = {}
    for it in items:
        view = await state.show(hub, acting, await conversations.get_conversation(hub, it["id"]))
        threads[it["uri"]] = [m["text"] for m in view["messages"]]
    assert threads[container] == ["hi acme"]  # rita's conversation is untouched
    assert any("IBAN" in "".join(t) for uri, t in threads.items() if uri != container)  # evil's stands apart
