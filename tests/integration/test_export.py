"""``roundtable export``: the archive holds the actor, its outbox, the conversations it
owns with every message, its private state and notes, follows, consent data and
receipts, media, an mbox of what went through email, and a readable HTML copy."""

from __future__ import annotations

import json
import mailbox
import zipfile

import sqlalchemy as sa

from hub import actors, consent, media
from hub.inbox import access, conversations, state
from hub.store.schema import messages


async def test_an_export_holds_everything_that_is_the_actors(hub, tmp_path):
    for username, kind in (("kim", "person"), ("acme", "organization")):
        await actors.create_local_actor(hub, username, kind=kind, name=username.capitalize(), password="password123")
    kim, org = await access.acting_as(hub, "kim"), await access.acting_as(hub, "acme")
    picture = b"\x89PNG\r\n\x1a\n" + b"kettle" * 10
    conv, first = await conversations.start(hub, kim, [org.actor], "My kettle leaks", subject="Leaking kettle",
                                            files=[media.NewFile("leak.png", "image/png", picture)])
    await conversations.reply(hub, org, conv, "Sorry! A new one ships today.")
    await state.update(hub, kim, conv, note="ask for a refund if it leaks again", add_labels=["kitchen"])
    await state.update(hub, org, conv, note="batch 42 again")  # the organization's note: never in kim's export
    await consent.set_item(hub, kim, "email", "kim@example.org")
    # a message that came through email (as the email bridge stores one) goes into the mbox too
    async with hub.db.write() as conn:
        await conn.execute(sa.update(messages).where(messages.c.id == first.id).values(network="email"))

    out = tmp_path / "kim.zip"
    from hub import export

    manifest = await export.export(hub, kim, out)
    assert manifest["format"] == "roundtable-export/1" and manifest["privateKey"] is True
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        actor = json.loads(z.read("actor.json"))
        outbox = json.loads(z.read("outbox.json"))
        conv_doc = json.loads(z.read(f"conversations/{conv.uri.rsplit('/', 1)[-1]}.json"))
        consent_doc = json.loads(z.read("consent.json"))
        page = z.read("index.html").decode()
        box_bytes = z.read("mail.mbox")
        sha = next(n for n in names if n.startswith("media/"))
        assert z.read(sha) == picture
    assert {"manifest.json", "actor.json", "outbox.json", "following.json", "followers.json", "consent.json",
            "index.html", "mail.mbox"} <= names
    assert actor["id"] == kim.actor.uri and "BEGIN PRIVATE KEY" in actor["privateKeyPem"]
    assert [a["object"]["content"] for a in outbox["orderedItems"]] == ["<p>My kettle leaks</p>"]
    assert conv_doc["owned"] is True and conv_doc["subject"] == "Leaking kettle"
    assert [m["roundtable:network"] for m in conv_doc["messages"]] == ["email", "activitypub"]
    assert "A new one ships today" in conv_doc["messages"][1]["content"]
    assert conv_doc["state"]["labels"] == ["kitchen"]
    assert [n["text"] for n in conv_doc["privateNotes"]] == ["ask for a refund if it leaks again"]
    assert "batch 42" not in json.dumps(conv_doc) and "batch 42" not in page
    assert consent_doc["profile"] == {"email": "kim@example.org"}
    assert "Leaking kettle" in page and "My kettle leaks" in page
    box_path = tmp_path / "mail.mbox"
    box_path.write_bytes(box_bytes)
    mails = list(mailbox.mbox(box_path))
    assert [m["Subject"] for m in mails] == ["Leaking kettle", "Leaking kettle"]
    assert "My kettle leaks" in mails[0].get_payload()

    # without the private key; the organization exports its own side (its note, not kim's)
    manifest = await export.export(hub, kim, tmp_path / "kim-public.zip", private_key=False)
    with zipfile.ZipFile(tmp_path / "kim-public.zip") as z:
        assert "privateKeyPem" not in json.loads(z.read("actor.json")) and manifest["privateKey"] is False
    await export.export(hub, org, tmp_path / "acme.zip")
    with zipfile.ZipFile(tmp_path / "acme.zip") as z:
        conv_doc = json.loads(z.read(f"conversations/{conv.uri.rsplit('/', 1)[-1]}.json"))
    assert conv_doc["owned"] is False and "messages" not in conv_doc  # the customer owns it
    assert [n["text"] for n in conv_doc["privateNotes"]] == ["batch 42 again"]


