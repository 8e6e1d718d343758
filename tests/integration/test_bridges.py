"""Bridges around the hub: writing first to an email address, consent per
network, webhook channels over real HTTP, the SMTP listener refusing bad
input, attachments, and a bridge run as its own process over the bridge API."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import email.utils
import json
import os
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiosmtpd.controller import Controller

from hub import actors
from hub.bridges import api as bridge_api
from hub.bridges import core as bridge_core
from hub.bridges import webhook
from hub.bridges.email import EmailConnector
from hub.bridges.memory import MemoryConnector
from hub.errors import Forbidden, UsageError
from hub.inbox import access, conversations, state
from hub.store import bridges as bridge_store
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Provider:
    def __init__(self):
        self.got: list[tuple[str, list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.got.append((envelope.mail_from, list(envelope.rcpt_tos),
                             email.message_from_bytes(envelope.original_content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
async def provider():
    p = Provider()
    c = Controller(p, hostname="127.0.0.1", port=free_port())
    c.start()
    yield p, c.port
    c.stop()


@pytest.fixture
async def mail(served_hub, provider):
    """The hub's email connector, listening on a free port and relaying to the provider."""
    hub = served_hub
    _p, port = provider
    cfg = dataclasses.replace(hub.cfg, smtp_relay=f"127.0.0.1:{port}", smtp_listen=f"127.0.0.1:{free_port()}",
                              max_mail_bytes=200_000, max_attachment_bytes=50_000)
    hub.bridges.connectors.clear()
    connector = EmailConnector(cfg)
    hub.bridges.add_connector(connector)
    await hub.bridges.start()
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    yield connector, int(cfg.smtp_listen.rsplit(":", 1)[1])
    await hub.bridges.stop()


async def chat_network(hub) -> MemoryConnector:
    """The in-memory reference network, named "chat", as this hub's only bridge."""
    hub.bridges.connectors.clear()
    memory = MemoryConnector("chat")
    hub.bridges.add_connector(memory)
    await hub.bridges.ensure_bridge_rows()
    return memory


async def inbox_of(hub, username):
    acting = await access.acting_as(hub, username)
    items, _ = await state.list_conversations(hub, acting)
    return acting, items


async def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def smtp_send(port: int, data: bytes, mail_from: str, to: list[str]):
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP lines end in CRLF
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        return s.sendmail(mail_from, to, data)


async def test_an_organization_writes_first_to_an_email_address(served_hub, mail, provider):
    hub = served_hub
    box, _port = provider
    _connector, smtp_port = mail
    acting = await access.acting_as(hub, "acme")
    dan = await hub.resolve_handle("mailto:Dan@Customer.test")
    assert dan.bridge_network == "email" and "@" not in dan.username
    conversation, _m = await conversations.start(hub, acting, [dan], "Your repair is done.", subject="Repair 77")
    await hub.runner.drain()
    ((mail_from, rcpts, got),) = box.got
    assert rcpts == ["dan@customer.test"] and got["Subject"] == "Repair 77"
    assert mail_from.startswith("bounces+")
    async with hub.db.read() as conn:
        assert await bridge_store.networks_of(conn, conversation.id) == {"email": True}
    view = await state.show(hub, acting, conversation)
    assert view["conversation"]["owner"] == dan.uri  # the customer owns it, even when written to first

    answer = EmailMessage()
    answer["From"] = "Dan <dan@customer.test>"
    answer["To"] = got["From"]
    answer["Subject"] = "Re: Repair 77"
    answer["Message-ID"] = "<dan-1@customer.test>"
    answer["In-Reply-To"] = got["Message-ID"]
    answer.set_content("Great, I will pick it up.")
    await asyncio.to_thread(smtp_send, smtp_port, answer.as_bytes(), "dan@customer.test",
                            [email.utils.parseaddr(got["From"])[1]])
    await wait_for(lambda: _placed(hub))
    await hub.runner.drain()
    _acting, items = await inbox_of(hub, "acme")
    assert len(items) == 1
    assert (await state.show(hub, acting, conversation))["messages"][-1]["text"].strip() == "Great, I will pick it up."


async def _placed(hub):
    await hub.runner.drain()
    async with hub.db.read() as conn:
        return [i for i in await bridge_store.list_items(conn) if i.status != "queued"]


