"""Instance administration over real HTTP with fake remote servers on real
sockets: the /admin pages are the administrators' only; a failing host and a
dead inbox are seen and retried from the page (and succeed once the remote
answers again, once); a blocked domain is refused before any key fetch and
gets no delivery; a Flag from another server becomes a report, stored once,
resolved from the page."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from hub import actors, moderation, outbox
from hub.errors import FetchError
from hub.federation import discovery
from hub.store import social
from tests.helpers import post_signed
from tests.integration.test_web_accounts import Browser
from tests.integration.test_web_inbox import signed_in


async def _world(hub):
    acme = await actors.create_local_actor(hub, "acme", kind="organization", name="Acme", password="acme-owner-1")
    await actors.create_local_actor(hub, "olga", kind="person", name="Olga", password="olga-secret-1")
    await moderation.set_admin(hub, "olga", True)
    return acme, await signed_in(hub, "olga", "olga-secret-1"), await signed_in(hub, "acme", "acme-owner-1")


async def _follower(hub, remote, acme, name):
    actor = remote.add_actor(name)
    row = await discovery.ensure_actor(hub.federation, actor.uri)
    async with hub.db.write() as conn:
        await social.put_follow(conn, follower_id=row.id, followee_id=acme.id, state="accepted", uri=None)
    return actor


async def _states(hub):
    async with hub.db.read() as conn:
        return [r[0] for r in await conn.execute(sa.text("SELECT state FROM jobs WHERE kind='ap.deliver' ORDER BY id"))]


async def test_only_administrators_reach_the_pages(served_hub):
    hub = served_hub
    _acme, root, other = await _world(hub)
    anon = Browser(hub.cfg.base_url)
    try:
        for path in ("/admin", "/admin/domains", "/admin/reports"):
            async with anon.session.get(hub.cfg.base_url + path, allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"].startswith("/login?next=")
            status, html, _ = await other.get(path)
            assert status == 403 and "instance&#39;s administrators" in html and "<h1>Not for you</h1>" in html
            status, html, _ = await root.get(path)
            assert status == 200 and "Administration of" in html
        status, html, _ = await other.post("/admin/domains", {"action": "block", "domain": "spam.example"},
                                           csrf_from="/home")
        assert status == 403
        assert 'href="/admin"' in (await root.get("/home"))[1] and 'href="/admin"' not in (await other.get("/home"))[1]
        assert await moderation.list_domain_blocks(hub) == []
    finally:
        for b in (root, other, anon):
            await b.close()


async def test_a_failing_host_and_a_dead_inbox_are_retried_from_the_page(served_hub, remote, remote2):
    hub = served_hub
    acme, root, other = await _world(hub)
    try:
        await _follower(hub, remote, acme, "zoe")
        await _follower(hub, remote2, acme, "yan")
        remote.inbox_status = 403  # refuses: a final failure
        remote2.gone = {f"{remote2.base}/users/yan/inbox", f"{remote2.base}/inbox"}  # 410: a dead inbox
        await outbox.post_note(hub, acme, "Our shop opens at nine")
        await hub.runner.drain()
        assert sorted(await _states(hub)) == ["failed", "gone"]
        status, html, _ = await root.get("/admin")
        assert status == 200 and remote.host in html and "403" in html
        dead = re.search(r'name="inbox" value="([^"]+)"', html).group(1)
        assert dead.startswith(remote2.base)
        job = re.search(r'name="job" value="([0-9a-z]{26})"', html).group(1)

        # both remotes recover; retrying from the page sends each once
        remote.inbox_status = 202
        remote2.gone = set()
        status, html, _ = await root.post("/admin", {"action": "retry_host", "host": remote.host}, csrf_from="/admin")
        assert status == 200 and f"1 deliveries to {remote.host} are queued again" in html
        status, html, _ = await root.post("/admin", {"action": "revive_inbox", "inbox": dead}, csrf_from="/admin")
        assert status == 200 and "1 deliveries it missed are queued" in html
        await hub.runner.drain()
        assert await _states(hub) == ["done", "done"]
        assert [r["json"]["type"] for r in remote.received][-1] == "Create"
        assert [r["json"]["type"] for r in remote2.received].count("Create") == 1
        # a job that succeeded is never sent again
        status, html, _ = await root.post("/admin", {"action": "retry_job", "job": job}, csrf_from="/admin")
        assert status == 404 and "never sent again" in html
        assert await _states(hub) == ["done", "done"]
        status, html, _ = await root.get("/admin")
        assert "Every host answers." in html
    finally:
        for b in (root, other):
            await b.close()


async def test_a_blocked_domain_is_refused_before_any_key_fetch_and_gets_nothing(served_hub, remote, session):
    hub = served_hub
    acme, root, other = await _world(hub)
    try:
        zoe = await _follower(hub, remote, acme, "zoe")
        # acme follows someone on another server, which is not blocked
        from hub.ids import new_id
        from hub.store import actors as actor_store

        async with hub.db.write() as conn:
            kept = await actor_store.upsert_remote_actor(conn, {
                "id": new_id(), "uri": "https://ok.example/users/kim", "type": "Person", "username": "kim",
                "domain": "ok.example", "inbox_uri": "https://ok.example/users/kim/inbox"}, [])
            await social.put_follow(conn, follower_id=acme.id, followee_id=kept, state="accepted", uri=None)
            zoe_row = await actor_store.get_actor_by_uri(conn, zoe.uri)
            await social.put_follow(conn, follower_id=acme.id, followee_id=zoe_row.id, state="accepted", uri=None)
        like = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow", "actor": zoe.uri,
                "object": acme.uri}
        hub.http.check_url(f"{remote.base}/users/zoe/inbox")  # allowed before: a verdict the client keeps
        status, html, _ = await root.post("/admin/domains", {"action": "block", "domain": hub.cfg.domain},
                                          csrf_from="/admin/domains")
        assert status == 400 and "own domain" in html
        status, html, _ = await root.post("/admin/domains", {"action": "block", "domain": f"http://{remote.host}/@zoe",
                                                             "reason": "spam waves"}, csrf_from="/admin/domains")
        assert status == 200 and f"{remote.host} is blocked" in html and "spam waves" in html
        async with hub.db.read() as conn:  # the follows with the blocked server end, both ways; others stay
            assert not await social.is_following(conn, follower_id=zoe_row.id, followee_id=acme.id)
            assert not await social.is_following(conn, follower_id=acme.id, followee_id=zoe_row.id)
            assert await social.is_following(conn, follower_id=acme.id, followee_id=kept)
        fetched = len(remote.requests)
        status, text = await post_signed(session, hub.uris.inbox("acme"), {**like, "id": f"{remote.base}/f/1"}, zoe)
        assert status == 403 and "does not accept requests" in text
        assert len(remote.requests) == fetched  # not even its key was fetched
        await outbox.post_note(hub, acme, "for everyone but them")
        await hub.runner.drain()
        assert await _states(hub) == [] and not [r for r in remote.received if r["json"]["type"] == "Create"]
        # a delivery queued before the block, or any fetch, is refused by the HTTP client itself
        for url in (f"{remote.base}/users/zoe/inbox", f"{remote.base}/inbox"):
            with pytest.raises(FetchError, match="blocked"):
                hub.http.check_url(url)

        status, html, _ = await root.post("/admin/domains", {"action": "unblock", "domain": remote.host},
                                          csrf_from="/admin/domains")
        assert status == 200 and "no longer blocked" in html
        status, _text = await post_signed(session, hub.uris.inbox("acme"), {**like, "id": f"{remote.base}/f/2"}, zoe)
        assert status == 202
    finally:
        for b in (root, other):
            await b.close()


async def test_a_flag_about_our_actor_becomes_one_report_resolved_from_the_page(served_hub, remote, session):
    hub = served_hub
    acme, root, other = await _world(hub)
    try:
        note = await outbox.post_note(hub, acme, "Buy now!!!")
        mod = remote.add_actor("instance.actor")
        flag = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/reports/7", "type": "Flag",
                "actor": mod.uri, "object": [acme.uri, note.uri, f"{remote.base}/users/other"],
                "content": "Spam sent to our users"}
        for _ in range(2):  # the same report twice: stored once
            status, _text = await post_signed(session, hub.uris.shared_inbox(), flag, mod)
            assert status == 202
        about_nothing = {**flag, "id": f"{remote.base}/reports/8", "object": [f"{remote.base}/users/other"]}
        assert (await post_signed(session, hub.uris.shared_inbox(), about_nothing, mod))[0] == 202
        await hub.runner.drain()
        reports = await moderation.list_reports(hub)
        assert len(reports) == 1 and reports[0]["targets"] == [acme.uri, note.uri]
        assert reports[0]["content"] == "Spam sent to our users" and reports[0]["reporter"] == mod.uri

        status, html, _ = await root.get("/admin/reports")
        assert status == 200 and "<title>(1) Reports" in html and "Spam sent to our users" in html and note.uri in html
        status, html, _ = await root.post("/admin/reports", {"action": "resolve", "report": reports[0]["id"]},
                                          csrf_from="/admin/reports")
        assert status == 200 and "No open report." in html and "by olga" in html
        assert (await moderation.list_reports(hub, resolved=True))[0]["resolved_by"] == "olga"
    finally:
        for b in (root, other):
            await b.close()
