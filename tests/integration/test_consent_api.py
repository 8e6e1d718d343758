"""Consent through the JSON API on one hub (customer and organization both
local: no network between the sides, the same rules): no grant, nothing; a
grant, exactly its items for its purposes; roles; OAuth scopes; the log;
revocation; receipts signed by the hub."""

from __future__ import annotations

import pytest

from hub import actors, consent
from hub.consent import verify_receipt
from hub.inbox import access
from tests.integration.test_inbox_api import Api, token_for


@pytest.fixture
async def world(served_hub, session):
    hub = served_hub
    for username, kind in (("acme", "organization"), ("kim", "person"), ("ada", "person"), ("dana", "person")):
        await actors.create_local_actor(hub, username, kind=kind, name=username.capitalize(), password="password123")
    owner = await access.acting_as(hub, "acme")
    await access.add_member(hub, owner, "ada", role="admin")
    await access.add_member(hub, owner, "dana", role="agent")
    apis = {u: Api(hub, session, await token_for(hub, u)) for u in ("kim", "ada", "dana")}
    return hub, apis


async def test_a_crm_reads_exactly_what_the_customer_granted(world, session):
    hub, apis = world
    kim, ada, dana = apis["kim"], apis["ada"], apis["dana"]
    status, body = await kim.call("PUT", "/actors/kim/profile", {"items": {
        "email": "kim@example.org", "phone": "+1 555", "order_number": "A-77"}})
    assert status == 200 and body["items"]["order_number"] == "A-77"
    status, body = await kim.call("PUT", "/actors/kim/profile", {"items": {"phone": ["x"]}})
    assert status == 400
    handle = f"kim@{hub.cfg.domain}"
    status, body = await ada.call("GET", "/actors/acme/consent/data", customer=handle, purpose="support")
    assert status == 200 and body["items"] == {}
    status, grant = await kim.call("POST", "/actors/kim/consent/grants", {
        "organization": f"acme@{hub.cfg.domain}", "items": ["email", "order_number"], "purposes": ["support"]})
    assert status == 201, grant
    status, grants = await kim.call("GET", "/actors/kim/consent/grants")
    assert grants["items"][0]["state"] == "accepted"  # support: the organization takes it by itself
    status, body = await ada.call("GET", "/actors/acme/consent/data", customer=handle, purpose="support")
    assert body["items"] == {"email": "kim@example.org", "order_number": "A-77"}
    status, body = await ada.call("GET", "/actors/acme/consent/data", customer=handle, purpose="marketing")
    assert body["items"] == {}
    status, body = await dana.call("GET", "/actors/acme/consent/data", customer=handle, purpose="support")
    assert status == 403  # an agent cannot read customers' data
    status, body = await ada.call("GET", "/actors/acme/consent/data", customer=handle, purpose="spying")
    assert status == 400
    status, log = await kim.call("GET", "/actors/kim/consent/log")
    assert [(e["purpose"], e["items"]) for e in log["items"]] == [("support", ["email", "order_number"])]
    # an app's OAuth token reads only with the explicit scope, and only for its own actor
    from tests.integration.test_mastodon_api import Client, make_app, password_token

    client = Client(hub, session)
    app = await make_app(client, scopes="read write read:consent")
    plain = await password_token(client, app, "ada", scope="read write")
    scoped = await password_token(client, app, "ada", scope="read read:consent")
    for token, expected in ((plain, 403), (scoped, 403)):  # ada's tokens act for ada, not for acme
        api = Api(hub, session, token)
        status, _ = await api.call("GET", "/actors/acme/consent/data", customer=handle, purpose="support")
        assert status == expected
    kim_scoped = Api(hub, session, await password_token(client, app, "kim", scope="read:consent"))
    status, body = await kim_scoped.call("GET", "/actors/kim/consent/log")
    assert status == 200 and len(body["items"]) == 1
    status, body = await kim_scoped.call("GET", "/actors/kim/consent/grants")
    assert status == 200
    # nothing else of the API takes an app's token, whatever the account is called
    await actors.create_local_actor(hub, "consent", kind="person", password="password123")
    app_token = Api(hub, session, await password_token(client, app, "consent", scope="read write read:consent"))
    for method, path in (("DELETE", "/actors/consent"), ("DELETE", "/actors/consent/"),
                         ("POST", "/actors/consent/move"), ("GET", "/actors/consent/aliases")):
        status, _ = await app_token.call(method, path, {"confirm": "consent", "target": "kim"})
        assert status == 401, (method, path)
    status, body = await Api(hub, session, plain).call("GET", "/actors/ada/profile")
    assert status == 403  # "read" does not reach anyone's data
    # revoked: nothing, at once; receipts are signed by this hub
    status, ended = await kim.call("POST", "/actors/kim/consent/revoke", {"organization": f"acme@{hub.cfg.domain}"})
    assert status == 200 and ended["items"][0]["state"] == "revoked"
    status, body = await ada.call("GET", "/actors/acme/consent/data", customer=handle, purpose="support")
    assert body["items"] == {}
    status, grants = await kim.call("GET", "/actors/kim/consent/grants")
    receipts = grants["items"][0]["receipts"]
    assert [r["event"] for r in receipts] == ["granted", "accepted", "revoked"]
    status, doc = await kim.call("GET", f"/actors/kim/consent/receipts/{receipts[-1]['id']}")
    assert status == 200 and doc["event"] == "revoked"
    public = hub.federation.instance_actor
    from hub import crypto

    pem = crypto.public_key_to_pem(hub.keys.private(public.private_key_pem).public_key())
    assert verify_receipt(doc, pem)
    status, _ = await dana.call("GET", f"/actors/kim/consent/receipts/{receipts[-1]['id']}")
    assert status == 403  # not hers
    status, org_side = await ada.call("GET", "/actors/acme/consent/grants")
    assert org_side["items"][0]["state"] == "revoked" and len(org_side["items"][0]["receipts"]) == 3


