"""Outbound delivery over real HTTP to FakeRemote inboxes: signatures the
receiver can check, fan-out by shared inbox, the retry policy, gone
inboxes, the RFC 9421 double knock, and crash safety of the job queue."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from multidict import CIMultiDict

from hub import actors, crypto, outbox
from hub.federation import discovery, httpsig
from hub.jobs import Runner
from hub.store import jobs as job_store
from hub.store import social
from hub.store.base import utcnow


@pytest.fixture
async def acme(served_hub):
    return await actors.create_local_actor(served_hub, "acme", kind="organization", name="Acme")


async def follower(hub, remote, name: str, style: str = "mastodon"):
    actor = remote.add_actor(name, style)
    row = await discovery.ensure_actor(hub.federation, actor.uri)
    return actor, row


async def add_followers(hub, followee, rows):
    async with hub.db.write() as conn:
        for row in rows:
            await social.put_follow(conn, follower_id=row.id, followee_id=followee.id, state="accepted", uri=None)


def verify_received(hub, request, body: bytes, signer) -> httpsig.ParsedSignature:
    """Check a delivery the way a receiving server would."""
    headers = CIMultiDict(request["headers"])
    url = f"http://{headers['Host']}{request['path']}"
    parsed = httpsig.parse_signature(method="POST", path_qs=request["path"], target_uri=url, headers=headers)
    httpsig.check_coverage(parsed, method="POST")
    httpsig.check_digest(headers, body)
    key = crypto.load_public_pem(crypto.public_pem_of(crypto.load_private_pem(signer.private_key_pem)))
    assert httpsig.verify_parsed(parsed, key)
    assert parsed.key_id == hub.uris.key_id(signer.username)
    return parsed


async def test_public_post_fans_out_once_per_shared_inbox_and_verifies(served_hub, remote, remote2, acme):
    rows = [(await follower(served_hub, remote, n))[1] for n in ("a", "b", "c")]
    gts = [(await follower(served_hub, remote2, n, "gotosocial"))[1] for n in ("d", "e")]  # no shared inbox
    await add_followers(served_hub, acme, rows + gts)
    note = await outbox.post_note(served_hub, acme, "hello followers")
    await served_hub.runner.drain()
    assert [r["path"] for r in remote.received] == ["/inbox"]
    assert sorted(r["path"] for r in remote2.received) == ["/users/d/inbox", "/users/e/inbox"]
    for request in remote.received + remote2.received:
        body = request["body"]
        doc = json.loads(body)
        assert doc["type"] == "Create" and doc["object"]["id"] == note.uri
        assert doc["object"]["context"] and doc["object"]["conversation"] == doc["object"]["context"]
        assert len(body) < 64 * 1024
        assert request["headers"]["Content-Type"].startswith("application/activity+json")
        parsed = verify_received(served_hub, request, body, acme)
        assert parsed.scheme == "cavage"  # unknown software: the universally accepted scheme


async def test_direct_message_names_and_tags_every_addressee(served_hub, remote, acme):
    bob, bob_row = await follower(served_hub, remote, "bob")
    await outbox.post_note(served_hub, acme, "your order shipped", visibility="direct", recipients=[bob_row])
    await served_hub.runner.drain()
    (request,) = remote.received
    note = request["json"]["object"]
    assert note["to"] == [bob.uri] and note["cc"] == []
    assert note["tag"] == [{"type": "Mention", "href": bob.uri, "name": f"@bob@{remote.host}"}]
    assert f"@bob@{remote.host}" in note["source"]["content"]
    assert 'class="u-url mention"' in note["content"]


async def test_followers_only_post_goes_to_followers_only(served_hub, remote, remote2, acme):
    _, fan = await follower(served_hub, remote, "fan")
    await follower(served_hub, remote2, "stranger")
    await add_followers(served_hub, acme, [fan])
    await outbox.post_note(served_hub, acme, "members only", visibility="followers")
    await served_hub.runner.drain()
    assert len(remote.received) == 1 and remote2.received == []
    note = remote.received[0]["json"]["object"]
    assert note["to"] == [acme.followers_uri]


async def test_server_errors_are_retried_honouring_retry_after(served_hub, remote, acme):
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    remote.inbox_status = [503, 500, 202]
    remote.inbox_headers = {"Retry-After": "1"}
    note = await outbox.post_note(served_hub, acme, "try again")
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        (job,) = await job_store.list_deliveries(conn, (await job_store.list_activity_ids_for_object(conn, note.uri))[0])
    assert job.state == "queued" and job.last_status == 503
    # Retry-After (1 s) is longer than the first wait of the schedule (0.2 s).
    assert job.next_try_at - utcnow() > dt.timedelta(seconds=0.7)
    for _ in range(40):
        await asyncio.sleep(0.1)
        await served_hub.runner.drain()
        async with served_hub.db.read() as conn:
            job = await job_store.get_job(conn, job.id)
        if job.state == "done":
            break
    assert job.state == "done" and job.attempts == 3
    async with served_hub.db.read() as conn:
        attempts = await job_store.list_job_attempts(conn, job.id)
    assert [a.status_code for a in attempts] == [503, 500, 202]
    assert [r["status"] for r in remote.received] == [503, 500, 202]
    # the same bytes every time, each attempt with a valid signature of its own time
    assert len({r["body"] for r in remote.received}) == 1
    for request in remote.received:
        verify_received(served_hub, request, request["body"], acme)
        httpsig.check_freshness(
            httpsig.parse_signature(method="POST", path_qs=request["path"], target_uri="", headers=request["headers"]),
            request["headers"], now=dt.datetime.now(dt.timezone.utc), max_age_s=5, max_future_s=1,
        )


@pytest.mark.parametrize(("status", "state"), [(410, "gone"), (404, "gone"), (400, "failed"), (403, "failed")])
async def test_client_errors_are_final(served_hub, remote, acme, status, state):
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    remote.inbox_status = status
    await outbox.post_note(served_hub, acme, "one")
    await served_hub.runner.drain()
    await asyncio.sleep(0.5)
    await served_hub.runner.drain()
    assert len(remote.received) == 1
    await outbox.post_note(served_hub, acme, "two")
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        states = [r[0] for r in await conn.execute(sa.text("SELECT state FROM jobs WHERE kind='ap.deliver' ORDER BY id"))]
    assert states == [state, state]
    # a gone inbox is not contacted again; a refusing one is (the next activity may be fine)
    assert len(remote.received) == (1 if state == "gone" else 2)


async def test_retries_stop_after_the_schedule(served_hub, remote, acme):
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    remote.inbox_status = 502
    await outbox.post_note(served_hub, acme, "never arrives")
    for _ in range(60):
        await served_hub.runner.drain()
        async with served_hub.db.read() as conn:
            states = [r[0] for r in await conn.execute(sa.text("SELECT state FROM jobs WHERE kind='ap.deliver'"))]
        if states == ["failed"]:
            break
        await asyncio.sleep(0.1)
    assert states == ["failed"]
    assert len(remote.received) == len(served_hub.cfg.retry_schedule_s) + 1


@pytest.mark.parametrize("refusal", [401, 400, 500])
async def test_rfc9421_double_knock_falls_back_to_cavage_and_remembers(served_hub, remote, acme, refusal):
    remote.nodeinfo_software = "mastodon"  # 4.5.0: believed to read RFC 9421
    remote.reject_rfc9421 = True  # ...but this one does not
    remote.reject_rfc9421_with = refusal
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    await outbox.post_note(served_hub, acme, "knock knock")
    await served_hub.runner.drain()
    (delivered,) = remote.received
    assert "Signature-Input" not in delivered["headers"]
    assert ("POST", "/inbox") in remote.requests and remote.requests.count(("POST", "/inbox")) == 2
    async with served_hub.db.read() as conn:
        assert (await job_store.get_host(conn, remote.host)).signature_scheme == "cavage"
    remote.requests.clear()
    await outbox.post_note(served_hub, acme, "second")
    await served_hub.runner.drain()
    assert remote.requests.count(("POST", "/inbox")) == 1  # no second knock any more


async def test_rfc9421_is_used_for_hosts_that_read_it(served_hub, remote, acme):
    remote.nodeinfo_software = "mastodon"
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    await outbox.post_note(served_hub, acme, "modern")
    await served_hub.runner.drain()
    (request,) = remote.received
    parsed = verify_received(served_hub, request, request["body"], acme)
    assert parsed.scheme == "rfc9421"


async def test_follow_accept_and_undo_are_delivered_to_personal_inboxes(served_hub, remote, acme):
    bob, bob_row = await follower(served_hub, remote, "bob")
    await outbox.follow(served_hub, acme, bob_row)
    await served_hub.runner.drain()
    (request,) = remote.received
    follow = request["json"]
    assert request["path"] == "/users/bob/inbox" and follow["type"] == "Follow" and follow["object"] == bob.uri
    await outbox.unfollow(served_hub, acme, bob_row)
    await served_hub.runner.drain()
    undo = remote.received[-1]["json"]
    assert undo["type"] == "Undo" and undo["object"]["id"] == follow["id"] and undo["object"]["type"] == "Follow"


async def test_local_block_is_sent_and_stops_delivery(served_hub, remote, acme):
    bob, bob_row = await follower(served_hub, remote, "bob")
    await add_followers(served_hub, acme, [bob_row])
    await outbox.block(served_hub, acme, bob_row)
    await outbox.post_note(served_hub, acme, "not for bob")
    await served_hub.runner.drain()
    assert [r["json"]["type"] for r in remote.received] == ["Block"]
    assert remote.received[0]["json"]["object"] == bob.uri


async def test_profile_update_reaches_followers(served_hub, remote, acme):
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    await actors.update_profile(served_hub, acme, name="Acme Inc.")
    await served_hub.runner.drain()
    (request,) = remote.received
    assert request["json"]["type"] == "Update" and request["json"]["object"]["name"] == "Acme Inc."
    assert request["json"]["object"]["type"] == "Organization"


# --- the job queue under crashes -----------------------------------------------------------------


async def test_a_worker_that_dies_mid_job_loses_nothing(hub):
    """A claimed job whose worker vanished is claimed again once its lease ends;
    a result recorded under an old attempt cannot overwrite the new one."""
    done: list[str] = []
    hub.registry.register("test.job", lambda job: _record(done, job))
    async with hub.db.write() as conn:
        await job_store.put_jobs(conn, [job_store.job_row("test.job", {"n": i}) for i in range(5)])
    # A worker claims everything and "crashes" (never reports).
    claimed = await hub.db.run_write(lambda conn: job_store.claim_jobs(conn, now=utcnow(), lease_s=0.3, limit=10))
    assert len(claimed) == 5
    fresh = Runner(hub.cfg, hub.db, hub.registry)
    assert await fresh.drain() == 0  # leases still held
    await asyncio.sleep(0.4)
    assert await fresh.drain() == 5
    assert sorted(done) == [str(i) for i in range(5)]
    # The dead worker's late report does not undo the finished jobs.
    await hub.db.run_write(lambda conn: job_store.finish_jobs(conn, [
        {"id": j.id, "attempts": j.attempts, "state": "queued", "next_try_at": utcnow()} for j in claimed
    ]))
    async with hub.db.read() as conn:
        states = {r[0] for r in await conn.execute(sa.text("SELECT state FROM jobs"))}
    assert states == {"done"}
    assert await fresh.drain() == 0


async def _record(done, job):
    done.append(str(job.payload["n"]))


async def test_duplicate_jobs_are_not_queued_twice(hub):
    rows = [job_store.job_row("x", {}, dedupe_key="same") for _ in range(3)]
    async with hub.db.write() as conn:
        ids = await job_store.put_jobs(conn, rows)
        again = await job_store.put_jobs(conn, [job_store.job_row("x", {}, dedupe_key="same")])
    assert len(ids) == 1 and again == []


async def test_activities_over_64_kb_are_not_sent(served_hub, remote, acme):
    from hub.store import messages as msg_store

    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    note = await outbox.post_note(served_hub, acme, "short for now")
    async with served_hub.db.write() as conn:  # a body no caller could produce, to prove the guard
        await msg_store.update_message(conn, note.id, {"content_html": "<p>" + "x" * 70_000 + "</p>"})
    await served_hub.runner.drain(raise_errors=False)
    assert remote.received == []
    async with served_hub.db.read() as conn:
        (state, error) = (await conn.execute(sa.text("SELECT state, last_error FROM jobs WHERE kind='outbox.publish'"))).one()
    assert state == "failed" and "larger than" in error


async def test_outcomes_that_fail_to_record_are_kept_and_written_later(hub, monkeypatch):
    """A failed write of outcomes loses nothing: the jobs are not run again."""
    runs: list[str] = []
    hub.registry.register("test.job", lambda job: _record(runs, job))
    async with hub.db.write() as conn:
        await job_store.put_jobs(conn, [job_store.job_row("test.job", {"n": i}) for i in range(3)])
    real = job_store.finish_jobs
    failures = iter([True, True])

    def flaky(conn, results):
        if next(failures, False):
            raise RuntimeError("database is locked")
        return real(conn, results)

    monkeypatch.setattr(job_store, "finish_jobs", flaky)
    runner = Runner(hub.cfg, hub.db, hub.registry)
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            async with hub.db.read() as conn:
                states = sorted(r[0] for r in await conn.execute(sa.text("SELECT state FROM jobs")))
            if states == ["done"] * 3:
                break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert states == ["done"] * 3
    assert sorted(runs) == ["0", "1", "2"]  # each ran once


async def test_peer_error_text_with_nul_bytes_is_recorded(served_hub, remote, acme):
    _, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    remote.inbox_status = 400
    remote.inbox_body = b"bad\x00request"
    await outbox.post_note(served_hub, acme, "hello")
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        (state, error) = (await conn.execute(sa.text("SELECT state, last_error FROM jobs WHERE kind='ap.deliver'"))).one()
    assert state == "failed" and "\x00" not in error and "badrequest" in error


async def test_gone_inboxes_come_back_when_their_server_talks_or_after_a_week(served_hub, remote, session, acme):
    from tests.helpers import post_signed

    actor, row = await follower(served_hub, remote, "a")
    await add_followers(served_hub, acme, [row])
    remote.inbox_status = 410
    await outbox.post_note(served_hub, acme, "one")
    await served_hub.runner.drain()
    remote.inbox_status = 202
    await outbox.post_note(served_hub, acme, "two")  # skipped: gone
    await served_hub.runner.drain()
    assert len(remote.received) == 1
    # the server speaks to us: its inbox is tried again
    like = {"id": f"{remote.base}/likes/9", "type": "Like", "actor": actor.uri, "object": acme.uri}
    assert (await post_signed(session, served_hub.uris.shared_inbox(), like, actor))[0] == 202
    await served_hub.runner.drain()
    await outbox.post_note(served_hub, acme, "three")
    await served_hub.runner.drain()
    assert [r["json"]["object"]["content"] for r in remote.received[1:]] == ["<p>three</p>"]
    # and a mark older than a week expires by itself
    remote.inbox_status = 404
    await outbox.post_note(served_hub, acme, "four")
    await served_hub.runner.drain()
    async with served_hub.db.write() as conn:
        week_ago = (utcnow() - dt.timedelta(days=8)).replace(tzinfo=None)  # stored as naive UTC
        await conn.execute(sa.text("UPDATE inboxes SET gone_at = :t"), {"t": week_ago})
    remote.inbox_status = 202
    await outbox.post_note(served_hub, acme, "five")
    await served_hub.runner.drain()
    assert remote.received[-1]["json"]["object"]["content"] == "<p>five</p>"
