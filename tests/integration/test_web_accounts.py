"""Accounts on the web pages, over real HTTP with a cookie jar as a browser
keeps one: sign up, sign in by username or email, sign out, password change,
CSRF on every form, rate-limited sign-in, invitations when sign-up is closed.
(Pages in a real Chromium come with the rest of the web pages.)"""

from __future__ import annotations

import dataclasses
import re

import aiohttp
import pytest

from hub import actors, sessions
from hub.inbox import access, conversations

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class _Relay:
    """The hub's mail provider: a real aiosmtpd server keeping what it is handed."""

    def __init__(self):
        import threading

        self.got: list[tuple[list[str], object]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        import email as email_lib
        import email.policy

        with self.lock:
            self.got.append((list(envelope.rcpt_tos),
                             email_lib.message_from_bytes(envelope.original_content, policy=email.policy.default)))
        return "250 OK"

    def mails(self) -> list:
        with self.lock:
            return list(self.got)


@pytest.fixture
async def relayed_hub(served_hub):
    """The served hub, sending its mail through a real aiosmtpd relay on a free port."""
    from aiosmtpd.controller import Controller

    from hub.bridges.email import EmailConnector
    from tests.helpers import free_port

    relay = _Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    hub = served_hub
    object.__setattr__(hub, "cfg", dataclasses.replace(hub.cfg, smtp_relay=f"127.0.0.1:{controller.port}"))
    hub.bridges.add_connector(EmailConnector(hub.cfg))  # the hub's email bridge, with that relay
    try:
        yield hub, relay
    finally:
        controller.stop()


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str):
        async with self.session.get(self.base + path, allow_redirects=True) as resp:
            return resp.status, await resp.text(), resp

    async def post(self, path: str, data: dict, *, csrf_from: str | None = None, follow: bool = False, **headers):
        form = dict(data)
        if csrf_from is not None:
            _status, html, _r = await self.get(csrf_from)
            form["csrf_token"] = CSRF.search(html).group(1)
        async with self.session.post(self.base + path, data=form, allow_redirects=follow, headers=headers) as resp:
            return resp.status, await resp.text(), resp

    async def close(self):
        await self.session.close()


@pytest.fixture
async def browser(served_hub):
    b = Browser(served_hub.cfg.base_url)
    yield b
    await b.close()


async def test_sign_up_then_every_page_knows_who_you_are(served_hub, browser):
    status, html, _ = await browser.get("/")
    assert status == 200 and 'href="/login"' in html and "Sign in" in html  # signed out: a way in
    status, _html, resp = await browser.post("/signup", {
        "username": "carol", "name": "Carol", "email": "Carol@Example.com", "password": "correct horse",
        "password2": "correct horse"}, csrf_from="/signup")
    assert status == 303 and resp.headers["Location"] == "/home"
    cookie = resp.cookies.get("rt_session")
    assert cookie is not None and cookie["httponly"] and cookie["samesite"] == "Lax"
    status, html, resp = await browser.get("/home")
    assert status == 200 and "Signed in as" in html and ">carol<" in html
    assert resp.headers["Cache-Control"] == "private, no-store" and resp.headers["X-Frame-Options"] == "DENY"
    status, html, _ = await browser.get("/")
    assert ">carol<" in html and 'action="/logout"' in html
    # the account is a customer with a real actor
    async with served_hub.db.read() as conn:
        from hub.store import actors as actor_store

        actor = await actor_store.get_local_actor(conn, "carol")
        account = await actor_store.get_account_by_username(conn, "carol")
    assert actor.type == "Person" and account.email == "carol@example.com"
    assert account.password_hash.startswith("$argon2")

    # sign out: the session is gone on the server, not only the cookie
    token = cookie.value
    status, _html, resp = await browser.post("/logout", {}, csrf_from="/home")
    assert status == 303
    assert await sessions.session_of(served_hub, token) is None
    status, html, _ = await browser.get("/home")
    assert "Sign in" in html and "Signed in as" not in html  # sent to the sign-in page