async def test_an_export_built_in_the_background_downloads_once_ready_until_the_link_expires(served_hub, session):
    import datetime as dt
    import io

    from hub import export
    from hub.store.schema import exports

    hub = served_hub
    await actors.create_local_actor(hub, "lee", kind="person", name="Lee", password="password123")
    lee = await access.acting_as(hub, "lee")
    await consent.set_item(hub, lee, "phone", "555-0100")
    made = await export.request_export(hub, lee, private_key=False)
    assert made["state"] == "queued" and made["progress"] == 0
    async with session.get(made["download"]) as resp:
        assert resp.status == 202  # not built yet
    await hub.runner.drain()
    status = await export.export_status(hub, lee, made["id"])
    assert status["state"] == "done" and status["progress"] == 100 and status["expires"]
    async with session.get(made["download"]) as resp:
        assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
        archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert json.loads(archive.read("consent.json"))["profile"] == {"phone": "555-0100"}
    assert "privateKeyPem" not in json.loads(archive.read("actor.json"))
    async with session.get(made["download"].replace("/archive.zip", "x/archive.zip")) as resp:
        assert resp.status == 404  # a wrong secret
    async with hub.db.write() as conn:
        await conn.execute(sa.update(exports).values(expires_at=dt.datetime.now(dt.timezone.utc)
                                                     - dt.timedelta(minutes=1)))
    assert await export.expire_files(hub) == 1
    async with session.get(made["download"]) as resp:
        assert resp.status == 410
    assert not export.file_of(hub.cfg, made["id"]).exists()


async def test_a_move_hands_over_places_ownership_and_claims_even_where_both_took_part(hub):
    """``follow_move``: where the old and the new self both took part, the old one leaves and the new one
    owns what the old one owned; addresses the old self claimed on this hub's bridges are the new self's."""
    from hub import moving
    from hub.bridges.core import _new_keys, ensure_identity
    from hub.store import bridges as bridge_store
    from hub.store import conversations as conv_store
    from hub.store import messages as msg_store

    for username, kind in (("old", "person"), ("new", "person"), ("acme", "organization")):
        await actors.create_local_actor(hub, username, kind=kind, name=username.capitalize())
    old, new, org = [await access.acting_as(hub, u) for u in ("old", "new", "acme")]
    both, _ = await conversations.start(hub, old, [org.actor, new.actor], "Both of me are here")
    only_old, _ = await conversations.start(hub, old, [org.actor], "Only the old one")
    async with hub.db.write() as conn:
        ident = await ensure_identity(conn, hub, "email", "old@example.org", "Old", await _new_keys())
        await bridge_store.update_identity(conn, ident.id, {"claimed_actor_id": old.actor.id})

    await moving.follow_move(hub, old.actor, new.actor.uri)

    async with hub.db.read() as conn:
        for conv in (both, only_old):
            people = {p.id: p.role for p in await conv_store.list_participants(conn, conv.id)}
            assert old.actor.id not in people and people[new.actor.id] == "owner", conv.subject
            assert (await msg_store.get_conversation_by_id(conn, conv.id)).owner_id == new.actor.id
        assert (await bridge_store.get_identity(conn, "email", "old@example.org")).claimed_actor_id == new.actor.id


async def test_a_deleted_remote_actor_that_moved_away_with_an_address_has_it_forgotten_here(hub):
    """The account moved to another hub taking its claimed address; when that hub says it was deleted,
    this hub forgets the address and erases what its bridged actor wrote."""
    from hub import leaving
    from hub.bridges.core import _new_keys, ensure_identity
    from hub.ids import new_id
    from hub.store import actors as actor_store
    from hub.store import bridges as bridge_store

    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")
    org = await access.acting_as(hub, "acme")
    async with hub.db.write() as conn:
        await actor_store.upsert_remote_actor(conn, {"id": new_id(), "uri": "https://elsewhere.example/users/kim",
                                                     "type": "Person", "username": "kim",
                                                     "domain": "elsewhere.example"}, [])
        remote = await actor_store.get_actor_by_uri(conn, "https://elsewhere.example/users/kim")
        ident = await ensure_identity(conn, hub, "email", "kim@example.org", "Kim", await _new_keys())
        twin = await ensure_identity(conn, hub, "email", "unverified:kim@example.org", "Kim", await _new_keys())
        await bridge_store.update_identity(conn, ident.id, {"claimed_actor_id": remote.id})
        puppet = await actor_store.get_actor_by_id(conn, ident.actor_id)
    conv, said = await conversations.start(hub, Access(puppet), [org.actor], "my address is 1 Long Lane")

    async with hub.db.write() as conn:
        files = await leaving.forget_claims_of_remote(conn, remote)
    assert files == set()
    async with hub.db.read() as conn:
        assert await bridge_store.get_identity(conn, "email", "kim@example.org") is None
        assert await bridge_store.get_identity(conn, "email", "unverified:kim@example.org") is None
        assert (await bridge_store.get_identity_by_id(conn, twin.id)).remote_id.startswith("erased:")
        row = (await conn.execute(sa.select(messages).where(messages.c.id == said.id))).first()
        assert row.deleted_at is not None and "Long Lane" not in row.content_text
        assert (await actor_store.get_actor_by_id(conn, puppet.id)).deleted_at is not None


def Access(actor):  # noqa: N802 - an Acting for a bridged actor, as the bridge writes for it
    return access.Acting(actor=actor, account=None, role="owner")
