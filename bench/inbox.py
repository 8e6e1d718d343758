"""Inbox benchmark: 100,000 conversations and 1,000,000 messages on SQLite.

Loads an organization's inbox in bulk (straight into SQLite, then the
full-text index rebuilt at once), then times, through the same service calls
the API and CLI use (each writes its audit entry, as in real use):

* the default inbox page (20 conversations, most recent activity first), the
  second page (by cursor), a page filtered by status and one by label;
* full-text searches: a rare word (an order number, in ~20 conversations)
  and a common one (in most conversations);
* the default page and a rare-word search over HTTP through the JSON API;

beside two baselines from the same run: the bare SQL of the default page run
with ``sqlite3``, and a bare aiohttp handler answering the same JSON.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import sqlite3
import statistics
import time
from pathlib import Path

WORDS = (
    "order invoice parcel delivery refund address payment account password login broken screen battery charger "
    "warranty return exchange shipping tracking number late missing damaged wrong size colour color replacement "
    "discount coupon subscription cancel renew upgrade downgrade support question thanks hello morning evening "
    "please urgent today tomorrow monday friday weekend store branch online app website email phone call chat "
    "help issue problem error crash update install setting privacy data export delete profile photo name change"
).split()
RARE = [f"zq{n:05d}" for n in range(5000)]  # tokens that appear in a few conversations each


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def _id(n: int, at: dt.datetime) -> str:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    value = (int(at.timestamp() * 1000) << 80) | n
    out = []
    for _ in range(26):
        out.append(alphabet[value & 31])
        value >>= 5
    return "".join(reversed(out))


def bulk_load(db_path: Path, *, org_id: str, agent_account_id: str, conversations: int, per_conversation: int,
              customers: int, rng: random.Random) -> None:
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    trigger = con.execute("SELECT sql FROM sqlite_master WHERE type='trigger' AND name='messages_fts_insert'").fetchone()[0]
    con.execute("DROP TRIGGER messages_fts_insert")
    con.execute("BEGIN")
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    base = "http://bench.example"
    customer_ids = []
    rows = []
    for c in range(customers):
        cid = _id(10_000_000 + c, start)
        customer_ids.append(cid)
        rows.append((cid, f"{base}/users/c{c}", "Person", 0, f"c{c}", "bench.example", f"Customer {c}",
                     f"{base}/users/c{c}/inbox", f"{base}/inbox", _ts(start), 0, 0))
    con.executemany(
        "INSERT INTO actors (id, uri, type, local, username, domain, name, inbox_uri, shared_inbox_uri, created_at, "
        "manually_approves_followers, discoverable) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    statuses = ["open"] * 6 + ["resolved"] * 2 + ["pending", "snoozed"]
    n_msg = 0
    for chunk in range(0, conversations, 5000):
        conv_rows, part_rows, state_rows, label_rows, msg_rows = [], [], [], [], []
        for k in range(chunk, min(chunk + 5000, conversations)):
            at = start + dt.timedelta(minutes=5 * k)
            conv_id = _id(k, at)
            customer = customer_ids[k % customers]
            uri = f"{base}/c/{conv_id}"
            last_at = at + dt.timedelta(minutes=per_conversation)
            conv_rows.append((conv_id, uri, customer, 0, _ts(at), "direct", _ts(last_at)))
            part_rows.append((_id(k, at) + "p", conv_id, customer, "owner", _ts(at)))
            part_rows.append((_id(k, at) + "q", conv_id, org_id, "participant", _ts(at)))
            rare = rng.choice(RARE)
            last_id = None
            for m in range(per_conversation):
                m_at = at + dt.timedelta(minutes=m + 1)
                author = customer if m % 2 == 0 else org_id
                words = rng.choices(WORDS, k=rng.randint(8, 16))
                if m == 0:
                    words.append(rare)
                text = " ".join(words)
                mid = _id(100_000_000 + n_msg, m_at)
                n_msg += 1
                last_id = mid
                msg_rows.append((mid, f"{base}/m/{mid}", author, conv_id, f"<p>{text}</p>", text, "direct", "[]", "[]",
                                 "[]", 0, "activitypub", _ts(m_at), _ts(m_at), 0))
            status = statuses[k % len(statuses)]
            state_id = _id(k, at)[:-1] + "s"
            assignee = agent_account_id if k % 3 == 0 else None
            snoozed = _ts(last_at + dt.timedelta(days=3650)) if status == "snoozed" else None
            state_rows.append((state_id, conv_id, org_id, status, snoozed, assignee, 0, _ts(last_at), last_id,
                               _ts(at), _ts(last_at)))
            if k % 5 == 0:
                label_rows.append((state_id, rng.choice(["billing", "shipping", "vip", "bug"])))
        con.executemany("INSERT INTO conversations (id, uri, owner_id, local, created_at, visibility, last_message_at) "
                        "VALUES (?,?,?,?,?,?,?)", conv_rows)
        con.executemany("INSERT INTO conversation_participants (id, conversation_id, actor_id, role, created_at) "
                        "VALUES (?,?,?,?,?)", part_rows)
        con.executemany(
            "INSERT INTO messages (id, uri, actor_id, conversation_id, content_html, content_text, visibility, to_uris, "
            "cc_uris, mention_uris, local, network, published_at, created_at, sensitive) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", msg_rows)
        con.executemany(
            "INSERT INTO conversation_states (id, conversation_id, actor_id, status, snoozed_until, assignee_id, "
            "priority, last_message_at, last_message_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            state_rows)
        con.executemany("INSERT INTO conversation_labels (state_id, label) VALUES (?,?)", label_rows)
    con.execute("COMMIT")
    con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    con.execute(trigger)
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples) * 1000, 2),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 2), "n": len(samples)}


async def _timed(fn, rounds: int) -> tuple[dict, list]:
    samples, results = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        results.append(await fn())
        samples.append(time.perf_counter() - t)
    return _percentiles(samples), results


async def _measure(cfg, db_path: Path, rounds: int, rng: random.Random) -> dict:
    import aiohttp
    from aiohttp import web

    from hub.app import create_app, open_hub
    from hub.commands_inbox import hash_token
    from hub.inbox import access, state
    from hub.store import actors as actor_store
    from hub.store import org as org_store

    hub = await open_hub(cfg, federation=False)
    out = {}
    try:
        acting = await access.acting_as(hub, "acme", "dana")
        for _ in range(20):  # warm caches
            await state.list_conversations(hub, acting)
        for name, kwargs in (
            ("default_page", {}),
            ("open_page", {"status": "open"}),
            ("label_page", {"label": "vip"}),
        ):
            out[name], pages = await _timed(lambda kw=kwargs: state.list_conversations(hub, acting, **kw), rounds)
            assert all(len(items) == 20 for items, _cursor in pages)
        out["second_page"], _ = await _timed(
            lambda: state.list_conversations(hub, acting, cursor=pages[0][1]), rounds)
        out["search_rare"], found = await _timed(
            lambda: state.list_conversations(hub, acting, query=rng.choice(RARE)), rounds)
        out["search_rare"]["hits_per_query"] = round(sum(len(items) for items, _c in found) / rounds, 1)
        out["search_common"], found = await _timed(
            lambda: state.list_conversations(hub, acting, query=rng.choice(WORDS)), rounds)
        out["search_common"]["hits_per_query"] = round(sum(len(items) for items, _c in found) / rounds, 1)

        # The same page over HTTP: the JSON API against a bare aiohttp handler
        # answering the same bytes.
        token = "rt_bench"
        async with hub.db.write() as conn:
            dana = await actor_store.get_account_by_username(conn, "dana")
            await org_store.put_token(conn, account_id=dana.id, token_hash=hash_token(token), name="bench")
        body = json.dumps({"items": (await state.list_conversations(hub, acting))[0]}).encode()

        async def bare(_request):
            return web.Response(body=body, content_type="application/json")

        bare_app = web.Application()
        bare_app.router.add_get("/page", bare)
        runners = []
        ports = []
        for app in (create_app(hub), bare_app):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            ports.append(runner.addresses[0][1])
        try:
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession() as http:
                async def api_get(path: str):
                    async with http.get(f"http://127.0.0.1:{ports[0]}{path}", headers=headers) as resp:
                        assert resp.status == 200, resp.status
                        return await resp.read()

                async def bare_get():
                    async with http.get(f"http://127.0.0.1:{ports[1]}/page") as resp:
                        return await resp.read()

                for _ in range(20):
                    await api_get("/api/roundtable/v1/actors/acme/conversations")
                    await bare_get()
                out["api_page"], _ = await _timed(lambda: api_get("/api/roundtable/v1/actors/acme/conversations"), rounds)
                out["api_search_rare"], _ = await _timed(
                    lambda: api_get(f"/api/roundtable/v1/actors/acme/conversations?q={rng.choice(RARE)}"), rounds)
                out["bare_aiohttp_same_json"], _ = await _timed(bare_get, rounds)
        finally:
            for runner in runners:
                await runner.cleanup()
    finally:
        await hub.close()
    con = sqlite3.connect(db_path)
    org_id = con.execute("SELECT id FROM actors WHERE username='acme' AND local=1").fetchone()[0]
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        rows = con.execute(
            "SELECT s.*, c.uri FROM conversation_states s JOIN conversations c ON c.id = s.conversation_id "
            "WHERE s.actor_id = ? ORDER BY s.last_message_at DESC, s.id DESC LIMIT 21", (org_id,)).fetchall()
        samples.append(time.perf_counter() - t)
        assert len(rows) == 21
    out["bare_sql_page"] = _percentiles(samples)
    con.close()
    return out


def run(tmp: Path, *, conversations: int = 100_000, per_conversation: int = 10, rounds: int = 200) -> dict:
    from hub.app import open_hub
    from hub.config import load_config
    from hub.inbox import access

    rng = random.Random(7)
    data = tmp / "inbox-bench"
    cfg = load_config(env={}, dev=True, data=str(data), domain="localhost:9", listen="127.0.0.1:9")

    async def setup() -> tuple[str, str]:
        from hub import actors
        from hub.store import actors as actor_store

        hub = await open_hub(cfg, federation=False)
        try:
            org = await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
            await actors.create_local_actor(hub, "dana", kind="person")
            await access.add_member(hub, await access.acting_as(hub, "acme"), "dana", role="agent")
            async with hub.db.read() as conn:
                dana = await actor_store.get_account_by_username(conn, "dana")
            return org.id, dana.id
        finally:
            await hub.close()

    org_id, dana_id = asyncio.run(setup())
    t = time.monotonic()
    bulk_load(data / "roundtable.db", org_id=org_id, agent_account_id=dana_id, conversations=conversations,
              per_conversation=per_conversation, customers=max(1, conversations // 5), rng=rng)
    load_s = time.monotonic() - t
    result = asyncio.run(_measure(cfg, data / "roundtable.db", rounds, rng))
    con = sqlite3.connect(data / "roundtable.db")
    result["conversations"] = con.execute("SELECT count(*) FROM conversation_states").fetchone()[0]
    result["messages"] = con.execute("SELECT count(*) FROM messages").fetchone()[0]
    con.close()
    result["load_s"] = round(load_s, 1)
    result["db_mib"] = round(os.path.getsize(data / "roundtable.db") / 2**20)
    return result


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(run(Path(d)), indent=2))