async def test_sign_in_by_username_or_email_and_the_home_lists_conversations(served_hub, browser):
    hub = served_hub
    await actors.create_local_actor(hub, "dana", kind="person", name="Dana", email="dana@example.com",
                                    password="dana-secret-1")
    acme = await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
    alice = await actors.create_local_actor(hub, "alice", kind="person", name="Alice")
    await conversations.start(hub, await access.acting_as(hub, "alice"), [acme], "Where is my parcel?",
                              subject="Parcel 42")
    assert alice is not None
    status, html, _ = await browser.post("/login", {"login": "dana@example.com", "password": "wrong"},
                                         csrf_from="/login")
    assert status == 401 and "wrong username or password" in html
    status, _html, resp = await browser.post("/login", {"login": "DANA@example.com", "password": "dana-secret-1",
                                                        "next": "/home"}, csrf_from="/login")
    assert status == 303 and resp.headers["Location"] == "/home"
    status, html, _ = await browser.get("/home")
    assert "Inbox of @acme" in html and "Parcel 42" in html and "agent" in html
    # an open redirect is not possible through next=
    await browser.post("/logout", {}, csrf_from="/home")
    status, _html, resp = await browser.post("/login", {"login": "dana", "password": "dana-secret-1",
                                                        "next": "//evil.example/"}, csrf_from="/login")
    assert status == 303 and resp.headers["Location"] == "/home"


async def test_every_form_needs_its_csrf_token_and_this_sites_origin(served_hub, browser):
    hub = served_hub
    await actors.create_local_actor(hub, "erin", kind="person", password="erin-secret-1")
    status, html, _ = await browser.post("/login", {"login": "erin", "password": "erin-secret-1"})
    assert status == 403  # no token
    status, html, _ = await browser.post("/login", {"login": "erin", "password": "erin-secret-1",
                                                    "csrf_token": "forged"})
    assert status == 403
    status, _h, _r = await browser.post("/login", {"login": "erin", "password": "erin-secret-1"}, csrf_from="/login",
                                        Origin="https://evil.example")
    assert status == 403
    status, _h, _r = await browser.post("/login", {"login": "erin", "password": "erin-secret-1"}, csrf_from="/login")
    assert status == 303
    # signed in, the session's own token is required
    status, _h, _r = await browser.post("/logout", {"csrf_token": "forged"})
    assert status == 403
    status, html, _ = await browser.get("/home")
    assert "Signed in as" in html  # still signed in


async def test_sign_in_is_rate_limited_and_a_password_change_ends_other_sessions(served_hub, browser):
    hub = served_hub
    await actors.create_local_actor(hub, "finn", kind="person", password="finn-secret-1")
    for _ in range(hub.cfg.login_max_failures):
        status, _h, _r = await browser.post("/login", {"login": "finn", "password": "nope"}, csrf_from="/login")
        assert status == 401
    status, html, resp = await browser.post("/login", {"login": "finn", "password": "finn-secret-1"},
                                            csrf_from="/login")
    assert status == 429 and resp.headers["Retry-After"] and "too many" in html  # even the right password waits

    # another browser, signed in before; then this one changes the password
    from hub.store import web as web_store

    async with hub.db.write() as conn:
        await web_store.clear_failures(conn, "user:finn")
        await web_store.clear_failures(conn, "ip:127.0.0.1")
    other = Browser(hub.cfg.base_url)
    try:
        assert (await other.post("/login", {"login": "finn", "password": "finn-secret-1"}, csrf_from="/login"))[0] == 303
        assert (await browser.post("/login", {"login": "finn", "password": "finn-secret-1"}, csrf_from="/login"))[0] == 303
        status, html, _ = await browser.post("/settings/password", {"current": "wrong", "new": "finn-secret-2",
                                                                    "new2": "finn-secret-2"},
                                             csrf_from="/settings/password")
        assert status == 401
        status, html, _ = await browser.post("/settings/password", {"current": "finn-secret-1", "new": "finn-secret-2",
                                                                    "new2": "finn-secret-2"},
                                             csrf_from="/settings/password")
        assert status == 200 and "1 other session" in html
        assert "Signed in as" in (await browser.get("/home"))[1]  # this one stays
        assert "Signed in as" not in (await other.get("/home"))[1]  # the other one is out
    finally:
        await other.close()


async def test_with_sign_up_closed_an_invitation_is_needed_once(served_hub, browser):
    hub = served_hub
    object.__setattr__(hub, "cfg", dataclasses.replace(hub.cfg, signups=False))
    form = {"username": "gus", "password": "gus-secret-1", "password2": "gus-secret-1"}
    status, html, _ = await browser.post("/signup", form, csrf_from="/signup")
    assert status == 403 and "invitation" in html
    code = await sessions.create_invitation(hub, created_by_id=None)
    status, _h, _r = await browser.post("/signup", {**form, "invitation": code}, csrf_from="/signup")
    assert status == 303
    other = Browser(hub.cfg.base_url)
    try:
        status, html, _ = await other.post("/signup", {"username": "hal", "password": "hal-secret-1",
                                                       "password2": "hal-secret-1", "invitation": code},
                                           csrf_from="/signup")
        assert status == 403 and "not valid" in html  # used once
    finally:
        await other.close()


