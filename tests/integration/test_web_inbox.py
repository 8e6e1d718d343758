"""The inbox and conversation pages over real HTTP, as two people's browsers use
them: a customer starts a conversation with an organization from a form, an
agent answers from the organization's inbox and writes a private note, the
customer sees the answer and never the note, and nobody reaches an inbox that
is not theirs. (The same pages in a real Chromium come with the rest of the web work.)"""

from __future__ import annotations

import re

from hub import actors
from hub.inbox import access
from tests.integration.test_web_accounts import Browser


async def signed_in(hub, username, password):
    b = Browser(hub.cfg.base_url)
    status, _h, _r = await b.post("/login", {"login": username, "password": password}, csrf_from="/login")
    assert status == 303
    return b


async def test_a_customer_and_an_agent_work_one_conversation_from_their_pages(served_hub):
    hub = served_hub
    await actors.create_local_actor(hub, "alice", kind="person", name="Alice", password="alice-secret")
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    await actors.create_local_actor(hub, "dana", kind="person", name="Dana", password="dana-secret-1")
    await actors.create_local_actor(hub, "eve", kind="person", name="Eve", password="eve-secret-1")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    alice, dana, eve = (await signed_in(hub, "alice", "alice-secret"), await signed_in(hub, "dana", "dana-secret-1"),
                        await signed_in(hub, "eve", "eve-secret-1"))
    try:
        status, html, resp = await alice.post("/inbox/alice/new", {
            "to": f"@acme@{hub.cfg.domain}", "subject": "Broken kettle", "text": "It does not heat."},
            csrf_from="/inbox/alice/new")
        assert status == 303
        alice_page = resp.headers["Location"]
        conv_id = alice_page.rsplit("/", 1)[1]
        await hub.runner.drain()

        status, html, _ = await dana.get("/inbox/acme")
        assert status == 200 and "Broken kettle" in html and "(1) Inbox of @acme" in html  # unread in the title
        status, html, _ = await dana.get(f"/inbox/acme/{conv_id}")
        assert status == 200 and "It does not heat." in html and "via activitypub" in html
        marker = "PRIVATE-web-note-42"
        for data in ({"action": "note", "text": f"{marker}: VIP"}, {"action": "reply", "text": "A new one is on its way."},
                     {"action": "state", "status": "pending", "assign": "dana", "labels": "shipping urgent"}):
            status, _h, _r = await dana.post(f"/inbox/acme/{conv_id}", data, csrf_from=f"/inbox/acme/{conv_id}")
            assert status == 303, _h
        await hub.runner.drain()
        status, html, _ = await dana.get(f"/inbox/acme/{conv_id}")
        assert marker in html and 'class="note-private"' in html
        assert re.search(r'<option value="pending"\s+selected', html) and "shipping urgent" in html
        assert "by dana" in html  # which member wrote the organization's reply
        status, html, _ = await dana.get("/inbox/acme?status=pending&assignee=dana&label=shipping")
        assert "Broken kettle" in html
        status, html, _ = await dana.get("/inbox/acme?status=resolved")
        assert "Broken kettle" not in html

        status, html, _ = await alice.get(alice_page)
        assert status == 200 and "A new one is on its way." in html
        assert marker not in html and "note-private" not in html  # the organization's note is not hers
        assert re.search(r'<option value="open"\s+selected', html)  # her own status, not Acme's

        # nobody reaches an inbox that is not theirs
        assert (await eve.get("/inbox/acme"))[0] == 403
        assert (await eve.get(f"/inbox/acme/{conv_id}"))[0] == 403
        assert (await alice.get("/inbox/acme"))[0] == 403
        assert (await eve.get(f"/inbox/eve/{conv_id}"))[0] == 404  # not a participant
        assert (await eve.get(f"/inbox/acme/{conv_id}/events"))[0] == 403  # nor its live events
        status, _h, _r = await eve.post(f"/inbox/acme/{conv_id}", {"action": "reply", "text": "hi", "csrf_token": "x"})
        assert status == 403
        # signed out: sent to sign in, and back afterwards
        anon = Browser(hub.cfg.base_url)
        try:
            async with anon.session.get(hub.cfg.base_url + "/inbox/acme", allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"].startswith("/login?next=")
        finally:
            await anon.close()
    finally:
        for b in (alice, dana, eve):
            await b.close()


async def test_starting_a_conversation_with_nobody_or_an_unknown_handle_says_why(served_hub):
    hub = served_hub
    await actors.create_local_actor(hub, "alice", kind="person", password="alice-secret")
    alice = await signed_in(hub, "alice", "alice-secret")
    try:
        status, html, _ = await alice.post("/inbox/alice/new", {"to": "", "text": "hello"}, csrf_from="/inbox/alice/new")
        assert status == 400 and "handle" in html
        status, html, _ = await alice.post("/inbox/alice/new", {"to": f"@nobody@{hub.cfg.domain}", "text": "hello"},
                                           csrf_from="/inbox/alice/new")
        assert status in (400, 404) and 'class="error"' in html and "hello" in html  # the text is kept
    finally:
        await alice.close()


async def test_the_settings_page_manages_members_signature_canned_responses_and_webhooks(served_hub):
    hub = served_hub
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme", password="acme-owner-1")
    await actors.create_local_actor(hub, "dana", kind="person", name="Dana", password="dana-secret-1")
    await actors.create_local_actor(hub, "finn", kind="person", name="Finn")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    owner, agent = await signed_in(hub, "acme", "acme-owner-1"), await signed_in(hub, "dana", "dana-secret-1")
    page = "/settings/actor/acme"
    try:
        status, html, _ = await agent.get(page)
        assert status == 200 and "dana" in html and "Add member" not in html and "Audit log" not in html
        status, html, _ = await agent.post(page, {"action": "add_member", "username": "finn", "role": "admin"},
                                           csrf_from=page)
        assert status == 403 and "admin" in html  # an agent cannot

        for data in ({"action": "add_member", "username": "finn", "role": "agent"},
                     {"action": "signature", "signature": "— {member_name}, {actor_name}"},
                     {"action": "canned", "name": "thanks", "text": "Thank you, {customer_name}!"},
                     {"action": "webhook", "url": "https://hooks.example/roundtable"}):
            status, html, _ = await owner.post(page, data, csrf_from=page)
            assert status == 200 and 'class="notice"' in html, html
        assert re.search(r'Secret: <code class="secret">[^<]{20,}</code>', html)  # shown once
        status, html, _ = await owner.get(page)
        assert "finn" in html and "{member_name}" in html and "Thank you, {customer_name}!" in html
        assert "https://hooks.example/roundtable" in html and 'class="secret"' not in html
        assert "member.add" in html or "add_member" in html  # the audit log saw it
        async with hub.db.read() as conn:
            from hub.store import actors as actor_store

            assert (await actor_store.get_local_actor(conn, "acme")).settings["agent_signature"].startswith("—")
        assert (await owner.post(page, {"action": "signature", "signature": "x", "csrf_token": "bad"}))[0] == 403
    finally:
        await owner.close()
        await agent.close()


async def test_snoozing_from_the_conversation_page(served_hub):
    hub = served_hub
    await actors.create_local_actor(hub, "alice", kind="person", password="alice-secret")
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme", password="acme-owner-1")
    alice = await signed_in(hub, "alice", "alice-secret")
    acme = await signed_in(hub, "acme", "acme-owner-1")
    try:
        _s, _h, resp = await alice.post("/inbox/alice/new", {"to": f"@acme@{hub.cfg.domain}", "text": "Hello"},
                                        csrf_from="/inbox/alice/new")
        conv_id = resp.headers["Location"].rsplit("/", 1)[1]
        await hub.runner.drain()
        page = f"/inbox/acme/{conv_id}"
        status, html, _ = await acme.post(page, {"action": "state", "status": "open", "snooze_until": "2099-01-02T09:30",
                                                 "labels": ""}, csrf_from=page)
        assert status == 303
        status, html, _ = await acme.get(page)
        assert "Snoozed until 2099-01-02 09:30 UTC" in html
        status, html, _ = await acme.get("/inbox/acme?status=snoozed")
        assert "Hello" in html
        status, html, _ = await acme.post(page, {"action": "state", "snooze_until": "tomorrow"}, csrf_from=page)
        assert status == 400 and "date and time" in html
    finally:
        await alice.close()
        await acme.close()