async def test_the_customers_own_page_shows_data_grants_receipts_and_every_read(world):
    from tests.integration.test_web_accounts import Browser

    hub, apis = world
    browser = Browser(hub.cfg.base_url)
    try:
        status, _, _ = await browser.post("/login", {"login": "kim", "password": "password123", "next": "/home"},
                                          csrf_from="/login", follow=True)
        status, page, _ = await browser.post("/settings/data/kim", {"action": "set_item", "name": "address",
                                                                    "value": "9 Elm Row"}, csrf_from="/settings/data/kim")
        assert status == 200 and "9 Elm Row" in page
        status, page, _ = await browser.post("/settings/data/kim", {
            "action": "grant", "organization": f"acme@{hub.cfg.domain}", "item": "address", "purpose": "delivery"},
            csrf_from="/settings/data/kim")
        assert status == 200 and "Offered address" in page, page
        # delivery is not a purpose acme takes by itself: its admin accepts, then reads
        status, offers = await apis["ada"].call("GET", "/actors/acme/consent/pending")
        await apis["ada"].call("POST", "/actors/acme/consent/decisions", {"offer": offers["items"][0]["offer"],
                                                                           "accept": True})
        status, body = await apis["ada"].call("GET", "/actors/acme/consent/data", customer=f"kim@{hub.cfg.domain}",
                                              purpose="delivery")
        assert body["items"] == {"address": "9 Elm Row"}
        status, page, _ = await browser.get("/settings/data/kim")
        assert "Acme read your address for delivery on" in page
        receipt_link = page.split('href="/settings/data/kim/receipts/')[1].split('"')[0]
        status, doc, resp = await browser.get(f"/settings/data/kim/receipts/{receipt_link}")
        assert status == 200 and "attachment" in resp.headers["Content-Disposition"]
        assert '"piiPrincipalId"' in doc
        status, page, _ = await browser.post("/settings/data/kim", {
            "action": "revoke", "organization": f"{hub.cfg.base_url}/users/acme"}, csrf_from="/settings/data/kim")
        assert "Revoked" in page
        status, body = await apis["ada"].call("GET", "/actors/acme/consent/data", customer=f"kim@{hub.cfg.domain}",
                                              purpose="delivery")
        assert body["items"] == {}
        status, _, _ = await browser.get("/settings/data/acme")
        assert status in (403, 404)  # not kim's to see
    finally:
        await browser.close()