async def test_a_forgotten_password_is_reset_by_a_link_mailed_through_the_relay(relayed_hub, browser):
    """The relay is a real aiosmtpd server standing in for the hub's mail provider."""
    hub, relay = relayed_hub
    await actors.create_local_actor(hub, "ivy", kind="person", email="ivy@example.com", password="ivy-old-pass")
    other = Browser(hub.cfg.base_url)
    assert (await other.post("/login", {"login": "ivy", "password": "ivy-old-pass"}, csrf_from="/login"))[0] == 303
    status, html, _ = await browser.get("/login")
    assert 'href="/reset"' in html
    # an unknown address gets the same answer, and no mail
    status, html_unknown, _ = await browser.post("/reset", {"email": "nobody@example.com"}, csrf_from="/reset")
    status2, html_known, _ = await browser.post("/reset", {"email": "Ivy@Example.com"}, csrf_from="/reset")
    assert status == status2 == 200 and "a link to choose a new password is on its way" in html_known
    assert html_unknown.replace("nobody@example.com", "X") == html_known.replace("Ivy@Example.com", "X")
    ((rcpts, mail),) = relay.mails()
    assert rcpts == ["ivy@example.com"] and mail["Auto-Submitted"] == "auto-generated"
    link = re.search(r"(http://\S+/reset/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    path = link.replace(hub.cfg.base_url, "")
    status, html, _ = await browser.post(path, {"new": "ivy-new-pass", "new2": "ivy-new-pass"}, csrf_from=path)
    assert status == 303
    assert "Signed in as" in (await browser.get("/home"))[1]
    assert "Signed in as" not in (await other.get("/home"))[1]  # every other session ended
    status, html, _ = await browser.get(path)
    assert status == 410 and "expired or was used" in html  # once only
    await other.post("/login", {"login": "ivy", "password": "ivy-old-pass"}, csrf_from="/login")
    assert "Signed in as" not in (await other.get("/home"))[1]
    assert (await other.post("/login", {"login": "ivy", "password": "ivy-new-pass"}, csrf_from="/login"))[0] == 303
    await other.close()


async def test_two_factor_sign_in_with_an_authenticator_code(served_hub, browser):
    import pyotp

    hub = served_hub
    await actors.create_local_actor(hub, "jo", kind="person", password="jo-secret-1")
    assert (await browser.post("/login", {"login": "jo", "password": "jo-secret-1"}, csrf_from="/login"))[0] == 303
    status, html, _ = await browser.get("/settings/2fa")
    assert status == 200 and 'src="data:image/svg+xml;base64,' in html
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', html).group(1)
    status, html, _ = await browser.post("/settings/2fa", {"action": "enable", "secret": secret, "code": "000000"},
                                         csrf_from="/settings/2fa")
    assert status == 400 and "not right" in html
    status, html, _ = await browser.post("/settings/2fa", {"action": "enable", "secret": secret,
                                                           "code": pyotp.TOTP(secret).now()}, csrf_from="/settings/2fa")
    assert status == 200 and "is on" in html
    await browser.post("/logout", {}, csrf_from="/home")

    # the password alone is not enough any more
    status, _h, resp = await browser.post("/login", {"login": "jo", "password": "jo-secret-1"}, csrf_from="/login")
    assert status == 303 and resp.headers["Location"].startswith("/login/code")
    status, html, _ = await browser.get("/home")
    assert "Signed in as" not in html  # not yet
    status, html, _ = await browser.post("/login/code", {"code": "123456"}, csrf_from="/login/code")
    assert status == 401 and "not right" in html
    status, _h, resp = await browser.post("/login/code", {"code": pyotp.TOTP(secret).now(), "next": "/home"},
                                          csrf_from="/login/code")
    assert status == 303 and resp.headers["Location"] == "/home"
    assert "Signed in as" in (await browser.get("/home"))[1]
    # switching it off needs the password
    status, html, _ = await browser.post("/settings/2fa", {"action": "disable", "password": "nope"},
                                         csrf_from="/settings/2fa")
    assert status == 401
    status, html, _ = await browser.post("/settings/2fa", {"action": "disable", "password": "jo-secret-1"},
                                         csrf_from="/settings/2fa")
    assert status == 200 and "is off" in html


async def test_a_profiles_links_are_marked_rel_me_for_verification(served_hub, browser):
    hub = served_hub
    actor = await actors.create_local_actor(hub, "kim", kind="person", name="Kim")
    from hub.text import plain_to_html

    value = plain_to_html("https://kim.example/").removeprefix("<p>").removesuffix("</p>")  # as `actor set --field` does
    await actors.update_profile(hub, actor, fields=[{"name": "Site", "value": value}])
    status, html, _ = await browser.get("/users/kim")
    assert status == 200 and 'class="profile h-card"' in html
    link = re.search(r'<dd><a [^>]*href="https://kim.example/"[^>]*>', html).group(0)
    assert 'rel="me nofollow noopener noreferrer"' in link and link.count("rel=") == 1


async def test_the_email_address_changes_only_with_the_password_and_never_to_anothers(served_hub, browser):
    from hub import actors

    await actors.create_local_actor(served_hub, "gwen", kind="person", email="gwen@example.org", password="gwen-secret-1")
    await actors.create_local_actor(served_hub, "hal", kind="person", email="hal@example.org", password="hal-secret-1")
    status, _h, _r = await browser.post("/login", {"login": "gwen", "password": "gwen-secret-1"}, csrf_from="/login")
    assert status == 303
    page = "/settings/password"
    status, html, _ = await browser.get(page)
    assert "gwen@example.org" in html
    for data, code, words in (({"email": "new@example.org", "password": "wrong"}, 401, "password is not right"),
                              ({"email": "hal@example.org", "password": "gwen-secret-1"}, 409, "another login"),
                              ({"email": "not an address", "password": "gwen-secret-1"}, 400, "invalid email")):
        status, html, _ = await browser.post(page, {"action": "email", **data}, csrf_from=page)
        assert status == code and words in html
    status, html, _ = await browser.post(page, {"action": "email", "email": "Gwen@New.example", "password": "gwen-secret-1"},
                                         csrf_from=page)
    assert status == 200 and "Mail now goes to Gwen@New.example" in html
    async with served_hub.db.read() as conn:
        from hub.store import actors as actor_store

        assert (await actor_store.get_account_by_username(conn, "gwen")).email == "Gwen@New.example"
        assert (await actor_store.get_account_by_username(conn, "hal")).email == "hal@example.org"


async def test_a_new_email_address_changes_only_once_a_link_mailed_to_it_is_opened(relayed_hub, browser):
    """Through a real aiosmtpd relay: the new address gets a link, the old one a notice; the address is the
    old one until the link's button is pressed (opening the link alone changes nothing); once only."""
    from hub.store import actors as actor_store

    hub, relay = relayed_hub
    await actors.create_local_actor(hub, "jo", kind="person", email="jo@old.example", password="jo-secret-12")
    assert (await browser.post("/login", {"login": "jo", "password": "jo-secret-12"}, csrf_from="/login"))[0] == 303

    async def email_now():
        async with hub.db.read() as conn:
            return (await actor_store.get_account_by_username(conn, "jo")).email

    page = "/settings/password"
    status, html, _ = await browser.post(page, {"action": "email", "email": "jo@new.example",
                                                "password": "jo-secret-12"}, csrf_from=page)
    assert status == 200 and "A link to confirm is on its way to jo@new.example" in html
    assert await email_now() == "jo@old.example"  # not yet
    by_rcpt = {tuple(r): m for r, m in relay.mails()}
    assert set(by_rcpt) == {("jo@new.example",), ("jo@old.example",)}
    assert "jo@new.example" in by_rcpt[("jo@old.example",)].get_body(("plain",)).get_content()  # the old is told
    link = re.search(r"(http://\S+/settings/email/\S+)",
                     by_rcpt[("jo@new.example",)].get_body(("plain",)).get_content()).group(1)
    path = link.replace(hub.cfg.base_url, "")
    anon = Browser(hub.cfg.base_url)  # the link is opened wherever the mail is read
    status, html, _ = await anon.get(path)
    assert status == 200 and "jo@new.example" in html and await email_now() == "jo@old.example"
    status, html, _ = await anon.post(path, {}, csrf_from=path)
    assert status == 200 and "now go to <strong>jo@new.example</strong>" in html
    assert await email_now() == "jo@new.example"
    status, html, _ = await anon.get(path)
    assert status == 410 and "expired or was used" in html  # once only
    # a pending change ends when the password changes (whoever asked for it knew the old one)
    await browser.post(page, {"action": "email", "email": "jo@third.example", "password": "jo-secret-12"},
                       csrf_from=page)
    (link2,) = [re.search(r"(http://\S+/settings/email/\S+)", m.get_body(("plain",)).get_content()).group(1)
                for r, m in relay.mails() if r == ["jo@third.example"]]
    status, _, _ = await browser.post(page, {"current": "jo-secret-12", "new": "jo-secret-13", "new2": "jo-secret-13"},
                                      csrf_from=page)
    status, html, _ = await anon.get(link2.replace(hub.cfg.base_url, ""))
    assert status == 410 and await email_now() == "jo@new.example"
    await anon.close()
