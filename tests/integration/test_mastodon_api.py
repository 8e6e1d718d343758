"""The Mastodon-compatible client API over real HTTP: OAuth (apps, the
authorization-code flow with PKCE through the consent page, password,
client-credentials and refresh grants, revocation), scopes, CORS, errors,
statuses, conversations, notifications, media, organizations speaking
through a member's app, the WebSocket stream, and Web Push to a local
receiving server (decrypted with the subscriber's key, VAPID checked)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import secrets
import struct
import zlib
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from hub import actors, sessions
from hub.inbox import access
from tests.helpers import free_port

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def png(width: int = 3, height: int = 2) -> bytes:
    raw = b"".join(b"\x00" + b"\x10\x80\xf0" * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Client:
    """One app's view of the API, as a client library sends requests."""

    def __init__(self, hub, session, token: str | None = None):
        self.base = hub.cfg.base_url
        self.session = session
        self.token = token

    async def call(self, method, path, *, json_body=None, data=None, params=None, headers=None, token=...):
        token = self.token if token is ... else token
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, json=json_body, data=data, params=params,
                                        headers=h) as resp:
            text = await resp.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = text
            return resp.status, body, resp.headers


async def make_app(client: Client, **extra) -> dict:
    status, app, _ = await client.call("POST", "/api/v1/apps", json_body={
        "client_name": "Test app", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write follow push",
        **extra}, token=None)
    assert status == 200, app
    return app