async def test_nothing_goes_to_a_network_the_owner_has_not_allowed(served_hub):
    hub = served_hub
    memory = await chat_network(hub)
    alice = await actors.create_local_actor(hub, "alice", kind="person", name="Alice")
    acme = await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    as_alice, as_acme = await access.acting_as(hub, "alice"), await access.acting_as(hub, "acme")
    conversation, _m = await conversations.start(hub, as_alice, [acme], "Hello Acme")
    assert conversation.owner_id == alice.id
    bob = await hub.resolve_handle("chat:bob")
    with pytest.raises(Exception, match="owner"):
        await conversations.add_participant(hub, as_acme, conversation, bob)  # only the owner brings people in
    await conversations.add_participant(hub, as_alice, conversation, bob)
    held = await conversations.reply(hub, as_acme, conversation, "Hello both")
    await hub.runner.drain(raise_errors=False)
    assert memory.outbox == []  # held: Alice has not allowed the chat network for this conversation
    view = await state.show(hub, as_acme, conversation)
    (d,) = [d for m in view["messages"] if m["uri"] == held.uri for d in m["delivery"] if d.get("network")]
    assert d["state"] == "failed-permanent" and "not allowed" in d["last_error"]
    with pytest.raises(Forbidden):
        await bridge_core.set_network_allowed(hub, as_acme, conversation, "chat", True)  # not Acme's to decide
    await bridge_core.set_network_allowed(hub, as_alice, conversation, "chat", True)
    await conversations.reply(hub, as_acme, conversation, "Now you can hear us")
    await hub.runner.drain()
    assert [o.text for _r, o in memory.outbox] == ["Now you can hear us"]
    assert memory.outbox[0][1].from_name == "Acme"
    # Alice's own message says it is hers; a relay would say who wrote it
    await conversations.reply(hub, as_alice, conversation, "Thanks")
    await hub.runner.drain()
    assert memory.outbox[1][1].text == "Thanks" and memory.outbox[1][1].from_username == "alice"
    await bridge_core.set_network_allowed(hub, as_alice, conversation, "chat", False)
    await conversations.reply(hub, as_acme, conversation, "Silence")
    await hub.runner.drain(raise_errors=False)
    assert len(memory.outbox) == 2


# --- webhook channels over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def sms(served_hub):
    hub = served_hub
    hub.bridges.connectors.clear()
    got: list[dict] = []
    answers: list[int] = []

    async def provider(request):
        body = await request.read()
        assert webhook.verify(secret["value"], request.headers, body) is None
        status = answers.pop(0) if answers else 200
        if status != 200:
            return web.json_response({"error": "try later"}, status=status)
        data = json.loads(body)
        got.append(data)
        return web.json_response({"id": f"SM{len(got)}"})

    app = web.Application()
    app.router.add_post("/out", provider)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    created = await bridge_api.create_bridge(hub, "sms", kind="webhook", url=f"http://127.0.0.1:{port}/out",
                                             owner="acme", capabilities=[])
    secret = {"value": created["secret"]}
    yield hub, created, got, answers
    await runner.cleanup()


async def post_signed(session, url, payload, secret, *, ts=None, sig=None):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    headers = webhook.signed_headers(secret, body)
    if ts is not None:
        headers["X-Roundtable-Timestamp"] = ts
        headers["X-Roundtable-Signature"] = webhook.signature(secret, ts, body)
    if sig is not None:
        headers["X-Roundtable-Signature"] = sig
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_webhook_channel_takes_signed_json_and_refuses_the_rest(sms, session):
    hub, created, got, answers = sms
    url, secret = created["inbound_url"], created["secret"]
    good = {"id": "SM-in-1", "from": {"id": "+4915100000001", "name": "Carol"}, "text": "Is my parcel coming?"}
    status, body = await post_signed(session, url, good, secret, sig="sha256=" + "0" * 64)
    assert status == 401 and "signature" in body["error"]
    status, body = await post_signed(session, url, good, secret, ts=str(int(time.time()) - 3600))
    assert status == 401 and "old" in body["error"]
    status, body = await post_signed(session, url, good, secret, sig="sha256=\u00e9\u00e9")
    assert status == 401 and "signature" in body["error"]
    status, body = await post_signed(session, url, {"id": "x", "text": "no sender"}, secret)
    assert status == 400 and "from.id" in body["error"]
    status, body = await post_signed(session, url, b"{not json", secret)
    assert status == 400
    async with session.post(url, data=json.dumps(good)) as resp:
        assert resp.status == 401
    async with hub.db.read() as conn:
        assert await bridge_store.list_items(conn) == []  # nothing refused was stored

    status, body = await post_signed(session, url, good, secret)
    assert status == 202 and body["item"]
    await hub.runner.drain()
    acting, items = await inbox_of(hub, "acme")
    assert len(items) == 1
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    # SMS has no threads: the next message from the same number goes on in the same conversation
    status, _ = await post_signed(session, url, {**good, "id": "SM-in-2", "text": "Hello?"}, secret)
    await hub.runner.drain()
    _acting, items = await inbox_of(hub, "acme")
    assert len(items) == 1 and len((await state.show(hub, acting, conversation))["messages"]) == 2

    # out: signed POSTs, retried after a provider error, state shown
    answers.extend([503])
    message = await conversations.reply(hub, acting, conversation, "Yes, tomorrow.")
    await hub.runner.drain(raise_errors=False)
    view = await state.show(hub, acting, conversation)
    (d,) = [d for m in view["messages"] if m["uri"] == message.uri for d in m["delivery"] if d.get("network")]
    assert d["state"] == "failed-retriable" and "503" in d["last_error"]
    await asyncio.sleep(0.5)
    await hub.runner.drain()
    (sent,) = got
    assert sent["to"] == {"id": "+4915100000001", "name": "Carol"} and sent["text"] == "Yes, tomorrow."
    assert sent["in_reply_to"] == "SM-in-2" and sent["from"]["username"] == "acme"
    view = await state.show(hub, acting, conversation)
    (d,) = [d for m in view["messages"] if m["uri"] == message.uri for d in m["delivery"] if d.get("network")]
    assert d["state"] == "sent"


