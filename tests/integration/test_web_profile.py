"""A profile edited from the settings page, its links verified with rel="me"
against real pages served on loopback, and the public profile page with its
microformats."""

from __future__ import annotations

import re

from aiohttp import web

from hub import actors, links
from tests.helpers import free_port
from tests.integration.test_web_accounts import Browser
from tests.integration.test_web_inbox import signed_in


def test_rel_me_is_read_from_links_and_anchors_whatever_their_order_of_attributes():
    page = ('<html><head><link href="https://hub.example/users/acme/" rel="me"></head><body>'
            '<a rel="nofollow me" href="https://other.example/@x">x</a><a href="https://hub.example/users/acme">no rel</a>')
    assert links.rel_me_links(page) == ["https://hub.example/users/acme/", "https://other.example/@x"]
    assert links.links_back(page, ["https://hub.example/users/acme"])
    assert not links.links_back('<a href="https://hub.example/users/acme">me</a>', ["https://hub.example/users/acme"])
    assert links.link_of('<a href="https://blog.example/about" rel="nofollow">blog.example/about</a>') == "https://blog.example/about"
    assert links.link_of("https://plain.example/") == "https://plain.example/"
    assert links.link_of("Berlin") is None


async def test_profile_links_are_verified_only_when_their_page_links_back(served_hub):
    hub = served_hub
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme", password="acme-owner-1")
    actor_uri = hub.uris.actor("acme")
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    pages = {
        "/about": f'<!doctype html><title>Acme</title><a rel="me" href="{actor_uri}">Acme on the fediverse</a>',
        "/elsewhere": '<!doctype html><a rel="me" href="https://someone.else/@acme">not us</a>',
    }

    async def serve(request: web.Request) -> web.Response:
        if request.path not in pages:
            raise web.HTTPNotFound()
        return web.Response(text=pages[request.path], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    owner = await signed_in(hub, "acme", "acme-owner-1")
    anon = Browser(hub.cfg.base_url)
    page = "/settings/actor/acme"
    try:
        status, html, _ = await owner.post(page, {
            "action": "profile", "name": "Acme Kettles", "summary": "We make kettles.", "discoverable": "on",
            "field_name_0": "Website", "field_value_0": f"{site}/about",
            "field_name_1": "Elsewhere", "field_value_1": f"{site}/elsewhere",
            "field_name_2": "Gone", "field_value_2": f"{site}/missing",
            "field_name_3": "City", "field_value_3": "Berlin"}, csrf_from=page)
        assert status == 200 and "The profile is saved" in html
        await hub.runner.drain()
        status, html, resp = await anon.get("/users/acme")
        assert status == 200 and "Acme Kettles" in html and "We make kettles." in html
        verified = re.findall(r'<dd class="verified">(.*?)</dd>', html, re.S)
        assert len(verified) == 1 and f"{site}/about" in verified[0] and "✓ verified" in verified[0]
        assert html.count("✓ verified") == 1  # not the page naming someone else, nor the missing one
        assert f'rel="me nofollow noopener noreferrer" href="{site}/about"' in html  # our side of the link
        assert 'class="profile h-card"' in html and 'class="p-name"' in html
        status, html, _ = await owner.get(page)
        assert html.count("✓ verified") == 1 and 'value="Berlin"' in html

        # the page stops linking back: the next change of fields checks again
        pages["/about"] = "<!doctype html><p>moved</p>"
        await owner.post(page, {"action": "profile", "name": "Acme Kettles", "field_name_0": "Website",
                                "field_value_0": f"{site}/about", "field_name_1": "Shop",
                                "field_value_1": f"{site}/shop"}, csrf_from=page)
        await hub.runner.drain()
        status, html, _ = await anon.get("/users/acme")
        assert "✓ verified" not in html and "Shop" in html
        status, html, _ = await owner.post(page, {"action": "profile", "field_name_0": "Half"}, csrf_from=page)
        assert status == 400 and "needs a name and a value" in html
    finally:
        await owner.close()
        await anon.close()
        await runner.cleanup()