async def password_token(client: Client, app: dict, username: str, password: str = "password123",
                         scope: str = "read write follow push") -> str:
    status, body, headers = await client.call("POST", "/oauth/token", token=None, data={
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": username, "password": password, "scope": scope})
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store"
    return body["access_token"]


@pytest.fixture
async def world(served_hub, session):
    hub = served_hub
    for username, kind in (("alice", "person"), ("bob", "person"), ("acme", "organization"), ("dana", "person")):
        await actors.create_local_actor(hub, username, kind=kind, name=username.capitalize(), password="password123",
                                        email=f"{username}@example.org")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    client = Client(hub, session)
    app = await make_app(client)
    tokens = {u: await password_token(client, app, u) for u in ("alice", "bob", "acme")}
    return hub, client, app, tokens


def _clone(client: Client, token: str) -> Client:
    c = Client.__new__(Client)
    c.base, c.session, c.token = client.base, client.session, token
    return c


# --- OAuth -------------------------------------------------------------------------------------


async def test_apps_accept_json_or_form_and_string_or_list_redirect_uris(served_hub, session):
    client = Client(served_hub, session)
    status, app, headers = await client.call("POST", "/api/v1/apps/", data={
        "client_name": "Tusky", "redirect_uris": "oauth2redirect://com.keylesspalace.tusky/", "scopes": "read write",
        "website": "https://tusky.app"})
    assert status == 200, app
    assert app["redirect_uri"] == "oauth2redirect://com.keylesspalace.tusky/"
    assert app["redirect_uris"] == ["oauth2redirect://com.keylesspalace.tusky/"]
    assert app["scopes"] == ["read", "write"] and app["client_secret_expires_at"] == 0
    assert isinstance(app["id"], str) and app["vapid_key"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    status, app2, _ = await client.call("POST", "/api/v1/apps", json_body={
        "client_name": "Elk", "redirect_uris": ["https://elk.zone/cb", "urn:ietf:wg:oauth:2.0:oob"]})
    assert status == 200 and app2["redirect_uris"] == ["https://elk.zone/cb", "urn:ietf:wg:oauth:2.0:oob"]
    assert app2["scopes"] == ["read"]  # the default
    for bad in ({"client_name": "x", "redirect_uris": "javascript:alert(1)"}, {"client_name": "x"},
                {"redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
                {"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read admin:everything"}):
        status, body, _ = await client.call("POST", "/api/v1/apps", json_body=bad)
        assert status in (400, 422) and isinstance(body["error"], str), (bad, body)
    status, body, _ = await client.call("POST", "/api/v1/apps", data="{not json", headers={
        "Content-Type": "application/json"})
    assert status == 400 and "JSON" in body["error"]


async def test_metadata_lists_every_grant_and_cors_preflight_answers(served_hub, session):
    client = Client(served_hub, session)
    status, meta, _ = await client.call("GET", "/.well-known/oauth-authorization-server")
    assert status == 200
    assert set(meta["grant_types_supported"]) == {"authorization_code", "password", "client_credentials",
                                                  "refresh_token"}
    assert meta["token_endpoint"].endswith("/oauth/token") and "S256" in meta["code_challenge_methods_supported"]
    assert {"read", "write", "follow", "push", "read:statuses"} <= set(meta["scopes_supported"])
    async with session.options(served_hub.cfg.base_url + "/api/v1/statuses", headers={
            "Origin": "https://elk.zone", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key"}) as resp:
        assert resp.status == 204
        allowed = resp.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "idempotency-key" in allowed and "content-type" in allowed
        assert "Link" in resp.headers["Access-Control-Expose-Headers"]
    for path in ("/nodeinfo/2.0", "/.well-known/nodeinfo", "/api/v1/instance"):
        async with session.get(served_hub.cfg.base_url + path) as resp:
            assert resp.headers.get("Access-Control-Allow-Origin") == "*", path


async def test_password_grant_by_username_or_email_refresh_and_revoke(world):
    hub, client, app, tokens = world
    base = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
    # the username may be the email; parameters may come in the query string
    status, body, _ = await client.call("POST", "/oauth/token", token=None, params={
        **base, "grant_type": "password", "username": "alice@example.org", "password": "password123",
        "scope": "read"})
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["scope"] == "read" and isinstance(body["created_at"], int)
    reader = body["access_token"]
    status, me, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=reader)
    assert status == 200 and me["username"] == "alice" and me["source"]["privacy"] == "public"
    # a read token cannot write
    status, err, _ = await client.call("POST", "/api/v1/statuses", token=reader, json_body={"status": "hi"})
    assert status == 403 and "scope" in err["error"]
    # wrong password, wrong secret, unknown grant
    status, err, _ = await client.call("POST", "/oauth/token", token=None, data={
        **base, "grant_type": "password", "username": "alice", "password": "nope"})
    assert status == 400 and err["error"] == "invalid_grant"
    status, err, hdrs = await client.call("POST", "/oauth/token", token=None, data={
        "client_id": app["client_id"], "client_secret": "wrong", "grant_type": "password", "username": "alice",
        "password": "password123"})
    assert status == 401 and err["error"] == "invalid_client"
    status, err, _ = await client.call("POST", "/oauth/token", token=None, data={**base, "grant_type": "implicit"})
    assert status == 400 and err["error"] == "unsupported_grant_type"
    # scopes beyond the app's are refused
    narrow = await make_app(client, scopes="read")
    status, err, _ = await client.call("POST", "/oauth/token", token=None, data={
        "client_id": narrow["client_id"], "client_secret": narrow["client_secret"], "grant_type": "password",
        "username": "alice", "password": "password123", "scope": "read write"})
    assert status == 400 and err["error"] == "invalid_scope"
    # refresh: a new token, the old refresh token is spent, the old access token revoked
    status, body, _ = await client.call("POST", "/oauth/token", token=None, data={
        **base, "grant_type": "password", "username": "alice", "password": "password123", "scope": "read write"})
    first = body
    creds = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    status, second, _ = await client.call("POST", "/oauth/token", token=None, headers={
        "Authorization": f"Basic {creds}"}, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200 and second["scope"] == "read write" and second["access_token"] != first["access_token"]
    status, _, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=first["access_token"])
    assert status == 401
    status, err, _ = await client.call("POST", "/oauth/token", token=None, data={
        **base, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 400 and err["error"] == "invalid_grant"
    # revoke (RFC 7009)
    status, body, _ = await client.call("POST", "/oauth/revoke", token=None, data={**base, "token": second["access_token"]})
    assert status == 200 and body == {}
    status, err, hdrs = await client.call("GET", "/api/v1/accounts/verify_credentials", token=second["access_token"])
    assert status == 401 and err == {"error": "The access token is invalid"}


async def test_two_factor_accounts_cannot_use_the_password_grant(world):
    hub, client, app, _ = world
    secret = sessions.new_totp_secret()
    import pyotp

    async with hub.db.read() as conn:
        from hub.store import actors as actor_store

        account = await actor_store.get_account_by_username(conn, "bob")
    await sessions.enable_totp(hub, account.id, secret, pyotp.TOTP(secret).now())
    status, err, _ = await client.call("POST", "/oauth/token", token=None, data={
        "client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "password",
        "username": "bob", "password": "password123"})
    assert status == 400 and "two-factor" in err["error_description"]


async def test_client_credentials_token_is_for_the_app_only(world):
    hub, client, app, _ = world
    status, body, _ = await client.call("POST", "/oauth/token", token=None, data={
        "client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "client_credentials",
        "scope": "read"})
    assert status == 200 and "refresh_token" not in body
    status, verified, _ = await client.call("GET", "/api/v1/apps/verify_credentials", token=body["access_token"])
    assert status == 200 and verified["name"] == "Test app" and "client_secret" not in verified
    status, err, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=body["access_token"])
    assert status == 422 and "user" in err["error"]
    status, _, _ = await client.call("GET", "/api/v1/timelines/public", token=body["access_token"])
    assert status == 200


async def sign_in(hub, username: str) -> aiohttp.ClientSession:
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with browser.get(hub.cfg.base_url + "/login") as resp:
        csrf = CSRF.search(await resp.text()).group(1)
    async with browser.post(hub.cfg.base_url + "/login", data={
            "csrf_token": csrf, "login": username, "password": "password123", "next": "/home"}) as resp:
        assert resp.status == 200
    return browser


async def consent(browser, url: str, *, actor: str | None = None, decision: str = "allow"):
    async with browser.get(url) as resp:
        assert resp.status == 200, await resp.text()
        page = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    form = {k: html.unescape(v) for k, v in HIDDEN.findall(page)}
    if actor is not None:
        form["actor"] = actor
    form["decision"] = decision
    async with browser.post(url.split("?")[0], data=form, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Location"), await resp.text(), page, csp


async def test_authorization_code_flow_with_pkce_through_the_consent_page(world):
    hub, client, _app, _ = world
    status, app, _ = await client.call("POST", "/api/v1/apps", json_body={
        "client_name": "Phone app", "redirect_uris": "com.example.phone:/oauth", "scopes": "read write"})
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    url = (f"{hub.cfg.base_url}/oauth/authorize/?response_type=code&client_id={app['client_id']}"
           f"&redirect_uri=com.example.phone:/oauth&scope=read+write&state=xyz&code_challenge={challenge}"
           "&code_challenge_method=S256")
    # signed out: sent to sign in, and back
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anon:
        async with anon.get(url, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"].startswith("/login?next=")
    browser = await sign_in(hub, "alice")
    try:
        status, location, _, page, csp = await consent(browser, url)
        assert "Phone app" in page and "read" in page
        assert "form-action 'self' com.example.phone:" in csp  # the redirect after consent is allowed
        assert status == 302 and location.startswith("com.example.phone:/oauth?")
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == ["xyz"]
        code = query["code"][0]
        token_form = {"grant_type": "authorization_code", "client_id": app["client_id"], "code": code,
                      "redirect_uri": "com.example.phone:/oauth"}
        status, err, _ = await client.call("POST", "/oauth/token", token=None,
                                           data={**token_form, "code_verifier": "x" * 50})
        assert status == 400 and err["error"] == "invalid_grant"  # and the code is now spent
        status, location, *_ = await consent(browser, url)
        code = parse_qs(urlsplit(location).query)["code"][0]
        # a public client: PKCE instead of the secret
        status, body, _ = await client.call("POST", "/oauth/token", token=None, json_body={
            **token_form, "code": code, "code_verifier": verifier})
        assert status == 200 and body["scope"] == "read write", body
        status, me, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=body["access_token"])
        assert me["username"] == "alice"
        status, refreshed, _ = await client.call("POST", "/oauth/token", token=None, json_body={
            "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": app["client_id"],
            "client_secret": app["client_secret"]})
        assert status == 200
        status, err, _ = await client.call("POST", "/oauth/token", token=None, json_body={
            **token_form, "code": code, "code_verifier": verifier})
        assert status == 400 and err["error"] == "invalid_grant"  # once only
        # a code presented twice was seen by someone else: every token it gave, refreshed too, is revoked
        for given in (body, refreshed):
            status, _, _ = await client.call("GET", "/api/v1/accounts/verify_credentials",
                                             token=given["access_token"])
            assert status == 401
        # denying sends the app an error
        status, location, *_ = await consent(browser, url, decision="deny")
        assert "error=access_denied" in location and "state=xyz" in location
        # a redirect URI the app did not register is refused on the page itself
        async with browser.get(url.replace("com.example.phone:/oauth", "https://evil.example/cb")) as resp:
            assert resp.status == 400 and "redirect URI" in await resp.text()
        # out of band: the code is shown to copy
        oob = await make_app(client)
        status, _, page, *_ = await consent(browser, f"{hub.cfg.base_url}/oauth/authorize?response_type=code"
                                                     f"&client_id={oob['client_id']}&redirect_uri=urn:ietf:wg:oauth:2.0:oob"
                                                     "&scope=read")
        assert status == 200 and re.search(r'id="oauth-code" class="code" value="[^"]{20,}"', page)
    finally:
        await browser.close()


# --- the API surface -------------------------------------------------------------------------


async def test_startup_endpoints_answer_and_unknown_ones_are_json_404(world):
    hub, client, _app, tokens = world
    c = _clone(client, tokens["alice"])
    for path in ("/api/v1/preferences", "/api/v1/markers", "/api/v1/custom_emojis", "/api/v1/filters",
                 "/api/v2/filters", "/api/v1/lists", "/api/v1/announcements", "/api/v1/followed_tags",
                 "/api/v1/bookmarks", "/api/v1/favourites", "/api/v1/blocks", "/api/v1/mutes", "/api/v1/trends",
                 "/api/v1/trends/tags", "/api/v1/trends/statuses", "/api/v1/trends/links", "/api/v1/follow_requests",
                 "/api/v1/conversations", "/api/v1/notifications", "/api/v1/scheduled_statuses",
                 "/api/v1/featured_tags", "/api/v2/suggestions", "/api/v1/instance/peers", "/api/v1/domain_blocks",
                 "/api/v1/instance", "/api/v2/instance", "/api/v1/timelines/home/", "/api/v1/streaming/health",
                 "/api/v2/notifications", "/api/v1/notifications/policy", "/api/v2/notifications/policy",
                 "/api/v1/notifications/requests", "/api/v1/tags/cats", "/api/v1/timelines/tag/cats"):
        status, body, _ = await c.call("GET", path)
        assert status == 200, (path, body)
    status, body, _ = await c.call("GET", "/api/v1/no_such_thing")
    assert status == 404 and body == {"error": "Record not found"}
    status, body, _ = await c.call("GET", "/api/v1/statuses/01aaaaaaaaaaaaaaaaaaaaaaaa")
    assert status == 404 and body["error"]
    status, body, _ = await c.call("GET", "/api/v1/timelines/home", token=None)
    assert status == 401 and body == {"error": "The access token is invalid"}
    status, inst, _ = await c.call("GET", "/api/v2/instance")
    assert re.match(r"^4\.\d+\.\d+ \(compatible; Roundtable [\d.]+\)$", inst["version"])
    assert inst["thumbnail"]["url"] and inst["configuration"]["statuses"]["max_characters"] > 0
    assert inst["configuration"]["vapid"]["public_key"]
    assert "account" in inst["contact"]


async def test_statuses_visibility_idempotency_edit_delete_and_context(world):
    hub, client, _app, tokens = world
    alice, bob = _clone(client, tokens["alice"]), _clone(client, tokens["bob"])
    status, post, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "Hello fediverse"},
                                       headers={"Idempotency-Key": "k1"})
    assert status == 200, post
    status, again, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "Hello fediverse"},
                                        headers={"Idempotency-Key": "k1"})
    assert again["id"] == post["id"]
    assert isinstance(post["id"], str) and ISO_MS.match(post["created_at"])
    for key in ("in_reply_to_id", "reblog", "poll", "card", "edited_at", "language"):
        assert key in post  # null rather than missing
    assert post["account"]["acct"] == "alice" and post["visibility"] == "public"
    # bob replies (a form body), alice sees the context
    status, reply, _ = await bob.call("POST", "/api/v1/statuses", data={"status": "Hi Alice",
                                                                        "in_reply_to_id": post["id"]})
    assert status == 200 and reply["in_reply_to_id"] == post["id"]
    status, ctx, _ = await alice.call("GET", f"/api/v1/statuses/{post['id']}/context")
    assert [s["id"] for s in ctx["descendants"]] == [reply["id"]]
    status, ctx, _ = await alice.call("GET", f"/api/v1/statuses/{reply['id']}/context")
    assert [s["id"] for s in ctx["ancestors"]] == [post["id"]]
    # followers-only: not for bob until he follows
    status, private, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "friends only",
                                                                                  "visibility": "private"})
    assert private["visibility"] == "private"
    status, _, _ = await bob.call("GET", f"/api/v1/statuses/{private['id']}")
    assert status == 404
    status, _, _ = await bob.call("POST", f"/api/v1/accounts/{post['account']['id']}/follow")
    status, seen, _ = await bob.call("GET", f"/api/v1/statuses/{private['id']}")
    assert status == 200 and seen["content"] == "<p>friends only</p>"
    status, anonymous, _ = await client.call("GET", f"/api/v1/statuses/{private['id']}", token=None)
    assert status == 404
    # edit, source, favourite, reblog, delete
    status, edited, _ = await alice.call("PUT", f"/api/v1/statuses/{post['id']}", json_body={"status": "Hello again"})
    assert status == 200 and edited["edited_at"] and "Hello again" in edited["content"]
    status, _, _ = await bob.call("PUT", f"/api/v1/statuses/{post['id']}", json_body={"status": "hijack"})
    assert status == 404
    status, fav, _ = await bob.call("POST", f"/api/v1/statuses/{post['id']}/favourite")
    assert fav["favourited"] is True and fav["favourites_count"] == 1
    status, boost, _ = await bob.call("POST", f"/api/v1/statuses/{post['id']}/reblog")
    assert boost["reblog"]["id"] == post["id"] and boost["reblogged"] is True
    status, who, _ = await alice.call("GET", f"/api/v1/statuses/{post['id']}/favourited_by")
    assert [a["acct"] for a in who] == ["bob"]
    status, source, _ = await alice.call("GET", f"/api/v1/statuses/{post['id']}/source")
    assert source["text"] == "Hello again"
    status, _, _ = await alice.call("PUT", f"/api/v1/statuses/{post['id']}", json_body={
        "status": "Hello for the third time", "spoiler_text": "greetings"})
    status, history, _ = await bob.call("GET", f"/api/v1/statuses/{post['id']}/history")
    assert status == 200 and [h["content"] for h in history] == [
        "<p>Hello fediverse</p>", "<p>Hello again</p>", "<p>Hello for the third time</p>"]  # oldest first
    assert history[0]["created_at"] == post["created_at"] and history[-1]["spoiler_text"] == "greetings"
    assert all(h["account"]["acct"] == "alice" for h in history)
    status, gone, _ = await alice.call("DELETE", f"/api/v1/statuses/{post['id']}")
    assert status == 200 and gone["text"] == "Hello for the third time"
    from hub.store.schema import message_versions

    async with hub.db.read() as conn:  # what it said before goes with it
        assert (await conn.execute(sa.select(sa.func.count()).select_from(message_versions))).scalar() == 0
    status, _, _ = await alice.call("GET", f"/api/v1/statuses/{post['id']}")
    assert status == 404
    # bad input
    status, err, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": ""})
    assert status == 422 and "blank" in err["error"]
    status, err, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "x" * 6000})
    assert status == 422
    status, err, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "x", "visibility": "secret"})
    assert status == 422