# --- the SMTP listener ----------------------------------------------------------------------------------


async def test_the_smtp_listener_refuses_what_it_cannot_take_and_keeps_the_rest(served_hub, mail):
    hub = served_hub
    _connector, port = mail

    def dialogue():
        out = {}
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.ehlo("client.test")
            out["size"] = s.esmtp_features.get("size")
            s.mail("x@customer.test")
            out["unknown"] = s.rcpt("nobody@" + hub.cfg.mail_domain)
            out["relay"] = s.rcpt("acme@example.org")
            out["ok"] = s.rcpt("acme@" + hub.cfg.mail_domain)
            out["big"] = s.data(b"From: x@customer.test\r\nSubject: big\r\n\r\n" + (b"a" * 98 + b"\r\n") * 2500)
        return out

    out = await asyncio.to_thread(dialogue)
    assert out["size"] == "200000"
    assert out["unknown"][0] == 550 and out["relay"][0] == 550 and out["ok"][0] == 250
    assert out["big"][0] == 552
    # broken MIME and a wrong charset: taken, kept raw, readable
    raw = (b"From: Zoe <zoe@customer.test>\r\nTo: acme@" + hub.cfg.mail_domain.encode() + b"\r\nSubject: =?bogus?Q?x?=\r\n"
           b"Message-ID: <zoe-1@customer.test>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/alternative; boundary=\"BOUND\"\r\n\r\n--BOUND\r\n"
           b"Content-Type: text/plain; charset=utf8x\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQ\r\n")
    await asyncio.to_thread(smtp_send, port, raw, "zoe@customer.test", ["acme@" + hub.cfg.mail_domain])
    (item,) = await wait_for(lambda: _placed(hub))
    async with hub.db.read() as conn:
        stored = await bridge_store.get_item(conn, item.id)
    assert bytes(stored.raw) == raw  # kept exactly as received
    assert item.status in ("placed", "flagged")
    if item.status == "placed":
        acting, items = await inbox_of(hub, "acme")
        view = await state.show(hub, acting, await conversations.get_conversation(hub, items[0]["id"]))
        assert "Hello world" in view["messages"][0]["text"]


async def test_attachments_are_kept_and_served(served_hub, mail, session):
    hub = served_hub
    _connector, port = mail
    msg = EmailMessage()
    msg["From"] = "Carol <carol@customer.test>"
    msg["To"] = "acme@" + hub.cfg.mail_domain
    msg["Subject"] = "Photo"
    msg["Message-ID"] = "<photo-1@customer.test>"
    msg.set_content("The broken part.")
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    msg.add_attachment(png, maintype="image", subtype="png", filename="part.png")
    msg.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html", filename="x.html")
    msg.add_attachment(os.urandom(60_000), maintype="application", subtype="octet-stream", filename="big.bin")
    await asyncio.to_thread(smtp_send, port, msg.as_bytes(), "carol@customer.test", ["acme@" + hub.cfg.mail_domain])
    await wait_for(lambda: _placed(hub))
    acting, items = await inbox_of(hub, "acme")
    view = await state.show(hub, acting, await conversations.get_conversation(hub, items[0]["id"]))
    (m,) = view["messages"]
    files = {a["filename"]: a for a in m["attachments"]}
    assert set(files) == {"part.png", "x.html"}  # the one over max_attachment_bytes is dropped...
    assert "attachment_dropped" in m["flags"]  # ...and says so
    async with session.get(files["part.png"]["url"]) as resp:
        assert resp.status == 200 and await resp.read() == png
        assert resp.headers["Content-Type"] == "image/png" and resp.headers["X-Content-Type-Options"] == "nosniff"
    async with session.get(files["x.html"]["url"]) as resp:  # never rendered as a page of ours
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-Disposition"].startswith("attachment")
    async with session.get(hub.cfg.base_url + "/media/01aaaaaaaaaaaaaaaaaaaaaaaa/x.png") as resp:
        assert resp.status == 404


async def test_bridge_state_is_stored_and_listed(served_hub, mail):
    hub = served_hub
    async with hub.db.read() as conn:
        row = await bridge_store.get_bridge(conn, "email")
    assert row.state == "connected" and "listening" in row.state_detail
    await hub.bridges.stop()
    async with hub.db.read() as conn:
        assert (await bridge_store.get_bridge(conn, "email")).state == "stopped"


