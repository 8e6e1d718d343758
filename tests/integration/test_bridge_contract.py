"""The contract every bridge passes, run over each real bridge and the in-memory one.

* ``memory``: hub/bridges/memory.py, the reference connector (its network is a list);
* ``email``: the email connector, sending through a real aiosmtpd server that
  stands in for the recipient's provider, reading real RFC 5322 bytes;
* ``webhook``: a webhook channel, posting to a real aiohttp server that stands
  in for an SMS provider, reading the signed JSON such a provider sends.

The first half tests the connector's verbs alone, the second half the hub
around them: a message from the network becomes a conversation, an agent's
answer goes back, nothing is bridged twice, echoes die, private notes never
leave, and what a network cannot carry degrades visibly.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
import json
import threading
from email.message import EmailMessage

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from hub import actors, outbox
from hub.bridges.base import Capabilities, Envelope, Rejected, SendError, State
from hub.bridges.email import EmailConnector
from hub.bridges.memory import MemoryConnector
from hub.inbox import access, conversations, state
from hub.store import messages as msg_store
from tests.helpers import free_port

KINDS = ["memory", "email", "webhook"]


class _Provider:
    def __init__(self):
        self.got: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.got.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                     policy=email.policy.default))
        return "250 OK"


class Net:
    """One network as the tests see it: how its people write, what they got."""

    name: str
    connector = None

    def item(self, *, sender: str, name: str, text: str, msg_id: str, reply_to: str | None = None) -> bytes: ...

    def received(self) -> list[tuple[str | None, str]]:
        """``(the remote id it got, its text)`` for everything sent to the network."""

    def address(self, who: str) -> str:
        return who


class MemoryNet(Net):
    name = "memory"

    async def start(self, hub):
        self.connector = MemoryConnector(self.name)
        hub.bridges.add_connector(self.connector)
        await hub.bridges.ensure_bridge_rows()

    async def stop(self):
        pass

    def item(self, *, sender, name, text, msg_id, reply_to=None):
        return json.dumps({"id": msg_id, "from": {"id": sender, "name": name}, "text": text,
                           "reply_to": reply_to}).encode()

    def received(self):
        return [(rid, o.text) for rid, o in self.connector.outbox]

    def refuse(self, who):
        self.connector.refuse.add(who)


class EmailNet(Net):
    name = "email"

    async def start(self, hub):
        self.provider = _Provider()
        self.controller = Controller(self.provider, hostname="127.0.0.1", port=free_port())
        self.controller.start()
        cfg = dataclasses.replace(hub.cfg, smtp_relay=f"127.0.0.1:{self.controller.port}")
        self.domain = cfg.mail_domain
        self.connector = EmailConnector(cfg)
        hub.bridges.add_connector(self.connector)
        await hub.bridges.ensure_bridge_rows()

    async def stop(self):
        self.controller.stop()

    def item(self, *, sender, name, text, msg_id, reply_to=None):
        msg = EmailMessage()
        msg["From"] = f"{name} <{sender}>"
        msg["To"] = f"acme@{self.domain}"
        msg["Subject"] = "Help"
        msg["Date"] = email.utils.formatdate()
        msg["Message-ID"] = f"<{msg_id}>"
        if reply_to:
            msg["In-Reply-To"] = f"<{reply_to}>"
            msg["References"] = f"<{reply_to}>"
        msg.set_content(text)
        return msg.as_bytes(policy=email.policy.SMTP)

    def received(self):
        with self.provider.lock:
            return [(m["Message-ID"].strip("<>"), m.get_body(("plain",)).get_content()) for m in self.provider.got]

    def refuse(self, who):
        self.provider.refuse.add(who)

    def address(self, who):
        return who


class WebhookNet(Net):
    name = "sms"

    async def start(self, hub):
        from hub.bridges import api as bridge_api
        from hub.bridges import webhook

        self.got: list[dict] = []
        self.refused: set[str] = set()
        self.counter = 0
        self.bad_signatures = 0

        async def receive(request):
            body = await request.read()
            if webhook.verify(self.secret, request.headers, body):
                self.bad_signatures += 1
                return web.json_response({"error": "bad signature"}, status=401)
            data = json.loads(body)
            if data["to"]["id"] in self.refused:
                return web.json_response({"error": "unknown number"}, status=400)
            self.counter += 1
            data["_remote_id"] = f"SM{self.counter}"
            self.got.append(data)
            return web.json_response({"id": data["_remote_id"]})

        app = web.Application()
        app.router.add_post("/messages", receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        created = await bridge_api.create_bridge(hub, self.name, kind="webhook", url=f"http://127.0.0.1:{port}/messages",
                                                 owner="acme", capabilities=[])
        self.secret = created["secret"]
        async with hub.db.read() as conn:
            from hub.store import bridges as bridge_store

            row = await bridge_store.get_bridge(conn, self.name)
        self.connector = hub.bridges.connector_for(row)

    async def stop(self):
        await self.runner.cleanup()

    def item(self, *, sender, name, text, msg_id, reply_to=None):
        data = {"id": msg_id, "from": {"id": sender, "name": name}, "text": text}
        if reply_to:
            data["in_reply_to"] = reply_to
        return json.dumps(data).encode()

    def received(self):
        return [(d["_remote_id"], d["text"]) for d in self.got]

    def refuse(self, who):
        self.refused.add(who)


async def _exists(hub, username):
    from hub.store import actors as actor_store

    async with hub.db.read() as conn:
        return await actor_store.get_local_actor(conn, username) is not None


def sender_of(kind: str, n: int = 1) -> str:
    return {"memory": f"user{n}", "email": f"carol{n}@customer.test", "webhook": f"+49151000000{n}"}[kind]


@pytest.fixture(params=KINDS)
async def net(request, served_hub):
    hub = served_hub
    if not await _exists(hub, "acme"):
        await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    n = {"memory": MemoryNet, "email": EmailNet, "webhook": WebhookNet}[request.param]()
    n.kind = request.param
    await n.start(hub)
    yield n
    await n.stop()


class Recorder:
    def __init__(self):
        self.states: list[State] = []
        self.items: list[bytes] = []

    async def submit(self, raw, *, sender, recipients):
        self.items.append(raw)
        return str(len(self.items))

    async def report_state(self, state, detail=None):
        self.states.append(state)

    async def accepts_recipient(self, username):
        return username == "acme"


# --- the connector alone --------------------------------------------------------------------------------


async def test_capabilities_are_declared(net):
    assert isinstance(net.connector.capabilities, Capabilities)
    assert set(net.connector.capabilities.as_dict()) == {"edits", "deletes", "reactions", "attachments", "threading",
                                                         "direct_messages", "read_receipts"}


async def test_receive_makes_an_envelope_of_the_networks_item(net):
    raw = net.item(sender=sender_of(net.kind), name="Carol", text="My kettle is broken", msg_id="m-1@customer.test")
    env = await net.connector.receive(raw, sender=sender_of(net.kind), recipients=[f"acme@{net.connector.cfg.mail_domain}"]
                                      if net.kind == "email" else ["acme"])
    assert isinstance(env, Envelope)
    assert env.network == net.connector.name
    assert env.sender.remote_id == sender_of(net.kind) and env.sender.display_name == "Carol"
    assert env.text.strip() == "My kettle is broken"
    assert env.remote_id == "m-1@customer.test"
    assert env.recipients == ["acme"]


async def test_a_reply_names_what_it_answers(net):
    raw = net.item(sender=sender_of(net.kind), name="Carol", text="again", msg_id="m-2@customer.test",
                   reply_to="m-1@customer.test")
    env = await net.connector.receive(raw, sender=sender_of(net.kind), recipients=[])
    assert "m-1@customer.test" in env.reply_to


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe not anything", b"{\"id\": 1}", b"[]"])
async def test_garbage_is_rejected_never_raised(net, garbage):
    result = await net.connector.receive(garbage, sender=None, recipients=[])
    assert isinstance(result, Rejected) and result.reason


async def test_start_and_stop_report_their_state(net):
    link = Recorder()
    await net.connector.start(link)
    assert net.connector.state()[0] == State.CONNECTED
    await net.connector.stop()
    assert net.connector.state()[0] == State.STOPPED
    assert link.states[-1] == State.STOPPED


# --- the hub around it ------------------------------------------------------------------------------------


async def inbound(hub, net, raw, sender):
    await hub.bridges.submit(net.connector.name, raw, sender=sender,
                             recipients=[f"acme@{hub.cfg.mail_domain}"] if net.kind == "email" else ["acme"])
    await hub.runner.drain()


async def acme_inbox(hub):
    acting = await access.acting_as(hub, "acme")
    items, _ = await state.list_conversations(hub, acting)
    return acting, items


async def test_a_message_from_the_network_becomes_a_conversation_and_the_answer_goes_back(served_hub, net):
    hub = served_hub
    who = sender_of(net.kind)
    await inbound(hub, net, net.item(sender=who, name="Carol", text="Where is my order?", msg_id="q-1@customer.test"), who)
    acting, items = await acme_inbox(hub)
    assert len(items) == 1
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    view = await state.show(hub, acting, conversation)
    (m,) = view["messages"]
    assert m["network"] == net.connector.name and m["author_name"] == "Carol" and "Where is my order?" in m["text"]
    assert view["conversation"]["owner"] == m["author"]  # the bridged customer owns it

    marker = "PRIVATE-NOTE-7f3a"
    await state.update(hub, acting, conversation, note=f"{marker}: VIP, refund at once")
    await conversations.reply(hub, acting, conversation, "It left our warehouse today.")
    await hub.runner.drain()
    got = net.received()
    assert len(got) == 1 and "It left our warehouse today." in got[0][1]
    assert all(marker not in text for _rid, text in got)  # private notes never leave

    # what the network said the message is called lets a reply find the conversation
    remote_id = got[0][0]
    await inbound(hub, net, net.item(sender=who, name="Carol", text="Thanks!", msg_id="q-2@customer.test",
                                     reply_to=remote_id), who)
    _acting, items = await acme_inbox(hub)
    assert len(items) == 1
    view = await state.show(hub, acting, conversation)
    assert [x["text"].strip() for x in view["messages"]][-1] == "Thanks!"
    delivery = next(x for x in view["messages"] if "warehouse" in x["text"])["delivery"]
    assert [d["state"] for d in delivery if d.get("network")] == ["sent"]

    # the same item twice is placed once; our own message coming back is dropped
    await inbound(hub, net, net.item(sender=who, name="Carol", text="Thanks!", msg_id="q-2@customer.test",
                                     reply_to=remote_id), who)
    assert len((await state.show(hub, acting, conversation))["messages"]) == 3
    async with hub.db.read() as conn:
        from hub.store import bridges as bridge_store

        items = await bridge_store.list_items(conn, bridge=net.connector.name)
    assert sorted(i.status for i in items) == ["dropped", "placed", "placed"]
    assert "duplicate" in next(i for i in items if i.status == "dropped").flags


async def test_a_second_person_never_joins_the_first_ones_conversation(served_hub, net):
    hub = served_hub
    one, two = sender_of(net.kind, 1), sender_of(net.kind, 2)
    await inbound(hub, net, net.item(sender=one, name="One", text="first", msg_id="a-1@customer.test"), one)
    acting, items = await acme_inbox(hub)
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    await conversations.reply(hub, acting, conversation, "Hello One")
    await hub.runner.drain()
    remote_id = net.received()[0][0]
    # the other person answers the same message (a forwarded bulk mail, a shared phone)
    await inbound(hub, net, net.item(sender=two, name="Two", text="me too", msg_id="b-1@customer.test",
                                     reply_to=remote_id), two)
    _acting, items = await acme_inbox(hub)
    assert len(items) == 2


async def test_edits_and_deletions_travel_or_degrade_visibly(served_hub, net):
    hub = served_hub
    who = sender_of(net.kind)
    await inbound(hub, net, net.item(sender=who, name="Carol", text="hi", msg_id="e-1@customer.test"), who)
    acting, items = await acme_inbox(hub)
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    message = await conversations.reply(hub, acting, conversation, "The price is 10 EUR.")
    await hub.runner.drain()
    async with hub.db.read() as conn:
        message = await msg_store.get_message_by_id(conn, message.id)
    await outbox.edit_note(hub, acting.actor, message, "The price is 12 EUR.")
    await hub.runner.drain()
    caps = net.connector.capabilities
    got = net.received()
    assert len(got) == 2 and "12 EUR" in got[1][1]
    if caps.edits:
        assert got[1][0] == got[0][0]  # changed in place
    else:
        assert "Correction" in got[1][1] and got[1][0] != got[0][0]  # a new message, marked
    await outbox.delete_note(hub, acting.actor, message)
    await hub.runner.drain()
    got = net.received()
    assert len(got) == 3
    if not caps.deletes:
        assert "withdrawn" in got[2][1]


async def test_a_permanent_refusal_fails_the_send_for_good_and_shows(served_hub, net):
    hub = served_hub
    who = sender_of(net.kind)
    await inbound(hub, net, net.item(sender=who, name="Carol", text="hi", msg_id="r-1@customer.test"), who)
    acting, items = await acme_inbox(hub)
    conversation = await conversations.get_conversation(hub, items[0]["id"])
    net.refuse(net.address(who))
    message = await conversations.reply(hub, acting, conversation, "Hello?")
    await hub.runner.drain(raise_errors=False)
    view = await state.show(hub, acting, conversation)
    (delivery,) = [d for m in view["messages"] if m["uri"] == message.uri for d in m["delivery"] if d.get("network")]
    assert delivery["state"] == "failed-permanent" and delivery["last_error"]
    assert net.received() == []


async def test_a_send_error_is_the_only_failure_a_connector_raises(net):
    from hub.bridges.base import Outbound

    out = Outbound(network=net.connector.name, txn_id="t1", to=sender_of(net.kind), to_name=None, from_username="acme",
                   from_name="Acme", text="x", html="<p>x</p>", subject=None)
    net.refuse(net.address(sender_of(net.kind)))
    with pytest.raises(SendError) as info:
        await net.connector.send(out)
    assert info.value.permanent