async def test_direct_messages_are_conversations_with_notifications(world):
    hub, client, _app, tokens = world
    alice, acme, bob = (_clone(client, tokens[u]) for u in ("alice", "acme", "bob"))
    status, dm, _ = await alice.call("POST", "/api/v1/statuses", json_body={
        "status": "@acme my parcel never came", "visibility": "direct"})
    assert status == 200 and dm["visibility"] == "direct", dm
    assert [m["acct"] for m in dm["mentions"]] == ["acme"]
    status, convs, _ = await acme.call("GET", "/api/v1/conversations")
    assert len(convs) == 1 and convs[0]["unread"] is True
    assert [a["acct"] for a in convs[0]["accounts"]] == ["alice"] and convs[0]["last_status"]["id"] == dm["id"]
    status, notes, _ = await acme.call("GET", "/api/v1/notifications", params={"types[]": "mention"})
    assert [(n["type"], n["account"]["acct"], n["status"]["id"]) for n in notes] == [("mention", "alice", dm["id"])]
    status, none, _ = await acme.call("GET", "/api/v1/notifications", params={"exclude_types[]": "mention"})
    assert none == []
    status, grouped, _ = await acme.call("GET", "/api/v2/notifications")  # Mastodon 4.3's grouped form
    assert [(g["type"], g["status_id"], g["notifications_count"]) for g in grouped["notification_groups"]] == [
        ("mention", dm["id"], 1)]
    assert [a["acct"] for a in grouped["accounts"]] == ["alice"] and grouped["statuses"][0]["id"] == dm["id"]
    # bob, not a participant, sees nothing
    status, _, _ = await bob.call("GET", f"/api/v1/statuses/{dm['id']}")
    assert status == 404
    # the organization answers in the thread; alice is notified, the thread grows
    status, answer, _ = await acme.call("POST", "/api/v1/statuses", json_body={
        "status": "Sorry! A new one ships today.", "in_reply_to_id": dm["id"], "visibility": "direct"})
    assert status == 200 and answer["in_reply_to_id"] == dm["id"]
    assert answer["roundtable"]["conversation"] == dm["roundtable"]["conversation"]
    status, notes, _ = await alice.call("GET", "/api/v1/notifications")
    assert notes[0]["type"] == "mention" and notes[0]["status"]["id"] == answer["id"]
    status, home, link = await alice.call("GET", "/api/v1/timelines/home")
    assert answer["id"] in [s["id"] for s in home]
    # read, then delete (out of the list until the next message)
    conv_id = convs[0]["id"]
    status, read, _ = await acme.call("POST", f"/api/v1/conversations/{conv_id}/read")
    assert read["unread"] is False
    status, _, _ = await acme.call("DELETE", f"/api/v1/conversations/{conv_id}")
    status, convs, _ = await acme.call("GET", "/api/v1/conversations")
    assert convs == []
    await alice.call("POST", "/api/v1/statuses", json_body={"status": "Thanks!", "in_reply_to_id": answer["id"],
                                                            "visibility": "direct"})
    status, convs, _ = await acme.call("GET", "/api/v1/conversations")
    assert [c["id"] for c in convs] == [conv_id] and convs[0]["unread"] is True
    # dismiss one, clear all
    status, notes, _ = await acme.call("GET", "/api/v1/notifications")
    status, _, _ = await acme.call("POST", f"/api/v1/notifications/{notes[0]['id']}/dismiss")
    status, after, _ = await acme.call("GET", "/api/v1/notifications")
    assert len(after) == len(notes) - 1
    await acme.call("POST", "/api/v1/notifications/clear")
    status, after, _ = await acme.call("GET", "/api/v1/notifications")
    assert after == []