# --- a bridge in its own process ------------------------------------------------------------------------


async def test_a_bridge_run_by_an_operator_in_its_own_process(served_hub, provider, session):
    hub = served_hub
    box, relay_port = provider
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    created = await bridge_api.create_bridge(hub, "opsmail", kind="external", url=None, owner=None, capabilities=[])
    assert created["token"].startswith("rtb_")
    # the bridge API refuses anyone without the token
    async with session.post(hub.cfg.base_url + "/api/roundtable/v1/bridge/items", json={}) as resp:
        assert resp.status == 401
    smtp_port, send_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    env.update({
        "ROUNDTABLE_DEV": "1", "ROUNDTABLE_DOMAIN": "bridge.localhost", "ROUNDTABLE_MAIL_DOMAIN": hub.cfg.mail_domain,
        "ROUNDTABLE_DATA": str(hub.cfg.data / "bridge"), "ROUNDTABLE_SMTP_LISTEN": f"127.0.0.1:{smtp_port}",
        "ROUNDTABLE_SMTP_RELAY": f"127.0.0.1:{relay_port}", "ROUNDTABLE_BRIDGE_TOKEN": created["token"],
        "ROUNDTABLE_BRIDGE_SECRET": created["secret"],
    })
    proc = subprocess.Popen([sys.executable, "-m", "hub", "bridge", "run", "opsmail", "--hub", hub.cfg.base_url,
                             "--listen", f"127.0.0.1:{send_port}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async def connected():
            async with hub.db.read() as conn:
                row = await bridge_store.get_bridge(conn, "opsmail")
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode())
            return row.state == "connected" and row.url and "listening" in (row.state_detail or "") and row

        row = await wait_for(connected, timeout=20)
        assert row.url == f"http://127.0.0.1:{send_port}"
        msg = EmailMessage()
        msg["From"] = "Erin <erin@customer.test>"
        msg["To"] = "acme@" + hub.cfg.mail_domain
        msg["Subject"] = "Via the operator's bridge"
        msg["Message-ID"] = "<erin-1@customer.test>"
        msg.set_content("Hello through another process.")
        await asyncio.to_thread(smtp_send, smtp_port, msg.as_bytes(), "erin@customer.test", ["acme@" + hub.cfg.mail_domain])
        await wait_for(lambda: _placed(hub), timeout=20)
        acting, items = await inbox_of(hub, "acme")
        conversation = await conversations.get_conversation(hub, items[0]["id"])
        view = await state.show(hub, acting, conversation)
        (m,) = view["messages"]
        assert m["network"] == "opsmail" and "another process" in m["text"]
        async with hub.db.read() as conn:
            identity = await bridge_store.get_identity(conn, "opsmail", "erin@customer.test")
        assert identity is not None  # in the bridge's own namespace
        await conversations.reply(hub, acting, conversation, "Answered through the operator's bridge.")

        async def sent():
            await hub.runner.drain(raise_errors=False)
            return box.got

        ((_f, rcpts, got),) = await wait_for(sent, timeout=20)
        assert rcpts == ["erin@customer.test"] and got["In-Reply-To"] == "<erin-1@customer.test>"
        view = await state.show(hub, acting, conversation)
        assert [d["state"] for m in view["messages"] for d in (m["delivery"] or []) if d.get("network")] == ["sent"]
    finally:
        proc.terminate()  # it reports "stopped" to the hub, which answers on this event loop
        await asyncio.to_thread(proc.wait, 10)


async def test_behind_an_mta_the_listener_speaks_lmtp(served_hub, provider):
    hub = served_hub
    _box, relay_port = provider
    cfg = dataclasses.replace(hub.cfg, smtp_relay=f"127.0.0.1:{relay_port}", smtp_listen=f"127.0.0.1:{free_port()}",
                              lmtp=True)
    hub.bridges.connectors.clear()
    hub.bridges.add_connector(EmailConnector(cfg))
    await hub.bridges.start()
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    await actors.create_local_actor(hub, "shop", kind="organization", name="Shop")
    port = int(cfg.smtp_listen.rsplit(":", 1)[1])
    msg = EmailMessage()
    msg["From"] = "Carol <carol@customer.test>"
    msg["To"] = f"acme@{cfg.mail_domain}, shop@{cfg.mail_domain}"
    msg["Subject"] = "To both"
    msg["Message-ID"] = "<both-1@customer.test>"
    msg.set_content("Hello both.")

    def deliver():
        with smtplib.LMTP("127.0.0.1", port, timeout=10) as s:
            s.ehlo_or_helo_if_needed()
            s.mail("carol@customer.test")
            for rcpt in ("acme", "shop"):
                assert s.rcpt(f"{rcpt}@{cfg.mail_domain}")[0] == 250
            s.putcmd("data")
            code, _ = s.getreply()
            assert code == 354
            s.send(msg.as_bytes(policy=email.policy.SMTP) + b".\r\n")
            return [s.getreply() for _ in range(2)]  # one answer per recipient

    replies = await asyncio.to_thread(deliver)
    assert [code for code, _ in replies] == [250, 250]
    try:
        await wait_for(lambda: _placed(hub))
        for org in ("acme", "shop"):
            _acting, items = await inbox_of(hub, org)
            assert len(items) == 1  # one conversation with both organizations in it
        assert items[0]["subject"] == "To both" and len(items[0]["participants"]) == 3
    finally:
        await hub.bridges.stop()


async def test_the_api_gives_customers_and_organizations_the_same_bridge_tools(served_hub, session):
    """Channels, networks and claims over the JSON API: the same calls for a
    customer and for an organization; roles and ownership enforced."""
    import re

    from tests.integration.test_inbox_api import token_for

    hub = served_hub
    memory = await chat_network(hub)
    base = hub.cfg.base_url + "/api/roundtable/v1"
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    await actors.create_local_actor(hub, "alice", kind="person", name="Alice")
    await actors.create_local_actor(hub, "dana", kind="person", name="Dana")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    tokens = {u: await token_for(hub, u) for u in ("acme", "alice", "dana")}

    async def call(method, path, who, body=None):
        async with session.request(method, base + path, json=body,
                                   headers={"Authorization": f"Bearer {tokens[who]}"}) as resp:
            return resp.status, (await resp.json() if resp.content_type == "application/json" else None)

    for owner in ("acme", "alice"):  # equal footing: a customer has channels too
        status, created = await call("POST", f"/actors/{owner}/channels", owner,
                                     {"name": f"{owner}sms", "url": "http://127.0.0.1:9/out"})
        assert status == 201 and created["secret"] and created["inbound_url"].endswith(f"/channels/{owner}sms/inbound")
        status, listed = await call("GET", f"/actors/{owner}/channels", owner)
        assert [c["name"] for c in listed["items"]] == [f"{owner}sms"] and "secret" not in listed["items"][0]
    status, body = await call("POST", "/actors/acme/channels", "dana", {"name": "danasms", "url": "http://127.0.0.1:9/"})
    assert status == 403  # an agent is not an admin
    status, _ = await call("DELETE", "/actors/alice/channels/acmesms", "alice")
    assert status == 404  # not hers
    assert (await call("DELETE", "/actors/acme/channels/acmesms", "acme"))[0] == 204

    # networks: only the owner of the conversation decides
    status, started = await call("POST", "/actors/alice/conversations", "alice", {"to": [f"@acme@{hub.cfg.domain}"], "text": "hi"})
    assert status == 201
    conv = started["conversation"]["id"]
    assert (await call("PUT", f"/actors/acme/conversations/{conv}/networks/chat", "acme"))[0] == 403
    status, body = await call("PUT", f"/actors/alice/conversations/{conv}/networks/chat", "alice")
    assert status == 200 and body["networks"] == [{"network": "chat", "origin": False}]
    status, body = await call("DELETE", f"/actors/alice/conversations/{conv}/networks/chat", "alice")
    assert status == 200 and body["networks"] == []

    # claims: the code goes to the identity, the wrong code is refused
    for who in ("alice", "acme"):
        status, body = await call("POST", f"/actors/{who}/identities", who, {"network": "chat", "remote_id": f"{who}-old"})
        assert status == 202 and body["state"] == "code_sent"
        code = re.search(r"code is: (\S+)", memory.outbox[-1][1].text).group(1)
        assert memory.outbox[-1][1].to == f"{who}-old" and memory.outbox[-1][1].automatic
        status, body = await call("POST", f"/actors/{who}/identities/confirm", who,
                                  {"network": "chat", "remote_id": f"{who}-old", "code": "WRONG-CODE"})
        assert status == 403 and "wrong code" in body["error"]
        status, body = await call("POST", f"/actors/{who}/identities/confirm", who,
                                  {"network": "chat", "remote_id": f"{who}-old", "code": code})
        assert status == 200 and body["state"] == "claimed"
        status, body = await call("GET", f"/actors/{who}/identities", who)
        assert [i["remote_id"] for i in body["items"]] == [f"{who}-old"]
    status, body = await call("POST", "/actors/acme/identities", "acme", {"network": "chat", "remote_id": "alice-old"})
    assert status == 409  # claimed by someone else already


async def test_two_items_from_one_new_person_make_one_bridged_person(served_hub):
    """Placed side by side (PostgreSQL runs them concurrently), they still make
    one identity and both become messages."""
    hub = served_hub
    await chat_network(hub)
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    for n in range(4):
        raw = json.dumps({"id": f"c-{n}", "from": {"id": "newbie", "name": "New"}, "text": f"hello {n}"}).encode()
        await hub.bridges.submit("chat", raw, sender="newbie", recipients=["acme"])
    for _ in range(10):
        await hub.runner.drain(raise_errors=False)
        async with hub.db.read() as conn:
            items = await bridge_store.list_items(conn, bridge="chat")
        if all(i.status == "placed" for i in items):
            break
        await asyncio.sleep(0.3)
    assert sorted(i.status for i in items) == ["placed"] * 4
    async with hub.db.read() as conn:
        identity = await bridge_store.get_identity(conn, "chat", "newbie")
        assert identity is not None
        assert len(await bridge_store.conversations_of_actor(conn, identity.actor_id)) == 4


async def test_outbound_mail_is_dkim_signed_when_a_key_is_configured(served_hub, provider, tmp_path):
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from hub.bridges.base import Outbound

    hub = served_hub
    box, relay_port = provider
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    cfg = dataclasses.replace(hub.cfg, smtp_relay=f"127.0.0.1:{relay_port}", dkim_selector="rt1", dkim_key=str(pem))
    connector = EmailConnector(cfg)
    out = Outbound(network="email", txn_id="01kdkimtest0000000000000000", to="carol@customer.test", to_name="Carol",
                   from_username="acme", from_name="Acme", text="Signed.", html="<p>Signed.</p>", subject="Hello")
    remote_id = await connector.send(out)
    assert remote_id == f"01kdkimtest0000000000000000@{cfg.mail_domain}"
    ((_f, _r, got),) = box.got
    raw = got.as_bytes(policy=email.policy.SMTP)
    assert b"DKIM-Signature:" in raw and b"s=rt1" in raw
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki)

    def dns(name, timeout=5):
        return record if name.decode().rstrip(".") == f"rt1._domainkey.{cfg.mail_domain}" else None

    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"Signed.", b"Forged."), dnsfunc=dns)


