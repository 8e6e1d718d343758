"""Reading remote actors and notes in the shapes each server sends them
(tests/fixtures/actors, tests/fixtures/notes)."""

from __future__ import annotations

import pytest

from hub import addressing, crypto
from hub.errors import BadRequest
from hub.federation import documents as docs
from tests.helpers import PUBLIC, KeyPair, load_fixture

BASE = "https://remote.example"
TARGET = "https://hub.example/users/acme"


def actor_fixture(style: str, **extra):
    kp, kp2, ed = KeyPair(), KeyPair(), KeyPair("ed25519")
    doc = load_fixture(
        f"actors/{style}.json", base=BASE, username="zoe", host="remote.example", pem=kp.public_pem,
        pem2=kp2.public_pem, pem_pkcs1=kp.public_pem_pkcs1, multibase=ed.multibase, **extra,
    )
    return doc, kp


@pytest.mark.parametrize("style", ["mastodon", "gotosocial", "misskey", "akkoma", "pleroma_pkcs1", "fedify"])
def test_actor_documents_of_every_server_parse(style):
    doc, kp = actor_fixture(style)
    values, keys = docs.parse_actor(doc, new_id="x")
    assert values["uri"] == doc["id"]
    assert values["inbox_uri"] == doc["inbox"]
    assert values["username"] == "zoe"
    assert values["domain"] == "remote.example"
    main = next(k for k in keys if k["key_id"] == (doc["publicKey"][0] if isinstance(doc["publicKey"], list) else doc["publicKey"])["id"])
    # Whatever form the peer used, we keep SPKI and it is the same key.
    assert main["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert crypto.load_public_pem(main["public_key"]).public_numbers() == kp.private.public_key().public_numbers()


def test_shared_inbox_found_at_top_level_or_in_endpoints():
    misskey, _ = actor_fixture("misskey")
    misskey.pop("endpoints")
    assert docs.parse_actor(misskey, new_id="x")[0]["shared_inbox_uri"] == f"{BASE}/inbox"
    gts, _ = actor_fixture("gotosocial")
    assert docs.parse_actor(gts, new_id="x")[0]["shared_inbox_uri"] is None


def test_fedify_key_list_and_multikey_are_all_kept():
    doc, _ = actor_fixture("fedify")
    _, keys = docs.parse_actor(doc, new_id="x")
    kinds = {k["key_id"].rsplit("#", 1)[1]: k["kind"] for k in keys}
    assert kinds == {"main-key": "rsa", "key-2": "rsa", "multikey-1": "ed25519"}


def test_keys_claiming_another_owner_are_ignored():
    doc, _ = actor_fixture("mastodon")
    doc["publicKey"]["owner"] = "https://evil.example/users/mallory"
    assert docs.parse_actor(doc, new_id="x")[1] == []


def test_key_ids_on_another_origin_are_ignored():
    doc, _ = actor_fixture("mastodon")
    doc["publicKey"]["id"] = "https://victim.example/users/zoe#main-key"  # squatting someone else's key id
    assert docs.parse_actor(doc, new_id="x")[1] == []


def test_remote_profile_html_is_sanitised():
    doc, _ = actor_fixture("mastodon")
    values, _ = docs.parse_actor(doc, new_id="x")
    assert "<script" not in values["summary"]
    assert "onclick" not in values["fields"][0]["value"]
    assert 'href="https://example.org"' in values["fields"][0]["value"]


@pytest.mark.parametrize(
    "doc",
    [None, [], {"type": "Note", "id": "x"}, {"type": "Person", "id": "https://r.example/u"}],
)
def test_unusable_actor_documents_are_refused(doc):
    with pytest.raises(BadRequest):
        docs.parse_actor(doc, new_id="x")


def note_fixture(name: str):
    return load_fixture(f"notes/{name}.json", base=BASE, username="zoe", host="remote.example", target=TARGET,
                        object="https://hub.example/m/01aaaaaaaaaaaaaaaaaaaaaaaa")


@pytest.mark.parametrize(
    ("name", "followers", "visibility"),
    [
        ("mastodon_public", f"{BASE}/users/zoe/followers", "public"),
        ("mastodon_direct", f"{BASE}/users/zoe/followers", "direct"),
        ("gotosocial_followers", f"{BASE}/users/zoe/followers", "followers"),
        ("misskey_home", f"{BASE}/users/9k2x7q1a00/followers", "unlisted"),
        ("akkoma_reply", f"{BASE}/users/zoe/followers", "public"),
        ("fedify_note", f"{BASE}/users/zoe/followers", "public"),
    ],
)
def test_notes_of_every_server_parse_with_mastodons_visibility_rules(name, followers, visibility):
    activity = note_fixture(name)
    note = docs.parse_note(activity["object"])
    assert note["uri"] == activity["object"]["id"]
    assert note["content_text"]
    assert addressing.visibility_of(note["to"], note["cc"], followers_uri=followers) == visibility


def test_mentions_and_context_are_read():
    note = docs.parse_note(note_fixture("mastodon_public")["object"])
    assert note["mentions"] == [TARGET]
    assert note["context"] == f"{BASE}/contexts/109000000000000007-113500000000000001"
    assert "<img" not in note["content_html"] and "onerror" not in note["content_html"]
    assert note["content_text"].startswith("@target hello #test")


def test_akkoma_conversation_and_reply_are_read():
    note = docs.parse_note(note_fixture("akkoma_reply")["object"])
    assert note["in_reply_to"] == "https://hub.example/m/01aaaaaaaaaaaaaaaaaaaaaaaa"
    assert note["context"].startswith(f"{BASE}/contexts/")


def test_misskey_zero_width_summary_is_no_content_warning():
    note = docs.parse_note(note_fixture("misskey_home")["object"])
    assert note["summary"] is None
    assert note["content_text"] == "unlisted from misskey"


def test_fedify_content_map_and_single_valued_addressing():
    note = docs.parse_note(note_fixture("fedify_note")["object"])
    assert note["content_text"] == "こんにちは"
    assert note["language"] == "ja"
    assert note["to"] == [PUBLIC] and note["cc"] == [TARGET]
    assert note["mentions"] == [TARGET]


def test_unknown_object_types_are_refused():
    with pytest.raises(BadRequest):
        docs.parse_note({"id": "https://r.example/x", "type": "Tombstone"})


def test_origin_helpers():
    assert docs.same_origin("https://a.example/x", "https://a.example/y#z")
    assert not docs.same_origin("https://a.example/x", "https://b.example/x")
    assert not docs.same_origin("https://a.example/x", "http://a.example/x")
    assert docs.id_of([{"id": "u"}]) == "u" and docs.id_of({"href": "h"}) == "h" and docs.id_of(3) is None


def test_note_attachments_in_each_servers_shape_are_kept_as_links():
    note = {
        "id": f"{BASE}/notes/1", "type": "Note", "attributedTo": f"{BASE}/users/zoe", "content": "<p>see</p>",
        "attachment": [
            # Mastodon: a Document with a string url, the description as name, a blurhash
            {"type": "Document", "mediaType": "image/png", "url": f"{BASE}/media/a.png", "name": "A kettle, cold",
             "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH", "width": 640, "height": 480},
            # Pleroma: url as a list of Links, the media type on the Link
            {"type": "Document", "name": "", "url": [{"type": "Link", "mediaType": "application/pdf",
                                                       "href": f"{BASE}/media/receipt.pdf?x=1"}]},
            # Misskey: name null
            {"type": "Document", "mediaType": "video/mp4", "url": f"{BASE}/files/clip.mp4", "name": None,
             "sensitive": False},
            {"type": "PropertyValue", "name": "not a file", "value": "x"},  # a profile field, misplaced
            {"type": "Document", "url": "javascript:alert(1)"},  # never a link we would render
            "https://not-an-object.example/x",
        ],
    }
    files = docs.parse_note(note)["attachments"]
    assert [(f["filename"], f["media_type"]) for f in files] == [
        ("a.png", "image/png"), ("receipt.pdf", "application/pdf"), ("clip.mp4", "video/mp4")]
    assert files[0]["description"] == "A kettle, cold" and files[1]["url"].endswith("receipt.pdf?x=1")
    assert files[2]["description"] is None
