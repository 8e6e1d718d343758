"""HTTP signatures: our signer and verifier against each other, against the
header shapes Mastodon, GoToSocial, Misskey, Akkoma and Fedify send
(tests/fixtures/signature_shapes.json), and against active-boxes, an
independent implementation, in both directions."""

from __future__ import annotations

import datetime as dt
import email.utils
import json

import pytest
from multidict import CIMultiDict

from hub import crypto
from hub.errors import Unauthorized
from hub.federation import httpsig
from tests.helpers import SHAPES, KeyPair, sign_like

ACTOR = "https://remote.example/users/alice"
URL = "https://hub.example/users/bob/inbox"
BODY = json.dumps({"type": "Create", "actor": ACTOR, "id": "https://remote.example/1"}).encode()
NOW = dt.datetime.now(dt.timezone.utc)


def verify(headers: dict, *, method: str, url: str, body: bytes | None, key) -> httpsig.ParsedSignature:
    """The inbox's order of checks, with the key supplied."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path_qs = parts.path + (f"?{parts.query}" if parts.query else "")
    parsed = httpsig.parse_signature(method=method, path_qs=path_qs, target_uri=url, headers=headers)
    httpsig.check_coverage(parsed, method=method)
    httpsig.check_freshness(parsed, headers, now=NOW, max_age_s=12 * 3600, max_future_s=3600)
    if body is not None:
        httpsig.check_digest(headers, body)
    if not httpsig.verify_parsed(parsed, key):
        raise Unauthorized("signature does not verify")
    return parsed


@pytest.fixture(scope="module")
def keypair():
    return KeyPair()


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
def test_our_signatures_verify_and_cover_what_peers_require(keypair, scheme):
    sign = httpsig.sign_cavage if scheme == "cavage" else httpsig.sign_rfc9421
    url = URL + "?page=2"
    headers = sign(method="POST", url=url, body=BODY, key_id=ACTOR + "#main-key", private_key=keypair.private)
    parsed = verify(headers, method="POST", url=url, body=BODY, key=keypair.private.public_key())
    assert parsed.scheme == scheme
    if scheme == "cavage":
        # Mastodon needs algorithm present and the digest signed on POST.
        assert 'algorithm="rsa-sha256"' in headers["Signature"]
        assert parsed.covered == ("(request-target)", "host", "date", "digest")
        assert headers["Digest"].startswith("SHA-256=")
    else:
        assert parsed.covered == ("@method", "@target-uri", "content-digest")
        assert headers["Content-Digest"].startswith("sha-256=:")
        assert "Signature" in headers and headers["Signature"].startswith("sig1=:")


def test_get_signature_covers_host_and_date_without_digest(keypair):
    headers = httpsig.sign_cavage(method="GET", url=URL, body=None, key_id="k", private_key=keypair.private)
    assert "Digest" not in headers
    parsed = verify(headers, method="GET", url=URL, body=None, key=keypair.private.public_key())
    assert parsed.covered == ("(request-target)", "host", "date")


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_verifies_each_servers_signature_shape(keypair, name):
    shape = SHAPES[name]
    url = URL + ("?page=true&min_id=5" if shape.get("query") else "")
    body = BODY if shape["method"] == "POST" else None
    headers = sign_like(shape, keypair, url=url, body=body, key_id=ACTOR + "#main-key")
    parsed = verify(headers, method=shape["method"], url=url, body=body, key=keypair.private.public_key())
    assert parsed.key_id == ACTOR + "#main-key"


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_shape_fails_with_the_wrong_key(keypair, name):
    shape = SHAPES[name]
    body = BODY if shape["method"] == "POST" else None
    headers = sign_like(shape, keypair, url=URL, body=body, key_id=ACTOR + "#main-key")
    with pytest.raises(Unauthorized, match="does not verify"):
        verify(headers, method=shape["method"], url=URL, body=body, key=KeyPair().private.public_key())


def test_ed25519_rfc9421_signature_verifies():
    key = KeyPair("ed25519")
    headers = sign_like(SHAPES["fedify-rfc9421-post"], key, url=URL, body=BODY, key_id=ACTOR + "#multikey-1")
    verify(headers, method="POST", url=URL, body=BODY, key=key.private.public_key())


def test_tampered_header_fails(keypair):
    headers = httpsig.sign_cavage(method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private)
    headers["Date"] = email.utils.formatdate(usegmt=True, timeval=NOW.timestamp() - 5)
    with pytest.raises(Unauthorized):
        verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())


def test_signature_for_another_path_fails(keypair):
    headers = httpsig.sign_cavage(method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private)
    with pytest.raises(Unauthorized):
        verify(headers, method="POST", url="https://hub.example/inbox", body=BODY, key=keypair.private.public_key())


def test_wrong_digest_is_refused_even_when_signed(keypair):
    headers = httpsig.sign_cavage(method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private)
    with pytest.raises(Unauthorized, match="Digest does not match"):
        verify(headers, method="POST", url=URL, body=BODY + b" ", key=keypair.private.public_key())


def test_content_digest_mismatch_is_refused(keypair):
    headers = httpsig.sign_rfc9421(method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private)
    with pytest.raises(Unauthorized, match="Content-Digest does not match"):
        verify(headers, method="POST", url=URL, body=b"{}", key=keypair.private.public_key())


@pytest.mark.parametrize(
    ("offset_s", "ok"),
    [(-11 * 3600, True), (-13 * 3600, False), (50 * 60, True), (2 * 3600, False)],
)
def test_date_window_is_12h_past_1h_future(keypair, offset_s, ok):
    date = email.utils.formatdate(NOW.timestamp() + offset_s, usegmt=True)
    headers = httpsig.sign_cavage(method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private, date=date)
    if ok:
        verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())
    else:
        with pytest.raises(Unauthorized, match="too old|future"):
            verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())


def test_stale_rfc9421_created_is_refused(keypair):
    headers = httpsig.sign_rfc9421(
        method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private,
        created=int(NOW.timestamp()) - 13 * 3600,
    )
    with pytest.raises(Unauthorized, match="too old"):
        verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())


def test_post_without_signed_digest_is_refused(keypair):
    shape = dict(SHAPES["gotosocial-post"], headers=["(request-target)", "host", "date"])
    headers = sign_like(shape, keypair, url=URL, body=BODY, key_id="k")
    with pytest.raises(Unauthorized, match="digest"):
        verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())


def test_signature_without_request_target_is_refused(keypair):
    shape = dict(SHAPES["gotosocial-post"], headers=["host", "date", "digest"])
    headers = sign_like(shape, keypair, url=URL, body=BODY, key_id="k")
    with pytest.raises(Unauthorized, match="request-target"):
        verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        'keyId="k",signature="not base64!!"',
        'algorithm="rsa-sha256",headers="date",signature="YQ=="',
        'keyId="k",algorithm="hmac-sha256",headers="date",signature="YQ=="',
    ],
)
def test_malformed_signature_headers_are_refused(value):
    headers = CIMultiDict({"Signature": value, "Date": email.utils.formatdate(usegmt=True), "Host": "hub.example"})
    with pytest.raises(Unauthorized):
        httpsig.parse_signature(method="POST", path_qs="/inbox", target_uri="https://hub.example/inbox", headers=headers)


def test_unsigned_request_is_refused():
    with pytest.raises(Unauthorized, match="not signed"):
        httpsig.parse_signature(method="POST", path_qs="/inbox", target_uri="https://hub.example/inbox", headers={})


def test_missing_digest_is_refused():
    with pytest.raises(Unauthorized, match="missing Digest"):
        httpsig.check_digest({}, BODY)


def test_signature_in_authorization_header_is_read(keypair):
    headers = httpsig.sign_cavage(method="POST", url=URL, body=BODY, key_id="k", private_key=keypair.private)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())


# --- active-boxes, both ways ---------------------------------------------------------------


@pytest.fixture
def active_boxes_backend(keypair):
    """active-boxes fetches keys through a backend; this one serves our actor doc."""
    from active_boxes import activitypub
    from active_boxes.backend import Backend

    doc = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": ACTOR,
        "type": "Person",
        "inbox": ACTOR + "/inbox",
        "publicKey": {"id": ACTOR + "#main-key", "owner": ACTOR, "publicKeyPem": keypair.public_pem},
    }

    class DocBackend(Backend):
        def base_url(self):
            return "https://hub.example"

        def activity_url(self, obj_id):
            return obj_id

        def note_url(self, obj_id):
            return obj_id

        async def fetch_iri(self, iri, **kwargs):
            assert iri.split("#")[0] == ACTOR
            return doc

    previous = activitypub.BACKEND
    activitypub.use_backend(DocBackend())
    yield
    activitypub.use_backend(previous)


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_active_boxes_verifies_our_signatures(keypair, active_boxes_backend, scheme):
    from active_boxes import httpsig as ab

    sign = httpsig.sign_cavage if scheme == "cavage" else httpsig.sign_rfc9421
    headers = sign(method="POST", url=URL, body=BODY, key_id=ACTOR + "#main-key", private_key=keypair.private)
    headers.setdefault("Host", "hub.example")
    if scheme == "cavage":
        assert await ab.verify_request_cavage("POST", "/users/bob/inbox", headers, BODY.decode())
    else:
        assert await ab.verify_request_rfc9421("POST", URL, headers, BODY)
    # ...and not for another path, nor (through the signed digest) another body
    if scheme == "cavage":
        assert not await ab.verify_request_cavage("POST", "/users/bob/other", headers, BODY.decode())
        tampered = dict(headers, Digest=httpsig.digest_header(b"{}"))
        assert not await ab.verify_request_cavage("POST", "/users/bob/inbox", tampered, "{}")
    else:
        assert not await ab.verify_request_rfc9421("POST", URL, headers, b"{}")


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
def test_we_verify_active_boxes_signatures(keypair, scheme):
    from active_boxes import httpsig as ab
    from active_boxes.key import Key

    key = Key(ACTOR, ACTOR + "#main-key")
    key.load(keypair.private_pem)
    if scheme == "cavage":
        # active-boxes signs "(request-target) user-agent host date digest content-type".
        headers = {"User-Agent": "active-boxes", "Content-Type": "application/activity+json"}
        headers = ab.sign_request_sync("POST", "/users/bob/inbox", headers, key, BODY.decode(), host="hub.example")
    else:
        headers = ab.sign_request_rfc9421_sync("POST", URL, {}, key, BODY)
    parsed = verify(headers, method="POST", url=URL, body=BODY, key=keypair.private.public_key())
    assert parsed.scheme == scheme


def test_keys_load_in_every_form_peers_publish():
    kp = KeyPair()
    ed = KeyPair("ed25519")
    assert crypto.key_kind(crypto.load_public_pem(kp.public_pem)) == "rsa"
    assert crypto.key_kind(crypto.load_public_pem(kp.public_pem_pkcs1)) == "rsa"
    assert crypto.key_kind(crypto.load_multikey(ed.multibase)) == "ed25519"
    with pytest.raises(crypto.KeyFormatError):
        crypto.load_public_pem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    private_pem, public_pem = crypto.generate_rsa_pem()
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert crypto.load_private_pem(private_pem).key_size == 2048