async def test_a_bounce_fails_the_send_and_marks_the_address_undeliverable(served_hub, mail, provider):
    hub = served_hub
    box, _port = provider
    _connector, smtp_port = mail
    acting = await access.acting_as(hub, "acme")
    dan = await hub.resolve_handle("mailto:carol.old@remote.example")
    conversation, first = await conversations.start(hub, acting, [dan], "Your invoice.", subject="Invoice")
    await hub.runner.drain()
    ((mail_from, _r, _got),) = box.got
    txn = mail_from.split("+", 1)[1].split("@", 1)[0]
    # the recipient's server answers later with an RFC 3464 report (the corpus sample, addressed to this send)
    template = (ROOT / "tests/fixtures/mail/bounce_dsn.eml").read_bytes()
    dsn = (template.replace(b"01kb7m3q9v2r5t8w1x4y6z0a2c", txn.encode())
           .replace(b"hub.example", hub.cfg.mail_domain.encode())
           .replace(b"Carol.Old@remote.example", b"carol.old@remote.example"))
    await asyncio.to_thread(smtp_send, smtp_port, dsn, "", [mail_from])
    (item,) = await wait_for(lambda: _placed(hub))
    assert item.status == "flagged" and "bounce" in item.flags and item.message_id is None
    view = await state.show(hub, acting, conversation)
    assert len(view["messages"]) == 1  # a bounce is never a message
    (d,) = [d for d in view["messages"][0]["delivery"] if d.get("network")]
    assert d["state"] == "failed-permanent" and "bounced" in d["last_error"]
    async with hub.db.read() as conn:
        identity = await bridge_store.get_identity(conn, "email", "carol.old@remote.example")
    assert identity.undeliverable_at is not None and "5.1.1" in identity.undeliverable_reason
    # nothing more is sent to a dead address
    later = await conversations.reply(hub, acting, conversation, "Reminder.")
    await hub.runner.drain(raise_errors=False)
    assert len(box.got) == 1
    view = await state.show(hub, acting, conversation)
    (d,) = [d for m in view["messages"] if m["uri"] == later.uri for d in m["delivery"] if d.get("network")]
    assert d["state"] == "failed-permanent" and "undeliverable" in d["last_error"]
    # the person writes again from that address: it works after all
    back = (f"From: Carol <carol.old@remote.example>\r\nTo: acme@{hub.cfg.mail_domain}\r\nSubject: I am back\r\n"
            f"Message-ID: <back-1@remote.example>\r\n\r\nMy mailbox was full.\r\n").encode()
    await asyncio.to_thread(smtp_send, smtp_port, back, "carol.old@remote.example", [f"acme@{hub.cfg.mail_domain}"])
    await wait_for(lambda: _two(hub))
    async with hub.db.read() as conn:
        assert (await bridge_store.get_identity(conn, "email", "carol.old@remote.example")).undeliverable_at is None


