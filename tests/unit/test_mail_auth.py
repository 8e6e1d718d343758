"""Sender authentication of inbound mail: DKIM (with an injected resolver) and
an upstream MTA's Authentication-Results, trusted only where they can be."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.bridges.email import auth

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
SPKI = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
RECORDS = {"s1._domainkey.customer.test": b"v=DKIM1; k=rsa; p=" + base64.b64encode(SPKI)}


def dns(name: bytes, timeout: int = 5) -> bytes | None:
    return RECORDS.get(name.decode().rstrip("."))


def message(frm: str = "carol@customer.test", body: str = "Hello") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Carol <{frm}>"
    msg["To"] = "acme@hub.example"
    msg["Subject"] = "Hi"
    msg["Message-ID"] = "<a1@customer.test>"
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


def signed(data: bytes, domain: bytes = b"customer.test") -> bytes:
    return dkim.sign(data, b"s1", domain, PEM, include_headers=[b"from", b"to", b"subject", b"message-id"]) + data


def test_an_aligned_valid_dkim_signature_authenticates():
    verdict = auth.check(signed(message()), [], "customer.test", trusted=frozenset(), dnsfunc=dns)
    assert verdict.authenticated and "d=customer.test" in verdict.how


def test_a_subdomain_sender_is_aligned_with_its_parent_domains_signature():
    data = signed(message("carol@mail.customer.test"))
    assert auth.check(data, [], "mail.customer.test", trusted=frozenset(), dnsfunc=dns).authenticated


def test_a_changed_body_a_missing_key_or_another_domain_do_not_authenticate():
    data = signed(message())
    tampered = data.replace(b"Hello", b"Pay me")
    assert not auth.check(tampered, [], "customer.test", trusted=frozenset(), dnsfunc=dns).authenticated
    assert not auth.check(data, [], "customer.test", trusted=frozenset(), dnsfunc=lambda *a, **k: None).authenticated
    # a valid signature of customer.test does not vouch for a From at bank.test
    forged = signed(message("ceo@bank.test"))
    verdict = auth.check(forged, [], "bank.test", trusted=frozenset(), dnsfunc=dns)
    assert not verdict.authenticated and "not aligned" in verdict.how
    assert not auth.check(message(), [], "customer.test", trusted=frozenset(), dnsfunc=dns).authenticated


@pytest.mark.parametrize(("header", "ok"), [
    ("mx.hub.example; dmarc=pass header.from=customer.test", True),
    ("mx.hub.example; dkim=pass header.d=customer.test; spf=fail smtp.mailfrom=x@y.test", True),
    ("mx.hub.example; spf=pass smtp.mailfrom=bounce@customer.test", True),
    ("mx.hub.example; dkim=pass header.d=other.test", False),
    ("mx.hub.example; dmarc=fail header.from=customer.test", False),
    ("evil.example; dmarc=pass header.from=customer.test", False),  # not an authserv-id we trust
    ("mx.hub.example; garbage ===", False),
])
def test_authentication_results_count_only_from_a_trusted_server(header, ok):
    verdict = auth.check(message(), [header], "customer.test", trusted=frozenset({"mx.hub.example"}), dnsfunc=dns)
    assert verdict.authenticated is ok


def test_only_the_results_our_mta_wrote_are_read():
    # OpenDKIM behind Postfix: Postfix's Received on top, the milter's header just below it
    raw = (b"Received: from mx.customer.test by mx.hub.example; Mon, 23 Nov 2026 10:00:01 +0000\r\n"
           b"Authentication-Results: mx.hub.example; dmarc=fail header.from=customer.test\r\n"
           b"Received: from attacker.test by mx.customer.test; Mon, 23 Nov 2026 10:00:00 +0000\r\n"
           b"Authentication-Results: mx.hub.example; dmarc=pass header.from=customer.test\r\n" + message())
    headers = email.message_from_bytes(raw, policy=email.policy.compat32).items()
    ours = auth.results_from_our_side(headers)
    assert ours == ["mx.hub.example; dmarc=fail header.from=customer.test"]
    assert not auth.check(raw, ours, "customer.test", trusted=frozenset({"mx.hub.example"}), dnsfunc=dns).authenticated


async def test_on_a_plain_smtp_listener_authentication_results_count_for_nothing(tmp_path):
    from hub.bridges.email import EmailConnector
    from tests.helpers import make_config

    forged = b"Authentication-Results: mx.hub.example; dmarc=pass header.from=customer.test\r\n" + message()
    for lmtp, expected in ((False, False), (True, True)):
        cfg = make_config(tmp_path, mail_trusted_authserv_ids="mx.hub.example", lmtp=lmtp)
        env = await EmailConnector(cfg, dnsfunc=dns).receive(forged, sender="carol@customer.test",
                                                               recipients=[f"acme@{cfg.mail_domain}"])
        assert env.sender.authenticated is expected