async def test_a_grant_for_one_conversation_counts_only_for_it(world):
    from hub.inbox import conversations

    hub, apis = world
    kim = await access.acting_as(hub, "kim")
    acme = await access.acting_as(hub, "acme")
    conv, _ = await conversations.start(hub, kim, [acme.actor], "About order A-77")
    await apis["kim"].call("PUT", "/actors/kim/profile", {"items": {"order_number": "A-77"}})
    status, grant = await apis["kim"].call("POST", "/actors/kim/consent/grants", {
        "organization": f"acme@{hub.cfg.domain}", "items": ["order_number"], "purposes": ["support"],
        "conversation": conv.uri})
    assert status == 201 and grant["conversation"] == conv.uri
    handle = f"kim@{hub.cfg.domain}"
    status, body = await apis["ada"].call("GET", "/actors/acme/consent/data", customer=handle, purpose="support")
    assert body["items"] == {}
    status, body = await apis["ada"].call("GET", "/actors/acme/consent/data", customer=handle, purpose="support",
                                          conversation=conv.uri)
    assert body["items"] == {"order_number": "A-77"}
    # the customer's side checks it too: an organization's hub that asks without the conversation, or
    # with another, reads nothing
    from hub.consent import federation as consent_fed
    from hub.errors import Forbidden
    from hub.store import consent as consent_store

    async with hub.db.read() as conn:
        (org_side,) = await consent_store.list_grants(conn, side="organization", organization_id=acme.actor.id)
        customer_side = await consent_store.get_grant_by_uri(conn, org_side.uri, "customer")
    capability = consent_fed.sealing.unseal(hub.cfg, org_side.sealed_capability)
    other, _ = await conversations.start(hub, kim, [acme.actor], "Something else")
    for named in (None, other.uri):
        with pytest.raises(Forbidden, match="one conversation"):
            await consent.serve_read(hub, customer_side.id, reader_uri=acme.actor.uri, capability=capability,
                                     purpose="support", conversation=named)
    assert await consent.serve_read(hub, customer_side.id, reader_uri=acme.actor.uri, capability=capability,
                                    purpose="support", conversation=conv.uri) == {"order_number": "A-77"}
    status, err = await apis["kim"].call("POST", "/actors/kim/consent/grants", {
        "organization": f"acme@{hub.cfg.domain}", "items": ["order_number"], "purposes": ["support"],
        "conversation": f"{hub.cfg.base_url}/c/01aaaaaaaaaaaaaaaaaaaaaaaa"})
    assert status == 404


async def test_reading_about_a_customer_who_is_gone_reads_nothing(world):
    """A customer's hub answering 410 (the account was deleted) or 404 is not an error: nothing to read."""
    from hub import consent
    from hub.errors import FetchError

    hub, _apis = world
    ada = await access.acting_as(hub, "acme", "ada")

    async def gone(handle):
        raise FetchError(f"{handle} answered 410", status_code=410, permanent=True)

    async def down(handle):
        raise FetchError(f"cannot connect for {handle}")

    hub.resolve_handle = gone
    customer = await consent.customer_for(hub, "kim@gone.example")
    assert customer is None and await consent.read(hub, ada, customer, "support") == {}
    hub.resolve_handle = down
    with pytest.raises(FetchError):  # down for now is not "nothing granted"
        await consent.customer_for(hub, "kim@down.example")