async def test_our_own_messages_coming_back_and_loops_are_never_placed(served_hub):
    hub = served_hub
    memory = await chat_network(hub)
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    first = json.dumps({"id": "x-1", "from": {"id": "kim", "name": "Kim"}, "text": "hello"}).encode()
    await hub.bridges.submit("chat", first, sender="kim", recipients=["acme"])
    await hub.runner.drain()
    acting, items = await inbox_of(hub, "acme")
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    await conversations.reply(hub, acting, conversation, "hi Kim")
    await hub.runner.drain()
    ((remote_id, out),) = memory.outbox
    # the network hands our own message back (another bridge relayed it): it carries our transaction id
    echo = json.dumps({"id": "x-echo", "from": {"id": "kim"}, "text": "hi Kim", "txn": out.txn_id}).encode()
    await hub.bridges.submit("chat", echo, sender="kim", recipients=["acme"])
    # an item that has gone round bridges too often
    from hub.bridges.base import Envelope, Sender

    looped = Envelope(network="chat", remote_id="x-loop", sender=Sender("kim"), text="again", recipients=["acme"], hops=9)
    await hub.bridges.submit("chat", b"{}", sender="kim", recipients=["acme"], envelope=looped)
    await hub.runner.drain()
    async with hub.db.read() as conn:
        rows = {json.loads(bytes(r.raw) or b"{}").get("id"): r for r in [await bridge_store.get_item(conn, i.id)
                                                                       for i in await bridge_store.list_items(conn)]}
    assert rows["x-echo"].status == "dropped" and "echo" in rows["x-echo"].flags
    assert rows[None].status == "flagged" and "loop" in rows[None].flags
    assert len((await state.show(hub, acting, conversation))["messages"]) == 2
    assert len(memory.outbox) == 1  # and nothing was sent on