async def test_paging_with_link_headers(world):
    hub, client, _app, tokens = world
    alice = _clone(client, tokens["alice"])
    ids = []
    for i in range(5):
        status, s, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": f"note {i}"})
        ids.append(s["id"])
    status, page, headers = await alice.call("GET", "/api/v1/accounts/" + s["account"]["id"] + "/statuses",
                                             params={"limit": "2"})
    assert [p["id"] for p in page] == ids[:-3:-1]
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', headers["Link"]))
    status, older, _ = await alice.call("GET", links["next"].replace(client.base, ""))
    assert [p["id"] for p in older] == [ids[2], ids[1]]
    status, newer, _ = await alice.call("GET", "/api/v1/timelines/home", params={"min_id": ids[1], "limit": "2"})
    assert [p["id"] for p in newer] == [ids[3], ids[2]]
    status, since, _ = await alice.call("GET", "/api/v1/timelines/home", params={"since_id": ids[1], "limit": "2"})
    assert [p["id"] for p in since] == [ids[4], ids[3]]


async def test_follow_mute_block_and_relationships(world):
    hub, client, _app, tokens = world
    alice, bob = _clone(client, tokens["alice"]), _clone(client, tokens["bob"])
    status, bob_acct, _ = await alice.call("GET", "/api/v1/accounts/lookup", params={"acct": "bob"})
    status, rel, _ = await alice.call("POST", f"/api/v1/accounts/{bob_acct['id']}/follow")
    assert rel["following"] is True
    status, notes, _ = await bob.call("GET", "/api/v1/notifications")
    assert notes[0]["type"] == "follow" and notes[0]["account"]["acct"] == "alice"
    status, followers, _ = await alice.call("GET", f"/api/v1/accounts/{bob_acct['id']}/followers")
    assert [a["acct"] for a in followers] == ["alice"]
    status, post, _ = await bob.call("POST", "/api/v1/statuses", json_body={"status": "bob speaks"})
    status, home, _ = await alice.call("GET", "/api/v1/timelines/home")
    assert post["id"] in [s["id"] for s in home]
    status, rel, _ = await alice.call("POST", f"/api/v1/accounts/{bob_acct['id']}/mute")
    assert rel["muting"] is True
    status, home, _ = await alice.call("GET", "/api/v1/timelines/home")
    assert post["id"] not in [s["id"] for s in home]
    status, mutes, _ = await alice.call("GET", "/api/v1/mutes")
    assert [m["acct"] for m in mutes] == ["bob"]
    await alice.call("POST", f"/api/v1/accounts/{bob_acct['id']}/unmute")
    status, rels, _ = await alice.call("GET", "/api/v1/accounts/relationships", params={"id[]": bob_acct["id"]})
    assert rels[0]["following"] is True and rels[0]["muting"] is False
    status, rel, _ = await alice.call("POST", f"/api/v1/accounts/{bob_acct['id']}/block")
    assert rel["blocking"] is True and rel["following"] is False
    status, blocks, _ = await alice.call("GET", "/api/v1/blocks")
    assert [b["acct"] for b in blocks] == ["bob"]
    status, search, _ = await alice.call("GET", "/api/v2/search", params={"q": "bob", "type": "accounts"})
    assert [a["acct"] for a in search["accounts"]] == ["bob"]