async def test_leaving_for_good_from_the_page_and_through_the_api(world):
    """The owner types the account's name and the password; then the account is gone (410), and so is
    its login and session. Through the API the body names the account again; an agent cannot."""
    from tests.integration.test_web_accounts import Browser

    hub, apis = world
    browser = Browser(hub.cfg.base_url)
    try:
        await browser.post("/login", {"login": "kim", "password": "password123"}, csrf_from="/login")
        page = "/settings/data/kim"
        status, html, _ = await browser.get(page)
        assert "Leave for good" in html and "Delete this account" in html
        for data, code, words in (({"confirm": "kam", "password": "password123"}, 400, "to confirm"),
                                  ({"confirm": "kim", "password": "wrong"}, 401, "password is not right")):
            status, html, _ = await browser.post(page, {"action": "delete_account", **data}, csrf_from=page)
            assert status == code and words in html
        status, html, _ = await browser.post(page, {"action": "delete_account", "confirm": "@Kim",
                                                    "password": "password123"}, csrf_from=page)
        assert status == 200 and "@kim is deleted" in html
        async with browser.session.get(f"{hub.cfg.base_url}/users/kim",
                                       headers={"Accept": "application/activity+json"}) as resp:
            assert resp.status == 410
        status, html, _ = await browser.get("/home")
        assert "Signed in as" not in html  # the login spoke only for kim: it went, with its session
        status, _, _ = await browser.post("/login", {"login": "kim", "password": "password123"}, csrf_from="/login")
        assert status != 303
    finally:
        await browser.close()
    # the API: an agent of acme cannot delete acme; its owner can, naming it
    status, err = await apis["dana"].call("DELETE", "/actors/acme", {"confirm": "acme"})
    assert status == 403
    owner = Api(hub, apis["ada"].session, await token_for(hub, "acme"))
    status, err = await owner.call("DELETE", "/actors/acme", {})
    assert status == 400 and "confirm" in err["error"]
    status, summary = await owner.call("DELETE", "/actors/acme", {"confirm": "acme"})
    assert status == 200 and summary["actor"] == f"{hub.cfg.base_url}/users/acme"