async def test_only_a_real_report_of_our_send_marks_an_address_undeliverable(served_hub, mail, provider):
    hub = served_hub
    box, _port = provider
    _connector, smtp_port = mail
    acting = await access.acting_as(hub, "acme")
    dan = await hub.resolve_handle("mailto:dan@customer.test")
    conversation, _first = await conversations.start(hub, acting, [dan], "Your invoice.", subject="Invoice")
    await hub.runner.drain()
    ((mail_from, _r, sent),) = box.got
    txn = mail_from.split("+", 1)[1].split("@", 1)[0]
    domain = hub.cfg.mail_domain

    # 1. a vacation reply sent, as RFC 3834 says, to the bounce address
    vacation = (f"From: Dan <dan@customer.test>\r\nTo: {mail_from}\r\nSubject: Away: Invoice\r\n"
                f"Auto-Submitted: auto-replied\r\nMessage-ID: <away-1@customer.test>\r\n\r\nBack on Monday.\r\n").encode()
    await asyncio.to_thread(smtp_send, smtp_port, vacation, "", [mail_from])
    # 2. a forged report, sent by anyone to acme@, naming our send but another address
    template = (ROOT / "tests/fixtures/mail/bounce_dsn.eml").read_bytes()
    forged = (template.replace(b"01kb7m3q9v2r5t8w1x4y6z0a2c", txn.encode()).replace(b"hub.example", domain.encode())
              .replace(f"bounces+{txn}@{domain}".encode(), f"acme@{domain}".encode())
              .replace(b"Carol.Old@remote.example", b"someone.else@customer.test"))
    await asyncio.to_thread(smtp_send, smtp_port, forged, "x@attacker.test", [f"acme@{domain}"])
    items = await wait_for(lambda: _two(hub))
    assert sorted(i.flags[0] for i in items) == ["auto_reply", "bounce"]
    async with hub.db.read() as conn:
        identity = await bridge_store.get_identity(conn, "email", "dan@customer.test")
    assert identity.undeliverable_at is None
    view = await state.show(hub, acting, conversation)
    assert [d["state"] for d in view["messages"][0]["delivery"] if d.get("network")] == ["sent"]
    assert len(view["messages"]) == 1


async def _two(hub):
    await hub.runner.drain()
    async with hub.db.read() as conn:
        items = [i for i in await bridge_store.list_items(conn) if i.status != "queued"]
    return len(items) == 2 and items


async def test_a_channel_name_is_never_handed_to_someone_else_and_carries_only_its_owners_conversations(sms, session):
    hub, created, got, _answers = sms
    url, secret = created["inbound_url"], created["secret"]
    msg = {"id": "SM-1", "from": {"id": "+4915100000001", "name": "Carol"}, "text": "My address is 1 Main St"}
    assert (await post_signed(session, url, msg, secret))[0] == 202
    await hub.runner.drain()
    acting, items = await inbox_of(hub, "acme")
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    await bridge_api.remove_channel(hub, acting, "sms")
    await actors.create_local_actor(hub, "mallory", kind="person")
    with pytest.raises(Exception, match="used by a bridge before"):
        await bridge_api.create_bridge(hub, "sms", kind="webhook", url="http://127.0.0.1:9/steal", owner="mallory",
                                       capabilities=[])
    # mallory's own channel cannot carry Acme's conversation with Carol
    await bridge_api.create_bridge(hub, "mallorysms", kind="webhook", url="http://127.0.0.1:9/steal", owner="mallory",
                                   capabilities=[])
    stranger = await hub.resolve_handle("mallorysms:+4915100000001")
    await conversations.add_participant(hub, acting, conversation, stranger)
    with pytest.raises((Forbidden, UsageError)):  # not Acme's to allow, and mallory's channel cannot carry it
        await bridge_core.set_network_allowed(hub, await access.acting_as(hub, "acme"), conversation, "mallorysms", True)
    await conversations.reply(hub, acting, conversation, "We ship to 1 Main St.")
    await hub.runner.drain(raise_errors=False)
    async with hub.db.read() as conn:
        rows = (await conn.execute(sa.text("SELECT payload FROM jobs WHERE kind = 'bridge.send'"))).all()
    payloads = [json.loads(p) if isinstance(p, str) else p for (p,) in rows]
    assert [p["bridge"] for p in payloads] == []  # no send queued for any network: sms is gone, mallorysms cannot
    assert got == []