async def test_media_upload_and_attach(world):
    hub, client, _app, tokens = world
    alice, bob = _clone(client, tokens["alice"]), _clone(client, tokens["bob"])
    form = aiohttp.FormData()
    form.add_field("file", png(4, 3), filename="pic.png", content_type="image/png")
    form.add_field("description", "a tiny picture")
    status, media, _ = await alice.call("POST", "/api/v2/media", data=form)
    assert status == 200, media
    assert media["type"] == "image" and media["description"] == "a tiny picture"
    assert media["meta"]["original"]["width"] == 4 and media["meta"]["original"]["height"] == 3
    async with client.session.get(media["url"]) as resp:
        assert resp.status == 200 and await resp.read() == png(4, 3)
    status, _, _ = await bob.call("GET", f"/api/v1/media/{media['id']}")
    assert status == 404
    status, err, _ = await bob.call("POST", "/api/v1/statuses", json_body={"status": "x", "media_ids": [media["id"]]})
    assert status == 422  # not bob's
    status, post, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "look",
                                                                               "media_ids": [media["id"]]})
    assert status == 200 and [m["id"] for m in post["media_attachments"]] == [media["id"]]
    assert post["media_attachments"][0]["description"] == "a tiny picture"
    # the note federates with it
    async with client.session.get(post["uri"], headers={"Accept": "application/activity+json"}) as resp:
        note = await resp.json(content_type=None)
    assert note["attachment"][0]["mediaType"] == "image/png" and note["attachment"][0]["name"] == "a tiny picture"
    # an edit swaps the picture and describes the new one
    form = aiohttp.FormData()
    form.add_field("file", png(6, 6), filename="other.png", content_type="image/png")
    status, other, _ = await alice.call("POST", "/api/v2/media", data=form)
    status, edited, _ = await alice.call("PUT", f"/api/v1/statuses/{post['id']}", json_body={
        "status": "look again", "media_ids": [other["id"]],
        "media_attributes": [{"id": other["id"], "description": "a square"}]})
    assert status == 200, edited
    assert [(m["id"], m["description"]) for m in edited["media_attachments"]] == [(other["id"], "a square")]
    async with client.session.get(post["uri"], headers={"Accept": "application/activity+json"}) as resp:
        note = await resp.json(content_type=None)
    assert [a["name"] for a in note["attachment"]] == ["a square"]
    # not an image / lying about its type / too large
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.4", filename="x.pdf", content_type="application/pdf")
    status, err, _ = await alice.call("POST", "/api/v2/media", data=form)
    assert status == 422 and "image" in err["error"]
    form = aiohttp.FormData()
    form.add_field("file", b"not really", filename="x.png", content_type="image/png")
    status, err, _ = await alice.call("POST", "/api/v2/media", data=form)
    assert status == 422
    import requests  # (with Mastodon.py) a client in its own thread, as a phone app is its own process

    big = png() + b"\x00" * (hub.cfg.max_attachment_bytes + 1)
    resp = await asyncio.to_thread(requests.post, client.base + "/api/v2/media", files={
        "file": ("big.png", big, "image/png")}, headers={"Authorization": f"Bearer {tokens['alice']}"}, timeout=30)
    assert resp.status_code == 413 and "larger" in resp.json()["error"]
    resp = await asyncio.to_thread(requests.post, client.base + "/api/v2/media", files={
        "file": ("photo.png", png() + b"\x00" * 2_500_000, "image/png")},
        headers={"Authorization": f"Bearer {tokens['alice']}"}, timeout=30)  # larger than a request's usual limit
    assert resp.status_code == 200, resp.text


async def test_update_credentials_changes_the_profile(world):
    hub, client, _app, tokens = world
    form = aiohttp.FormData()
    form.add_field("display_name", "Alice Liddell")
    form.add_field("note", "Curiouser and curiouser")
    form.add_field("fields_attributes[0][name]", "Site")
    form.add_field("fields_attributes[0][value]", "https://alice.example")
    form.add_field("avatar", png(8, 8), filename="me.png", content_type="image/png")
    form.add_field("header", png(30, 10), filename="wide.png", content_type="image/png")
    async with client.session.patch(client.base + "/api/v1/accounts/update_credentials", data=form,
                                    headers={"Authorization": f"Bearer {tokens['alice']}"}) as resp:
        me = await resp.json()
        assert resp.status == 200, me
    assert me["display_name"] == "Alice Liddell" and me["source"]["note"] == "Curiouser and curiouser"
    assert me["fields"][0]["name"] == "Site" and "/media/u/" in me["avatar"]
    async with client.session.get(me["avatar"]) as resp:
        assert resp.status == 200 and await resp.read() == png(8, 8)
    async with client.session.get(client.base + "/users/alice", headers={"Accept": "application/activity+json"}) as resp:
        actor = await resp.json(content_type=None)
    assert actor["name"] == "Alice Liddell" and actor["icon"]["url"] == me["avatar"]
    assert "/media/u/" in me["header"] and actor["image"] == {"type": "Image", "mediaType": "image/png",
                                                              "url": me["header"]}  # where peers look for it
    # and a peer's header comes back the same way: parsed from its actor document
    from hub.federation import documents

    values, _ = documents.parse_actor(actor, new_id="01aaaaaaaaaaaaaaaaaaaaaaaa")
    assert values["image_url"] == me["header"] and values["icon_url"] == me["avatar"]


async def test_an_organization_speaks_through_a_members_app_only_when_allowed(world):
    hub, client, _app, tokens = world
    app = await make_app(client)
    url = (f"{hub.cfg.base_url}/oauth/authorize?response_type=code&client_id={app['client_id']}"
           "&redirect_uri=urn:ietf:wg:oauth:2.0:oob&scope=read+write")
    browser = await sign_in(hub, "dana")
    try:
        _, _, _, page, _ = await consent(browser, url)
        assert 'name="actor" value="dana"' in page and "Speak as" not in page  # an agent: not yet
        owner = await access.acting_as(hub, "acme")
        await access.set_app_access(hub, owner, "dana", allow=True)
        status, _, page, consent_page, _ = await consent(browser, url, actor="acme")
        assert "Speak as" in consent_page and "acme" in consent_page
        code = re.search(r'id="oauth-code" class="code" value="([^"]+)"', page).group(1)
        status, body, _ = await client.call("POST", "/oauth/token", token=None, data={
            "grant_type": "authorization_code", "client_id": app["client_id"], "client_secret": app["client_secret"],
            "code": code, "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"})
        org_token = body["access_token"]
        org = _clone(client, org_token)
        status, me, _ = await org.call("GET", "/api/v1/accounts/verify_credentials")
        assert me["username"] == "acme" and me["roundtable"]["type"] == "Organization"
        alice = _clone(client, tokens["alice"])
        status, dm, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme help",
                                                                                "visibility": "direct"})
        status, answer, _ = await org.call("POST", "/api/v1/statuses", json_body={
            "status": "On it", "in_reply_to_id": dm["id"], "visibility": "direct"})
        assert answer["account"]["acct"] == "acme"
        async with hub.db.read() as conn:
            from hub.store import messages as msg_store

            row = await msg_store.get_message_by_id(conn, answer["id"])
        assert row.account_id is not None  # the member who wrote it is recorded (and signs it)
        # an agent cannot change the organization's profile
        status, err, _ = await org.call("PATCH", "/api/v1/accounts/update_credentials",
                                        data={"display_name": "Hacked"})
        assert status == 403
        # the admin stops it: the token dies at once
        await access.set_app_access(hub, owner, "dana", allow=False)
        status, _, _ = await org.call("GET", "/api/v1/accounts/verify_credentials")
        assert status == 401
    finally:
        await browser.close()


# --- streaming and push ----------------------------------------------------------------------


