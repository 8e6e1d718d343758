"""The inbox's working tools over real HTTP: files in a reply, bulk actions,
canned responses in the reply box, a conversation made public by its owner
and read without an account, and static files cached the right way."""

from __future__ import annotations

import re

import aiohttp

from hub import actors
from hub.inbox import access, state
from tests.integration.test_web_accounts import CSRF, Browser
from tests.integration.test_web_inbox import signed_in


async def _setup(hub):
    await actors.create_local_actor(hub, "alice", kind="person", name="Alice", password="alice-secret")
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme", password="acme-owner-1")
    await actors.create_local_actor(hub, "dana", kind="person", name="Dana", password="dana-secret-1")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    return (await signed_in(hub, "alice", "alice-secret"), await signed_in(hub, "acme", "acme-owner-1"),
            await signed_in(hub, "dana", "dana-secret-1"))


async def _start(hub, alice, subject, text="Hello"):
    _s, _h, resp = await alice.post("/inbox/alice/new", {"to": f"@acme@{hub.cfg.domain}", "subject": subject,
                                                         "text": text}, csrf_from="/inbox/alice/new")
    await hub.runner.drain()
    return resp.headers["Location"].rsplit("/", 1)[1]


async def _multipart(b: Browser, path: str, fields: dict, files: list[tuple[str, str, bytes]], *, csrf=True):
    form = aiohttp.FormData()
    if csrf:
        _status, html, _r = await b.get(path)
        form.add_field("csrf_token", CSRF.search(html).group(1))
    for k, v in fields.items():
        form.add_field(k, v)
    for name, ctype, data in files:
        form.add_field("files", data, filename=name, content_type=ctype)
    async with b.session.post(b.base + path, data=form, allow_redirects=False) as resp:
        return resp.status, await resp.text(), resp


async def test_a_reply_carries_files_to_the_page_the_media_url_and_the_note(served_hub):
    hub = served_hub
    alice, acme, dana = await _setup(hub)
    try:
        conv_id = await _start(hub, alice, "Receipt")
        page = f"/inbox/acme/{conv_id}"
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
        status, html, _ = await _multipart(dana, page, {"action": "reply", "text": "Your receipt and a photo."},
                                           [("receipt.pdf", "application/pdf", b"%PDF-1.4 receipt"),
                                            ("kettle.png", "image/png", png)])
        assert status == 303, html
        await hub.runner.drain()
        status, html, _ = await alice.get("/home")  # the answer is unread: in the title, with whom
        assert "<title>(1) Home" in html and f"with acme@{hub.cfg.domain}" in html
        status, html, _ = await alice.get(f"/inbox/alice/{conv_id}")
        assert "Your receipt and a photo." in html and "receipt.pdf" in html and "kettle.png" in html
        url = re.search(r'href="(http[^"]+/media/[0-9a-z]{26}/receipt\.pdf)"', html).group(1)
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            assert r.status == 200 and await r.read() == b"%PDF-1.4 receipt"
            assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
        # the note other servers read names both files
        from hub.federation import render
        from hub.store import bridges as bridge_store
        from hub.store import conversations as conv_store

        async with hub.db.read() as conn:
            last = (await conv_store.list_messages(conn, conv_id))[-1]
            files = (await bridge_store.attachments_of(conn, [last.id]))[last.id]
        note = render.note_to_json(hub, last, author_uri="x", context_uri=None, mentioned=[], attachments=files)
        assert [(a["type"], a["mediaType"], a["name"]) for a in note["attachment"]] == [
            ("Document", "application/pdf", "receipt.pdf"), ("Image", "image/png", "kettle.png")]
        assert all(a["url"].startswith(hub.cfg.base_url + "/media/") for a in note["attachment"])

        # a file alone is a message; a file too large is refused and nothing is written
        status, _h, _r = await _multipart(dana, page, {"action": "reply", "text": ""}, [("only.txt", "text/plain", b"hi")])
        assert status == 303
        big = b"x" * (hub.cfg.max_attachment_bytes + 1)
        status, html, _ = await _multipart(dana, page, {"action": "reply", "text": "too big"}, [("big.bin", "application/octet-stream", big)])
        assert status == 413 and "too large" in html
        status, html, _ = await _multipart(dana, page, {"action": "reply", "text": "forged"}, [("f.txt", "text/plain", b"x")],
                                           csrf=False)
        assert status == 403
        async with hub.db.read() as conn:
            texts = [m.content_text for m in await conv_store.list_messages(conn, conv_id)]
        assert texts[-1].startswith("📎 only.txt") and not any("too big" in t or "forged" in t for t in texts)
    finally:
        for b in (alice, acme, dana):
            await b.close()