async def test_an_item_placed_twice_at_once_is_one_message_and_a_send_repeated_goes_once(served_hub):
    hub = served_hub
    memory = await chat_network(hub)
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    from hub.bridges.base import Attachment, Envelope, Sender

    def envelope(hops=0, remote_id="dup-1", sender="lee", text="hello", reply_to=()):
        return Envelope(network="chat", remote_id=remote_id, sender=Sender(sender, "Lee"), text=text,
                        recipients=["acme"], hops=hops, reply_to=list(reply_to),
                        attachments=[Attachment("a.txt", "text/plain", b"x" * 1000)])

    results = await asyncio.gather(*(bridge_core.ingest(hub, "chat", envelope()) for _ in range(2)),
                                   return_exceptions=True)
    placed = [r for r in results if not isinstance(r, BaseException) and r[0] == "placed"]
    assert len(placed) == 1, results
    acting, items = await inbox_of(hub, "acme")
    assert len(items) == 1 and len((await state.show(hub, acting, await conversations.get_conversation(
        hub, items[0]["id"])))["messages"]) == 1

    # hops: a message that came through two bridges goes on with three
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    other = await hub.resolve_handle("chat:kim")
    await conversations.add_participant(hub, acting, conversation, other)  # a steward: the owner is unclaimed
    await bridge_core.ingest(hub, "chat", envelope(hops=2, remote_id="dup-2", text="again", reply_to=["dup-1"]))
    await hub.runner.drain()
    (sent,) = [o for _r, o in memory.outbox if o.to == "kim"]
    assert sent.hops == 3 and "again" in sent.text

    # a send job repeated after it succeeded sends nothing more
    async with hub.db.read() as conn:
        (payload,) = [json.loads(p) if isinstance(p, str) else p for (p,) in (await conn.execute(
            sa.text("SELECT payload FROM jobs WHERE kind = 'bridge.send' AND state = 'done'"))).all()]
    outcome = await bridge_core.send(hub.bridges, payload)
    assert outcome.state == "done" and len(memory.outbox) == 1


async def test_leaving_for_good_withdraws_the_copies_where_the_network_can(served_hub):
    """A network that can withdraw a message (the in-memory reference network) has each copy of the
    leaving account's messages withdrawn, then one notice; a job run again sends nothing more."""
    from hub import leaving

    hub = served_hub
    memory = await chat_network(hub)
    await actors.create_local_actor(hub, "alice", kind="person", name="Alice")
    acme = await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    as_alice, as_acme = await access.acting_as(hub, "alice"), await access.acting_as(hub, "acme")
    conversation, _m = await conversations.start(hub, as_alice, [acme], "Hello Acme")
    await conversations.add_participant(hub, as_alice, conversation, await hub.resolve_handle("chat:bob"))
    await bridge_core.set_network_allowed(hub, as_alice, conversation, "chat", True)
    await conversations.reply(hub, as_alice, conversation, "one")
    await conversations.reply(hub, as_acme, conversation, "from acme")
    await conversations.reply(hub, as_alice, conversation, "two")
    await hub.runner.drain()
    sent = {o.text: remote for remote, o in memory.outbox}
    assert set(sent) == {"one", "from acme", "two"}
    memory.outbox.clear()

    summary = await leaving.delete_account(hub, as_alice)
    assert summary["bridged_told"] == 1
    await hub.runner.drain()
    deletes = [o for _r, o in memory.outbox if o.kind == "delete"]
    assert sorted(o.target_remote_id for o in deletes) == sorted([sent["one"], sent["two"]])  # not Acme's
    (notice,) = [o for _r, o in memory.outbox if o.kind == "message"]
    assert "@alice@" in notice.text and "were withdrawn" in notice.text and "now closed" in notice.text
    assert notice.automatic and notice.to == "bob" and notice.from_username == "acme"
    # a repeat of the job (a crash after the sends) sends nothing twice
    from hub.store.base import utcnow
    from hub.store.schema import jobs

    async with hub.db.write() as conn:
        await conn.execute(sa.update(jobs).where(jobs.c.kind == "bridge.leave").values(state="queued",
                                                                                     next_try_at=utcnow()))
    await hub.runner.drain()
    assert len(memory.outbox) == 3