async def test_a_followed_hashtag_brings_public_posts_into_the_home_timeline(world):
    hub, client, _app, tokens = world
    alice, bob = _clone(client, tokens["alice"]), _clone(client, tokens["bob"])
    status, tag, _ = await alice.call("POST", "/api/v1/tags/Kettles/follow")
    assert status == 200 and tag == {"name": "kettles", "url": f"{hub.cfg.base_url}/tags/kettles", "history": [],
                                     "following": True}
    status, _, _ = await alice.call("POST", "/api/v1/tags/no%20tag/follow")
    assert status == 404
    status, listed, _ = await alice.call("GET", "/api/v1/followed_tags")
    assert [t["name"] for t in listed] == ["kettles"]
    status, shown, _ = await alice.call("GET", "/api/v1/tags/kettles")
    assert shown["following"] is True
    status, public, _ = await bob.call("POST", "/api/v1/statuses", json_body={"status": "Cheap #kettles today"})
    status, untagged, _ = await bob.call("POST", "/api/v1/statuses", json_body={"status": "Cheap toasters"})
    status, hidden, _ = await bob.call("POST", "/api/v1/statuses", json_body={"status": "#kettles for friends",
                                                                              "visibility": "private"})
    status, home, _ = await alice.call("GET", "/api/v1/timelines/home")
    ids = [s["id"] for s in home]
    assert public["id"] in ids and untagged["id"] not in ids and hidden["id"] not in ids  # alice follows no one
    status, _, _ = await alice.call("POST", "/api/v1/tags/kettles/unfollow")
    status, home, _ = await alice.call("GET", "/api/v1/timelines/home")
    assert public["id"] not in [s["id"] for s in home]
    status, listed, _ = await alice.call("GET", "/api/v1/followed_tags")
    assert listed == []


async def test_a_hashtag_stream_delivers_public_posts_with_its_tag(world):
    hub, client, _app, tokens = world
    url = hub.cfg.base_url.replace("http", "ws") + "/api/v1/streaming?stream=hashtag&tag=Kettles"
    async with client.session.ws_connect(url, protocols=(tokens["acme"],)) as ws:
        await ws.send_str(json.dumps({"type": "subscribe", "stream": "hashtag:local", "tag": "tea"}))
        await ws.send_str(json.dumps({"type": "subscribe", "stream": "hashtag"}))  # no tag: an error frame
        error = json.loads((await ws.receive()).data)
        assert error["status"] == 400 and "tag" in error["error"]
        await asyncio.sleep(0.3)
        alice = _clone(client, tokens["alice"])
        await alice.call("POST", "/api/v1/statuses", json_body={"status": "nothing tagged here"})
        await alice.call("POST", "/api/v1/statuses", json_body={"status": "quiet #kettles", "visibility": "direct"})
        status, post, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "New #Kettles and #tea"})
        got = []
        async with asyncio.timeout(15):
            while len(got) < 2:
                event = json.loads((await ws.receive()).data)
                got.append((event["stream"], json.loads(event["payload"])["id"]))
        assert sorted(got) == [(["hashtag", "kettles"], post["id"]), (["hashtag:local", "tea"], post["id"])]
        await asyncio.sleep(1.5)  # nothing else comes: not the untagged post, not the direct one
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.5):
                await ws.receive()


async def test_websocket_stream_delivers_a_direct_message_live(world):
    hub, client, _app, tokens = world
    url = hub.cfg.base_url.replace("http", "ws") + "/api/v1/streaming"
    async with client.session.ws_connect(url, protocols=(tokens["acme"],)) as ws:
        await ws.send_str(json.dumps({"type": "subscribe", "stream": "user"}))
        await ws.send_str(json.dumps({"type": "subscribe", "stream": "direct"}))
        await asyncio.sleep(0.3)
        alice = _clone(client, tokens["alice"])
        status, dm, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme live?",
                                                                                "visibility": "direct"})
        seen = {}
        async with asyncio.timeout(15):
            while not {"update", "notification", "conversation"} <= set(seen):
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                event = json.loads(msg.data)
                seen[event["event"]] = (event["stream"], json.loads(event["payload"]))
        assert seen["update"][1]["id"] == dm["id"] and seen["update"][0] == ["user"]
        assert seen["notification"][1]["type"] == "mention" and seen["notification"][1]["status"]["id"] == dm["id"]
        assert seen["conversation"][1]["last_status"]["id"] == dm["id"] and seen["conversation"][0] == ["direct"]
        # deleting it is streamed too
        await alice.call("DELETE", f"/api/v1/statuses/{dm['id']}")
        async with asyncio.timeout(15):
            while True:
                event = json.loads((await ws.receive()).data)
                if event["event"] == "delete":
                    assert event["payload"] == dm["id"]
                    break
    # no token, a user stream: refused at the handshake, as Mastodon does
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.session.ws_connect(url + "?stream=user")
    assert refused.value.status == 401
    async with client.session.get(hub.cfg.base_url + "/api/v1/streaming/health") as resp:
        assert await resp.text() == "OK"


