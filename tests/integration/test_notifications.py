"""Members' notification mails, through a real SMTP relay (aiosmtpd on a
loopback port, as in the password-reset test): who is mailed of a new
conversation, a new message and an assignment, who never is (the author, a
member who did not ask), that a private note never reaches a mail, that a job
run again or an event placed again mails nobody twice, the relay's transient
and permanent failures, and the settings page and API where members choose."""

from __future__ import annotations

import asyncio
import dataclasses
import email as email_lib
import email.policy
import re
import threading

import pytest
import sqlalchemy as sa

from hub import actors, notify
from hub.inbox import access, conversations, state
from hub.store import messages as msg_store
from hub.store.base import utcnow
from hub.store.schema import jobs
from tests.helpers import free_port, post_signed
from tests.integration.test_inbox import note_activity
from tests.integration.test_inbox_api import Api, token_for
from tests.integration.test_web_accounts import CSRF, Browser

NOTE = "PRIVATE-note-7731 the customer is difficult"


class Relay:
    """An SMTP relay on a loopback port that keeps what it accepts;
    ``answers[recipient]`` are replies it gives to DATA for that recipient
    first (``"451 ..."``), one per message, before it takes one."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.got: list[tuple[list[str], email_lib.message.EmailMessage]] = []
        self.answers: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                if self.answers.get(rcpt):
                    return self.answers[rcpt].pop(0)
            self.got.append((list(envelope.rcpt_tos),
                             email_lib.message_from_bytes(envelope.original_content, policy=email.policy.default)))
        return "250 OK"

    def mails(self, to: str | None = None) -> list[email_lib.message.EmailMessage]:
        with self.lock:
            return [m for rcpts, m in self.got if to is None or to in rcpts]

    def texts(self) -> list[str]:
        return [str(m["Subject"]) + "\n" + m.get_body(("plain",)).get_content() for m in self.mails()]


@pytest.fixture
async def relay():
    r = Relay()
    r.controller.start()
    yield r
    r.controller.stop()


@pytest.fixture
async def mail_hub(served_hub, relay):
    """The served hub sending through the relay (its email bridge's connector too)."""
    from hub.bridges.email import EmailConnector

    served_hub.cfg = dataclasses.replace(served_hub.cfg, smtp_relay=f"127.0.0.1:{relay.controller.port}")
    served_hub.bridges.add_connector(EmailConnector(served_hub.cfg))
    return served_hub


async def people(hub):
    """acme (an organization; its own login has no address) with agents dana
    and eve; alice, a customer."""
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    for name in ("dana", "eve", "alice"):
        await actors.create_local_actor(hub, name, kind="person", name=name.capitalize(),
                                        email=f"{name}@example.com", password=f"{name}-secret-1")
    owner = await access.acting_as(hub, "acme")
    for name in ("dana", "eve"):
        await access.add_member(hub, owner, name, role="agent")
    async with hub.db.read() as conn:
        from hub.store import actors as actor_store

        rows = {n: await actor_store.get_local_actor(conn, n) for n in ("acme", "alice")}
        accounts = {n: await actor_store.get_account_by_username(conn, n) for n in ("dana", "eve", "alice")}
    return rows, accounts


async def choose(hub, account, actor, **values):
    assert await notify.set_choices(hub, account.id, actor.id, values)


async def notify_jobs(hub) -> list[sa.Row]:
    async with hub.db.read() as conn:
        return list((await conn.execute(sa.select(jobs).where(jobs.c.kind == "mail.notify"))).all())


def body(mail) -> str:
    return mail.get_body(("plain",)).get_content()


async def test_members_who_asked_are_mailed_new_conversations_and_messages_and_nobody_else(mail_hub, relay):
    hub = mail_hub
    rows, acc = await people(hub)
    await choose(hub, acc["dana"], rows["acme"], conversations=True, messages=True)
    # eve keeps the defaults (assignments only); alice, a customer, is mailed new messages by default
    choices = {r["actor"]: r for r in await notify.list_choices(hub, acc["alice"].id)}
    assert choices["alice"]["messages"] and not choices["alice"]["conversations"]

    alice = await access.acting_as(hub, "alice")
    conversation, _first = await conversations.start(hub, alice, [rows["acme"]], "My kettle does not heat at all.",
                                                     subject="Broken kettle")
    await hub.runner.drain()
    (mail,) = relay.mails()
    assert mail["To"] == "dana@example.com" and mail["Auto-Submitted"] == "auto-generated"
    assert mail["Subject"] == "New conversation for @acme: Broken kettle"
    text = body(mail)
    assert f"Alice (@alice@{hub.cfg.domain}) started a conversation with @acme" in text
    assert "My kettle does not heat at all." in text and "ActivityPub" in text
    link = f"{hub.cfg.base_url}/inbox/acme/{conversation.id}"
    assert link in text
    dana = Browser(hub.cfg.base_url)
    try:
        await dana.post("/login", {"login": "dana", "password": "dana-secret-1"}, csrf_from="/login")
        status, html, _ = await dana.get(link.removeprefix(hub.cfg.base_url))  # the link opens the conversation
        assert status == 200 and "My kettle does not heat at all." in html
    finally:
        await dana.close()

    # dana answers for acme, with a private note first: alice is mailed, dana (the author) is not
    dana_acting = await access.acting_as(hub, "acme", "dana")
    await state.update(hub, dana_acting, conversation, note=NOTE)
    await conversations.reply(hub, dana_acting, conversation, "A new one is on its way.")
    await hub.runner.drain()
    assert [m["To"] for m in relay.mails()] == ["dana@example.com", "alice@example.com"]
    to_alice = relay.mails("alice@example.com")[0]
    assert to_alice["Subject"] == "New message in “Broken kettle” (@alice)"
    assert "A new one is on its way." in body(to_alice) and f"{hub.cfg.base_url}/inbox/alice/" in body(to_alice)

    # alice answers: dana asked for messages, eve did not
    await conversations.reply(hub, alice, conversation, "Thank you!")
    await hub.runner.drain()
    assert len(relay.mails("dana@example.com")) == 2 and relay.mails("eve@example.com") == []
    assert "Thank you!" in body(relay.mails("dana@example.com")[1])
    assert all(NOTE not in t and "PRIVATE-note" not in t for t in relay.texts())


async def test_the_author_of_a_message_is_never_mailed_of_it_even_as_a_member_of_the_other_side(mail_hub, relay):
    hub = mail_hub
    rows, acc = await people(hub)
    # dana works for acme and is also a member of alice's household, mailed of its messages
    await access.add_member(hub, await access.acting_as(hub, "alice"), "dana", role="agent")
    await choose(hub, acc["dana"], rows["alice"], messages=True)
    await choose(hub, acc["dana"], rows["acme"], messages=True, conversations=True)
    await choose(hub, acc["eve"], rows["acme"], messages=True)
    conversation, _ = await conversations.start(hub, await access.acting_as(hub, "alice"), [rows["acme"]], "Hello")
    await hub.runner.drain()
    assert [m["To"] for m in relay.mails()] == ["dana@example.com"]  # a new conversation of acme's
    await conversations.reply(hub, await access.acting_as(hub, "acme", "dana"), conversation, "Dana here")
    await hub.runner.drain()
    # alice's household hears of acme's answer: alice yes, dana (who wrote it) no
    assert [m["To"] for m in relay.mails()] == ["dana@example.com", "alice@example.com"]
    await conversations.reply(hub, await access.acting_as(hub, "acme", "eve"), conversation, "Eve here")
    await hub.runner.drain()
    # eve's answer reaches alice and dana (for alice's household), never eve
    assert sorted(m["To"] for m in relay.mails()[2:]) == ["alice@example.com", "dana@example.com"]
    assert relay.mails("eve@example.com") == []


async def test_a_conversation_from_a_remote_server_is_mailed(mail_hub, relay, remote, session):
    hub = mail_hub
    rows, acc = await people(hub)
    await choose(hub, acc["eve"], rows["acme"], conversations=True)
    zoe = remote.add_actor("zoe")
    activity = note_activity(zoe, to=[rows["acme"].uri], text="Is the shop open on Sunday?")
    status, _ = await post_signed(session, hub.uris.inbox("acme"), activity, zoe)
    assert status == 202
    await hub.runner.drain()
    (mail,) = relay.mails()
    assert mail["To"] == "eve@example.com"
    assert mail["Subject"] == "New conversation for @acme: Is the shop open on Sunday?"  # its first words
    assert f"@zoe@{remote.host}" in body(mail) and "the fediverse (ActivityPub)" in body(mail)
    assert "Is the shop open on Sunday?" in body(mail)


async def test_an_assignment_mails_the_assignee_without_the_note_written_with_it(mail_hub, relay):
    hub = mail_hub
    rows, acc = await people(hub)
    conversation, _ = await conversations.start(hub, await access.acting_as(hub, "alice"), [rows["acme"]],
                                                "The lid is cracked.", subject="Cracked lid")
    await hub.runner.drain()
    assert relay.mails() == []  # nobody at acme asked for new conversations
    eve = await access.acting_as(hub, "acme", "eve")
    await state.update(hub, eve, conversation, assign="dana", note=NOTE)
    await hub.runner.drain()
    (mail,) = relay.mails()
    assert mail["To"] == "dana@example.com" and mail["Subject"] == "Assigned to you: “Cracked lid” (@acme)"
    assert "eve assigned you the conversation “Cracked lid” of @acme" in body(mail)
    assert "The lid is cracked." in body(mail)  # the last message, never the note
    assert f"{hub.cfg.base_url}/inbox/acme/{conversation.id}" in body(mail)
    # taking a conversation oneself mails nobody; nor does assigning it again to the same member
    await state.update(hub, eve, conversation, assign="eve")
    await state.update(hub, await access.acting_as(hub, "acme", "dana"), conversation, assign="dana")
    await hub.runner.drain()
    assert len(relay.mails()) == 1
    # a member who chose not to be told is not
    await choose(hub, acc["eve"], rows["acme"], assignments=False)
    await state.update(hub, await access.acting_as(hub, "acme", "dana"), conversation, assign="eve")
    await hub.runner.drain()
    assert len(relay.mails()) == 1
    assert all(NOTE not in t for t in relay.texts())


async def test_a_job_run_again_or_a_message_placed_again_mails_once(mail_hub, relay):
    hub = mail_hub
    rows, acc = await people(hub)
    await choose(hub, acc["dana"], rows["acme"], conversations=True)
    conversation, message = await conversations.start(hub, await access.acting_as(hub, "alice"), [rows["acme"]],
                                                      "Once only, please.")
    await hub.runner.drain()
    assert len(relay.mails()) == 1
    (job,) = await notify_jobs(hub)
    assert job.state == "done" and job.payload["sent_at"] and job.dedupe_key.endswith(f"{message.id}:{acc['dana'].id}")
    # the worker died after the relay took the mail: its lease lapses and the job runs again
    async with hub.db.write() as conn:
        await conn.execute(sa.update(jobs).where(jobs.c.id == job.id).values(state="running", locked_until=utcnow()))
    await asyncio.sleep(0.01)
    assert await hub.runner.drain() == 1
    # the same message placed again queues nothing new
    async with hub.db.write() as conn:
        conversation = await msg_store.get_conversation_by_id(conn, conversation.id)
        message = await msg_store.get_message_by_id(conn, message.id)
        await conversations.place_message(conn, hub, conversation, message)
    await hub.runner.drain()
    assert len(await notify_jobs(hub)) == 1 and len(relay.mails()) == 1
    assert relay.mails()[0]["Message-ID"] == f"<notify.{job.id}@{hub.cfg.mail_domain}>"


async def test_the_relay_refusing_for_now_is_retried_and_refusing_for_good_ends_the_job(mail_hub, relay):
    hub = mail_hub
    rows, acc = await people(hub)
    await choose(hub, acc["dana"], rows["acme"], conversations=True)
    await choose(hub, acc["eve"], rows["acme"], conversations=True)
    relay.answers = {"dana@example.com": ["451 4.3.0 try again later"], "eve@example.com": ["550 5.1.1 no such mailbox"]}
    await conversations.start(hub, await access.acting_as(hub, "alice"), [rows["acme"]], "Anyone there?")
    await hub.runner.drain(raise_errors=False)
    assert relay.mails() == []
    by_to = {j.payload["account_id"]: j for j in await notify_jobs(hub)}
    assert by_to[acc["dana"].id].state == "queued" and "451" in by_to[acc["dana"].id].last_error
    assert by_to[acc["eve"].id].state == "failed" and "550" in by_to[acc["eve"].id].last_error
    await asyncio.sleep(0.3)  # the first wait of the test schedule
    await hub.runner.drain()
    assert [m["To"] for m in relay.mails()] == ["dana@example.com"]


async def test_without_a_relay_nothing_is_queued_and_the_page_says_mail_is_off(served_hub):
    hub = served_hub
    assert not hub.cfg.smtp_relay
    rows, acc = await people(hub)
    await choose(hub, acc["dana"], rows["acme"], conversations=True, messages=True)
    await conversations.start(hub, await access.acting_as(hub, "alice"), [rows["acme"]], "Hello?")
    assert await notify_jobs(hub) == []
    browser = Browser(hub.cfg.base_url)
    try:
        await browser.post("/login", {"login": "dana", "password": "dana-secret-1"}, csrf_from="/login")
        status, html, _ = await browser.get("/settings/notifications")
        assert status == 200 and "This server sends no mail" in html
    finally:
        await browser.close()


async def test_the_settings_page_saves_each_actors_choices_behind_csrf(mail_hub, relay):
    hub = mail_hub
    rows, acc = await people(hub)
    browser = Browser(hub.cfg.base_url)
    try:
        status, _html, resp = await browser.get("/settings/notifications")
        assert resp.url.path == "/login"  # signed out: sent to sign in
        await browser.post("/login", {"login": "dana", "password": "dana-secret-1"}, csrf_from="/login")
        status, html, _ = await browser.get("/home")
        assert 'href="/settings/notifications"' in html  # reachable from every page's account menu
        status, html, _ = await browser.get("/settings/notifications")
        assert status == 200 and "dana@example.com" in html
        # one group per actor dana speaks for, each box with its own label
        assert "Inbox of @acme" in html and "@dana" in html
        for actor in ("acme", "dana"):
            for choice in ("conversations", "messages", "assignments"):
                assert f'<label class="check" for="n-{actor}-{choice}">' in html
                assert f'id="n-{actor}-{choice}" name="{actor}:{choice}"' in html
        form = {"shown:acme": "1", "shown:dana": "1", "acme:conversations": "on", "acme:messages": "on"}
        status, _h, _r = await browser.post("/settings/notifications", form)  # no token
        assert status == 403
        status, _h, _r = await browser.post("/settings/notifications", {**form, "csrf_token": "forged"})
        assert status == 403
        assert {r["actor"]: r["conversations"] for r in await notify.list_choices(hub, acc["dana"].id)} == {
            "acme": False, "dana": False}
        status, html, _ = await browser.post("/settings/notifications", form, csrf_from="/settings/notifications")
        assert status == 200 and "Your choices are saved." in html
        saved = {r["actor"]: r for r in await notify.list_choices(hub, acc["dana"].id)}
        assert (saved["acme"]["conversations"], saved["acme"]["messages"], saved["acme"]["assignments"]) == (
            True, True, False)  # an unticked box is a no
        assert (saved["dana"]["conversations"], saved["dana"]["messages"], saved["dana"]["assignments"]) == (
            False, False, False)
        assert re.search(r'name="acme:conversations"\s+checked', html)
        assert not re.search(r'name="acme:assignments"\s+checked', html)
        # and the choice is what the mail follows
        await conversations.start(hub, await access.acting_as(hub, "alice"), [rows["acme"]], "Saved?")
        await hub.runner.drain()
        assert [m["To"] for m in relay.mails()] == ["dana@example.com"]
        # an actor the form did not show keeps its choices
        token = CSRF.search((await browser.get("/settings/notifications"))[1]).group(1)
        await browser.post("/settings/notifications", {"csrf_token": token, "shown:dana": "1", "dana:messages": "on"})
        saved = {r["actor"]: r for r in await notify.list_choices(hub, acc["dana"].id)}
        assert saved["acme"]["conversations"] and saved["dana"]["messages"]
    finally:
        await browser.close()


async def test_the_api_reads_and_changes_the_logins_choices_for_an_actor(mail_hub, session):
    hub = mail_hub
    rows, acc = await people(hub)
    api = Api(hub, session, await token_for(hub, "dana"))
    status, data = await api.call("GET", "/actors/acme/notifications")
    assert status == 200 and data == {"conversations": False, "messages": False, "assignments": True,
                                      "mail": True, "email": True}
    status, data = await api.call("PATCH", "/actors/acme/notifications", {"messages": True})
    assert status == 200 and data["messages"] and data["assignments"] and not data["conversations"]
    assert (await api.call("PATCH", "/actors/acme/notifications", {"messages": "yes"}))[0] == 400
    assert (await api.call("PATCH", "/actors/acme/notifications", {"everything": True}))[0] == 400
    assert (await api.call("GET", "/actors/alice/notifications"))[0] == 403  # not dana's to choose