async def test_moving_here_and_away_through_the_api_and_the_page(world, tmp_path):
    """Self-service: an archive uploaded (API body or the page's form, streamed) into an empty account; an
    alias named; a move. An archive cannot bring a conversation that names people of this hub unless it
    is here already (no putting words in their mouths); oversized uploads get 413."""
    import dataclasses
    import io
    import json
    import zipfile

    from hub import export
    from hub.inbox import conversations
    from tests.integration.test_web_accounts import Browser

    hub, apis = world
    kim = await access.acting_as(hub, "kim")
    await consent.set_item(hub, kim, "phone", "+44 20 7946 0000")
    await conversations.start(hub, kim, [(await access.acting_as(hub, "acme")).actor], "Hello Acme")
    archive = tmp_path / "kim.zip"
    await export.export(hub, kim, archive)
    # a forged copy: the same conversation under a new id, so not "here already", naming acme of this hub
    forged = io.BytesIO()
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.startswith("conversations/"):
                doc = json.loads(data)
                doc["id"] = f"{hub.cfg.base_url}/c/01forgedforgedforgedforged"
                data = json.dumps(doc).encode()
            dst.writestr(name, data)

    for username in ("kim2", "kim3"):
        await actors.create_local_actor(hub, username, kind="person", password="password123")
    kim2 = Api(hub, apis["kim"].session, await token_for(hub, "kim2"))
    async with kim2.session.post(kim2.base + "/actors/kim2/import", data=forged.getvalue(),
                                 headers={**kim2.headers, "Content-Type": "application/zip"}) as resp:
        summary = await resp.json()
        assert resp.status == 200, summary
    assert summary["profile_items"] == 1 and summary["conversations"] == 0 and summary["not_restored"] == 1
    async with kim2.session.post(kim2.base + "/actors/kim2/import", data=archive.read_bytes(),
                                 headers={**kim2.headers, "Content-Type": "application/zip"}) as resp:
        assert resp.status == 409  # it has content now
    status, body = await kim2.call("POST", "/actors/kim2/aliases", {"alias": f"kim@{hub.cfg.domain}"})
    assert status == 200 and body["items"] == [f"{hub.cfg.base_url}/users/kim"]
    status, moved = await apis["kim"].call("POST", "/actors/kim/move", {"target": f"kim2@{hub.cfg.domain}"})
    assert status == 200 and moved["moved_to"] == f"{hub.cfg.base_url}/users/kim2"

    # the page: the archive as a file in the form, streamed; too large is refused
    browser = Browser(hub.cfg.base_url)
    try:
        await browser.post("/login", {"login": "kim3", "password": "password123"}, csrf_from="/login")
        status, html, _ = await browser.get("/settings/data/kim3")
        token = html.split('name="csrf_token" value="')[1].split('"')[0]

        async def upload():
            import aiohttp

            form = aiohttp.FormData()
            form.add_field("csrf_token", token)
            form.add_field("archive", archive.read_bytes(), filename="kim.zip", content_type="application/zip")
            async with browser.session.post(f"{hub.cfg.base_url}/settings/data/kim3/import", data=form) as resp:
                return resp.status, await resp.text()

        object.__setattr__(hub, "cfg", dataclasses.replace(hub.cfg, max_import_bytes=1000))
        status, html = await upload()
        assert status == 413 and "larger than 1000 bytes" in html
        object.__setattr__(hub, "cfg", dataclasses.replace(hub.cfg, max_import_bytes=10_000_000))
        status, html = await upload()
        assert status == 200 and "1 data item(s)" in html, html
        from pathlib import Path

        assert not list(Path(hub.cfg.data, "imports").glob("upload-*"))  # no upload left behind
    finally:
        await browser.close()


async def test_an_archive_moves_nothing_that_is_already_here(world, tmp_path):
    """An archive naming a message this hub already has (someone else's public post, say) leaves it where it
    is: only what is new comes in."""
    import io
    import json
    import zipfile

    from hub import outbox
    from hub.store import messages as msg_store

    hub, apis = world
    acme = (await access.acting_as(hub, "acme")).actor
    theirs = await outbox.post_note(hub, acme, "Our prices go up on Monday")
    old = "https://old.example/users/kim"
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w") as z:
        z.writestr("manifest.json", json.dumps({"format": "roundtable-export/1", "actor": old}))
        z.writestr("actor.json", json.dumps({"id": old, "type": "Person", "preferredUsername": "kim"}))
        z.writestr("conversations/c1.json", json.dumps({
            "id": "https://old.example/c/1", "owned": True, "participants": [{"id": old, "role": "owner"}],
            "state": {"status": "open"}, "messages": [
                {"id": theirs.uri, "type": "Note", "attributedTo": old, "content": "<p>mine now</p>"},
                {"id": "https://old.example/m/2", "type": "Note", "attributedTo": old, "content": "<p>hello</p>"}]}))
    await actors.create_local_actor(hub, "kim4", kind="person", password="password123")
    kim4 = Api(hub, apis["kim"].session, await token_for(hub, "kim4"))
    async with kim4.session.post(kim4.base + "/actors/kim4/import", data=forged.getvalue(),
                                 headers={**kim4.headers, "Content-Type": "application/zip"}) as resp:
        summary = await resp.json()
        assert resp.status == 200 and summary["conversations"] == 1, summary
    async with hub.db.read() as conn:
        still = await msg_store.get_message_by_uri(conn, theirs.uri)
        assert still.conversation_id == theirs.conversation_id and still.content_text == "Our prices go up on Monday"
        assert (await msg_store.get_message_by_uri(conn, "https://old.example/m/2")) is not None