async def test_web_push_is_encrypted_for_the_subscriber_and_signed_with_vapid(world):
    """A local HTTP server plays the push service (a browser's push service cannot run offline)."""
    import http_ece
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    hub, client, _app, tokens = world
    received: list[tuple[dict, bytes]] = []

    async def endpoint(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=201)

    port = free_port()
    service = web.Application()
    service.router.add_post("/push/{id}", endpoint)
    runner = web.AppRunner(service)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        receiver = ec.generate_private_key(ec.SECP256R1())
        p256dh = base64.urlsafe_b64encode(receiver.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).rstrip(b"=").decode()
        auth = secrets.token_bytes(16)
        acme = _clone(client, tokens["acme"])
        status, sub, _ = await acme.call("POST", "/api/v1/push/subscription", json_body={
            "subscription": {"endpoint": f"http://127.0.0.1:{port}/push/1", "standard": True,
                             "keys": {"p256dh": p256dh, "auth": base64.urlsafe_b64encode(auth).decode()}},
            "data": {"alerts": {"mention": True, "follow": False}, "policy": "all"}})
        assert status == 200, sub
        assert sub["alerts"]["mention"] is True and sub["alerts"]["follow"] is False and sub["server_key"]
        assert isinstance(sub["id"], int) and sub["standard"] is True  # a number, as Tusky and Ice Cubes read it
        status, got, _ = await acme.call("GET", "/api/v1/push/subscription")
        assert got["id"] == sub["id"]
        alice = _clone(client, tokens["alice"])
        status, dm, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme ping",
                                                                                "visibility": "direct"})
        status, bob_acct, _ = await alice.call("GET", "/api/v1/accounts/lookup", params={"acct": "acme"})
        bob = _clone(client, tokens["bob"])
        await bob.call("POST", f"/api/v1/accounts/{bob_acct['id']}/follow")  # a follow: not wanted
        await hub.runner.drain()
        assert len(received) == 1, received
        headers, body = received[0]
        assert headers["Content-Encoding"] == "aes128gcm" and int(headers["TTL"]) > 0
        plain = http_ece.decrypt(body, private_key=receiver, auth_secret=auth, version="aes128gcm")
        payload = json.loads(plain)
        assert payload["notification_type"] == "mention" and "alice" in payload["title"].lower()
        assert payload["body"] == "@acme ping"
        assert payload["access_token"] == tokens["acme"]  # apps tell accounts apart by it, as with Mastodon
        status, note, _ = await acme.call("GET", f"/api/v1/notifications/{payload['notification_id']}")
        assert status == 200 and note["status"]["id"] == dm["id"]
        # RFC 8292: "vapid t=<JWT>, k=<server key>", the JWT signed (ES256) by that key for the push service
        scheme, _, params = headers["Authorization"].partition(" ")
        assert scheme == "vapid"
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        assert fields["k"] == sub["server_key"]
        head, claims, sig = fields["t"].split(".")
        decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        assert decoded["aud"] == f"http://127.0.0.1:{port}" and decoded["sub"].startswith("mailto:")
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), base64.urlsafe_b64decode(fields["k"] + "=" * (-len(fields["k"]) % 4)))
        key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                   f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        # update the subscription: mentions off
        status, updated, _ = await acme.call("PUT", "/api/v1/push/subscription",
                                             json_body={"data": {"alerts": {"mention": False}}})
        assert updated["alerts"]["mention"] is False
        await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme again", "visibility": "direct"})
        await hub.runner.drain()
        assert len(received) == 1
        # an app that does not say "standard" gets the aesgcm draft Mastodon sends (salt and key in headers)
        status, sub, _ = await acme.call("POST", "/api/v1/push/subscription", json_body={
            "subscription": {"endpoint": f"http://127.0.0.1:{port}/push/2",
                             "keys": {"p256dh": p256dh, "auth": base64.urlsafe_b64encode(auth).decode()}},
            "data": {"alerts": {"mention": True}}})
        assert sub["standard"] is False
        await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme legacy", "visibility": "direct"})
        await hub.runner.drain()
        assert len(received) == 2
        headers, body = received[1]
        assert headers["Content-Encoding"] == "aesgcm" and headers["Authorization"].startswith("WebPush ")
        salt = headers["Encryption"].removeprefix("salt=")
        crypto = dict(p.split("=", 1) for p in headers["Crypto-Key"].split(";"))
        assert crypto["p256ecdsa"] == sub["server_key"]
        unb64 = lambda v: base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))  # noqa: E731
        plain = http_ece.decrypt(body, private_key=receiver, auth_secret=auth, salt=unb64(salt),
                                 dh=unb64(crypto["dh"]), version="aesgcm")
        assert json.loads(plain)["body"] == "@acme legacy"
        status, _, _ = await acme.call("DELETE", "/api/v1/push/subscription")
        status, _, _ = await acme.call("GET", "/api/v1/push/subscription")
        assert status == 404
        # bad subscriptions are refused
        status, err, _ = await acme.call("POST", "/api/v1/push/subscription", json_body={
            "subscription": {"endpoint": "http://127.0.0.1/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}})
        assert status == 422
    finally:
        await runner.cleanup()


async def test_sign_up_from_an_app_follows_the_instance_rules(world):
    hub, client, app, _tokens = world
    status, body, _ = await client.call("POST", "/oauth/token", token=None, data={
        "client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "client_credentials",
        "scope": "read write"})
    app_token = body["access_token"]
    status, err, _ = await client.call("POST", "/api/v1/accounts", token=app_token, json_body={
        "username": "newbie", "password": "a long password", "email": "newbie@example.org"})
    assert status == 422 and "agreement" in err["error"]
    status, token, _ = await client.call("POST", "/api/v1/accounts", token=app_token, json_body={
        "username": "newbie", "password": "a long password", "email": "newbie@example.org", "agreement": True})
    assert status == 200, token
    status, me, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=token["access_token"])
    assert me["username"] == "newbie" and me["roundtable"]["type"] == "Person"
    status, err, _ = await client.call("POST", "/api/v1/accounts", token=app_token, json_body={
        "username": "newbie", "password": "a long password", "agreement": "true"})
    assert status == 422  # taken
    status, err, _ = await client.call("POST", "/api/v1/accounts", token=None, json_body={
        "username": "other", "password": "a long password", "agreement": True})
    assert status == 401
    # several at once
    status, many, _ = await client.call("GET", "/api/v1/accounts", token=app_token,
                                        params=[("id[]", me["id"]), ("id[]", "01aaaaaaaaaaaaaaaaaaaaaaaa")])
    assert [a["username"] for a in many] == ["newbie"]


async def test_a_password_reset_ends_every_app_token(world):
    import datetime as dt

    from hub.store import actors as actor_store
    from hub.store import web as web_store
    from hub.store.base import utcnow

    hub, client, _app, tokens = world
    async with hub.db.write() as conn:
        account = await actor_store.get_account_by_username(conn, "alice")
        await web_store.put_reset(conn, token_hash=sessions.digest("reset-token"), account_id=account.id,
                                  expires_at=utcnow() + dt.timedelta(hours=1))
    status, _, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=tokens["alice"])
    assert status == 200
    await sessions.finish_reset(hub, "reset-token", "a brand new password", user_agent=None)
    status, _, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=tokens["alice"])
    assert status == 401
    status, _, _ = await client.call("GET", "/api/v1/accounts/verify_credentials", token=tokens["bob"])
    assert status == 200


async def test_tokens_see_only_what_their_scopes_and_their_holders_allow(world):
    hub, client, app, tokens = world
    alice, acme = _clone(client, tokens["alice"]), _clone(client, tokens["acme"])
    status, dm, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme secret order 77",
                                                                            "visibility": "direct"})
    push_only = await password_token(client, app, "acme", scope="push")
    for path in (f"/api/v1/statuses/{dm['id']}", f"/api/v1/statuses/{dm['id']}/context",
                 f"/api/v1/accounts/{dm['account']['id']}/statuses"):
        status, err, _ = await client.call("GET", path, token=push_only)
        assert status == 403, (path, err)
    # an organization's token lives only while its member may speak for it
    owner = await access.acting_as(hub, "acme")
    await access.add_member(hub, owner, "bob", role="admin")
    bob_app = await make_app(client)
    browser = await sign_in(hub, "bob")
    try:
        url = (f"{hub.cfg.base_url}/oauth/authorize?response_type=code&client_id={bob_app['client_id']}"
               "&redirect_uri=urn:ietf:wg:oauth:2.0:oob&scope=read")
        _, _, page, _, _ = await consent(browser, url, actor="acme")
        code = re.search(r'value="([^"]{20,})" readonly', page).group(1)
    finally:
        await browser.close()
    status, body, _ = await client.call("POST", "/oauth/token", token=None, data={
        "grant_type": "authorization_code", "client_id": bob_app["client_id"],
        "client_secret": bob_app["client_secret"], "code": code})
    org_token = body["access_token"]
    status, convs, _ = await client.call("GET", "/api/v1/conversations", token=org_token)
    assert status == 200 and convs[0]["last_status"]["id"] == dm["id"]
    await access.add_member(hub, owner, "bob", role="agent")  # demoted, and not allowed apps
    status, _, _ = await client.call("GET", "/api/v1/conversations", token=org_token)
    assert status == 401
    await access.add_member(hub, owner, "bob", role="admin")
    await access.remove_member(hub, owner, "bob")
    await access.add_member(hub, owner, "bob", role="admin")  # back again: the old token stays dead
    status, _, _ = await client.call("GET", "/api/v1/conversations", token=org_token)
    assert status == 401
    async with hub.db.read() as conn:
        from hub.store import org as org_store

        audit = [r.action for r in await org_store.list_audit(conn, owner.actor.id)]
    assert "inbox.list" in audit  # reads through apps are in the organization's audit log
    # a message the owner removes from the conversation leaves notifications and the list too
    status, second, _ = await alice.call("POST", "/api/v1/statuses", json_body={
        "status": "please ignore", "in_reply_to_id": dm["id"], "visibility": "direct"})
    from hub.inbox import conversations as conv_service

    conversation = await conv_service.get_conversation(hub, dm["roundtable"]["conversation"])
    await conv_service.remove_message(hub, await access.acting_as(hub, "alice"), conversation, second["uri"])
    status, notes, _ = await acme.call("GET", "/api/v1/notifications")
    assert second["id"] not in [n["status"]["id"] for n in notes if n["status"]]
    status, convs, _ = await acme.call("GET", "/api/v1/conversations")
    assert convs[0]["last_status"] is None or convs[0]["last_status"]["id"] != second["id"]
    status, _, _ = await acme.call("GET", f"/api/v1/statuses/{second['id']}")
    assert status == 404