async def test_bulk_actions_change_only_the_conversations_ticked(served_hub):
    hub = served_hub
    alice, acme, dana = await _setup(hub)
    try:
        ids = [await _start(hub, alice, f"Question {i}") for i in range(3)]
        status, html, _ = await dana.get("/inbox/acme")
        token = CSRF.search(html).group(1)
        assert all(f'value="{i}"' in html for i in ids) and 'action="/inbox/acme/bulk"' in html

        async def bulk(fields, picked):
            data = aiohttp.FormData()
            for k, v in {"csrf_token": token, **fields}.items():
                data.add_field(k, v)
            for i in picked:
                data.add_field("ids", i)
            async with dana.session.post(dana.base + "/inbox/acme/bulk", data=data, allow_redirects=False) as r:
                return r.status, await r.text(), r

        status, _h, resp = await bulk({"bulk": "resolved", "back": "/inbox/acme?status=open"}, ids[:2])
        assert status == 303 and resp.headers["Location"] == "/inbox/acme?status=open&done=2"
        status, html, _ = await bulk({"bulk": "assign", "bulk_assign": "dana"}, ids[1:])
        assert status == 303
        status, html, _ = await bulk({"bulk": "label", "bulk_label": "billing"}, [ids[0], ids[2]])
        assert status == 303
        acting = await access.acting_as(hub, "acme", "dana")
        from hub.inbox import conversations

        got = {}
        for i in ids:
            item = await state.item(hub, acting, await conversations.get_conversation(hub, i))
            got[i] = (item["status"], item["assignee"], item["labels"])
        assert got == {ids[0]: ("resolved", None, ["billing"]), ids[1]: ("resolved", "dana", []),
                       ids[2]: ("open", "dana", ["billing"])}
        status, html, _ = await dana.get("/inbox/acme?done=2")
        assert "2 conversations changed." in html
        # nothing ticked, or a conversation that is not Acme's: said, nothing else changes
        status, html, _ = await bulk({"bulk": "resolved"}, [])
        assert status == 400 and "Tick one or more" in html
        status, html, _ = await bulk({"bulk": "resolved"}, [ids[2], "0" * 26])
        assert status == 400 and "1 changed; 1 not" in html
        status, _h, _r = await bulk({"bulk": "resolved", "csrf_token": "forged"}, ids)
        assert status == 403
    finally:
        for b in (alice, acme, dana):
            await b.close()


async def test_a_canned_response_fills_the_reply_box_with_its_placeholders(served_hub):
    hub = served_hub
    alice, acme, dana = await _setup(hub)
    try:
        await state.save_canned(hub, await access.acting_as(hub, "acme"), "thanks", "Thank you, {customer_name}! — {member_name}")
        conv_id = await _start(hub, alice, "Thanks?")
        page = f"/inbox/acme/{conv_id}"
        status, html, _ = await dana.get(page)
        assert '<option value="thanks">' in html
        status, html, _ = await dana.post(page, {"action": "canned", "canned": "thanks", "text": "Hi Alice,"}, csrf_from=page)
        assert status == 200
        box = re.search(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', html, re.S).group(1)
        assert box == "Hi Alice,\n\nThank you, Alice! — dana"
        status, html, _ = await dana.post(page, {"action": "canned", "canned": "nope", "text": "kept"}, csrf_from=page)
        assert status == 404 and "no canned response" in html and ">kept</textarea>" in html
    finally:
        for b in (alice, acme, dana):
            await b.close()


async def test_the_owner_makes_a_conversation_public_and_anyone_reads_it_without_notes(served_hub):
    hub = served_hub
    alice, acme, dana = await _setup(hub)
    anon = Browser(hub.cfg.base_url)
    try:
        conv_id = await _start(hub, alice, "Kettle manual", "Where is the manual?")
        org_page = f"/inbox/acme/{conv_id}"
        await dana.post(org_page, {"action": "reply", "text": "Here: page 4."}, csrf_from=org_page)
        await dana.post(org_page, {"action": "note", "text": "SECRET-NOTE-7"}, csrf_from=org_page)
        await hub.runner.drain()
        public = f"/c/{conv_id}"
        status, html, _ = await anon.get(public)
        assert status == 404 and "Where is the manual?" not in html
        status, html, _ = await anon.get("/")
        assert "Kettle manual" not in html
        # a participant signed in is sent to their own page of it
        async with alice.session.get(alice.base + public, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == f"/inbox/alice/{conv_id}"
        # only the owner may publish it: Acme takes part but does not own it
        status, html, _ = await acme.post(org_page, {"action": "public"}, csrf_from=org_page)
        assert status == 403 and "owner" in html
        status, html, _ = await alice.get(f"/inbox/alice/{conv_id}")
        assert "Make it public" in html
        status, _h, _r = await alice.post(f"/inbox/alice/{conv_id}", {"action": "public"}, csrf_from=f"/inbox/alice/{conv_id}")
        assert status == 303

        status, html, resp = await anon.get(public)
        assert status == 200 and "Where is the manual?" in html and "Here: page 4." in html
        assert "SECRET-NOTE-7" not in html and 'class="message h-entry"' in html and "p-author h-card" in html
        assert 'type="application/activity+json"' in resp.headers["Link"]
        status, html, _ = await anon.get("/")
        assert "Kettle manual" in html and "Public conversations" in html
        # its container, for any server now
        async with anon.session.get(hub.cfg.base_url + public + "?page=1",
                                    headers={"Accept": "application/activity+json"}) as r:
            assert r.status == 200 and len((await r.json())["orderedItems"]) == 2
        # and private again
        await alice.post(f"/inbox/alice/{conv_id}", {"action": "private"}, csrf_from=f"/inbox/alice/{conv_id}")
        assert (await anon.get(public))[0] == 404
    finally:
        for b in (alice, acme, dana, anon):
            await b.close()


async def test_static_files_are_versioned_and_cached_for_a_year(served_hub):
    hub = served_hub
    async with aiohttp.ClientSession() as s:
        async with s.get(hub.cfg.base_url + "/") as r:
            html = await r.text()
        css = re.search(r'href="(/static/style\.css\?v=[0-9a-f]{12})"', html).group(1)
        assert re.search(r'src="/static/keys\.js\?v=[0-9a-f]{12}"', html)
        async with s.get(hub.cfg.base_url + css) as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            etag = r.headers["ETag"]
        async with s.get(hub.cfg.base_url + "/static/style.css?v=old") as r:
            assert r.headers["Cache-Control"] == "public, no-cache"  # an old page's URL: revalidated
        async with s.get(hub.cfg.base_url + "/static/style.css", headers={"If-None-Match": etag}) as r:
            assert r.status == 304
        async with s.get(hub.cfg.base_url + "/static/../hub/config.py") as r:
            assert r.status == 404