async def test_malformed_input_gets_clear_errors(world):
    hub, client, app, tokens = world
    alice = _clone(client, tokens["alice"])
    status, err, _ = await client.call("POST", "/api/v1/apps", json_body={
        "client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": 5})
    assert status == 400 and err["error"]
    for bad in ("https://a.example;report-uri https://x", "https://a b.example/", 'https://a.example/"x'):
        status, err, _ = await client.call("POST", "/api/v1/apps", json_body={"client_name": "x", "redirect_uris": bad})
        assert status == 422, bad
    status, err, _ = await client.call("POST", "/oauth/token", token=None, json_body={
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": "alice", "password": "password123", "scope": {"read": 1}})
    assert status == 400 and err["error"] == "invalid_scope"
    status, bob, _ = await alice.call("GET", "/api/v1/accounts/lookup", params={"acct": "bob"})
    for duration in ("abc", str(10 ** 15)):
        status, err, _ = await alice.call("POST", f"/api/v1/accounts/{bob['id']}/mute",
                                          json_body={"duration": duration})
        assert status == 422, duration
    status, err, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": {"x": 1}})
    assert status == 422 and "string" in err["error"]
    status, err, _ = await alice.call("GET", "/api/v1/timelines/home", params={"limit": "lots"})
    assert status == 400
    # plain PKCE is not taken: S256 only
    url = (f"{hub.cfg.base_url}/oauth/authorize?response_type=code&client_id={app['client_id']}"
           f"&redirect_uri=urn:ietf:wg:oauth:2.0:oob&scope=read&code_challenge={'a' * 43}&code_challenge_method=plain")
    browser = await sign_in(hub, "alice")
    try:
        async with browser.get(url) as resp:
            assert resp.status == 400 and "S256" in await resp.text()
    finally:
        await browser.close()
    # a JSON body that arrives in pieces is read whole
    body = json.dumps({"status": "sent in two parts"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.cfg.listen_port)
    writer.write((f"POST /api/v1/statuses HTTP/1.1\r\nHost: {hub.cfg.domain}\r\nAuthorization: Bearer "
                  f"{tokens['alice']}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n").encode() + body[:10])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.write(body[10:])
    await writer.drain()
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert b"sent in two parts" in response


async def test_bookmarks_reports_and_quiet_streams(world):
    hub, client, _app, tokens = world
    alice, bob = _clone(client, tokens["alice"]), _clone(client, tokens["bob"])
    status, post, _ = await bob.call("POST", "/api/v1/statuses", json_body={"status": "keep me"})
    status, kept, _ = await alice.call("POST", f"/api/v1/statuses/{post['id']}/bookmark")
    assert kept["bookmarked"] is True
    status, marks, _ = await alice.call("GET", "/api/v1/bookmarks")
    assert [s["id"] for s in marks] == [post["id"]]
    await alice.call("POST", f"/api/v1/statuses/{post['id']}/unbookmark")
    status, marks, _ = await alice.call("GET", "/api/v1/bookmarks")
    assert marks == []
    status, report, _ = await alice.call("POST", "/api/v1/reports", json_body={
        "account_id": post["account"]["id"], "status_ids": [post["id"]], "comment": "spam", "category": "spam"})
    assert status == 200 and report["status_ids"] == [post["id"]] and report["target_account"]["acct"] == "bob"
    from hub.store import moderation as moderation_store

    async with hub.db.read() as conn:
        stored = await moderation_store.list_reports(conn, resolved=False)
    assert any(r.content == "spam" and post["uri"] in r.target_uris for r in stored)  # on /admin/reports
    # hashtag and list streams are accepted quietly (an error frame would end a masto.js socket)
    url = hub.cfg.base_url.replace("http", "ws") + "/api/v1/streaming"
    async with client.session.ws_connect(url, protocols=(tokens["alice"],)) as ws:
        await ws.send_str(json.dumps({"type": "subscribe", "stream": "hashtag", "tag": "cats"}))
        await ws.send_str(json.dumps({"type": "subscribe", "stream": "user"}))
        await bob.call("POST", "/api/v1/statuses", json_body={"status": "@alice hello", "visibility": "direct"})
        async with asyncio.timeout(15):
            event = json.loads((await ws.receive()).data)
        assert "error" not in event and event["event"] in ("update", "notification")


async def test_someone_outside_a_published_conversation_answers_in_a_thread_of_their_own(world):
    hub, client, _app, tokens = world
    alice, bob, acme = (_clone(client, tokens[u]) for u in ("alice", "bob", "acme"))
    status, dm, _ = await alice.call("POST", "/api/v1/statuses", json_body={"status": "@acme is this covered?",
                                                                            "visibility": "direct"})
    from hub.inbox import conversations as conv_service

    conversation = await conv_service.get_conversation(hub, dm["roundtable"]["conversation"])
    await conv_service.set_public(hub, await access.acting_as(hub, "alice"), conversation, public=True)
    status, seen, _ = await bob.call("GET", f"/api/v1/statuses/{dm['id']}")
    assert status == 200  # published: anyone may read it
    status, reply, _ = await bob.call("POST", "/api/v1/statuses", json_body={
        "status": "@alice @acme psst, buy mine instead", "in_reply_to_id": dm["id"], "visibility": "direct"})
    assert status == 200 and reply["roundtable"]["conversation"] != dm["roundtable"]["conversation"]
    status, convs, _ = await acme.call("GET", "/api/v1/conversations")
    mine = next(c for c in convs if c["id"] == conversation.id)
    assert mine["last_status"]["id"] == dm["id"]  # bob is not in alice's conversation
