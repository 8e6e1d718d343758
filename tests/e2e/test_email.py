"""The email bridge end to end, over real SMTP on loopback.

A third hub process ("mail") listens for SMTP and submits its mail to a real
aiosmtpd server that stands in for the customer's mail provider. The
customer's mail client is Python's ``smtplib``. A fediverse user on hub "a"
joins the conversation. Nothing here is faked.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import json
import re
import smtplib
import threading
from email.message import EmailMessage

import dkim
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.conftest import HubProcess, get_json, unique, wait_until
from tests.helpers import free_port

pytestmark = pytest.mark.e2e


class Provider:
    """The customer's mail provider: keeps every message it is handed."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for _f, rcpts, m in self.messages if address in rcpts]

    def envelope_senders(self, address: str) -> list[str]:
        with self.lock:
            return [f for f, rcpts, _m in self.messages if address in rcpts]


@pytest.fixture(scope="module")
def provider():
    handler = Provider()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


DKIM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DKIM_PEM = DKIM_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())


def dkim_signed(msg: EmailMessage) -> bytes:
    """Signed as the customer's provider signs (its key published in the test DNS file)."""
    data = msg.as_bytes(policy=email.policy.SMTP)
    return dkim.sign(data, b"sel", b"customer.test", DKIM_PEM, include_headers=[b"from", b"to", b"subject",
                     b"date", b"message-id", b"in-reply-to", b"references"]) + data


@pytest.fixture(scope="module")
def mailhub(provider, tmp_path_factory):
    _handler, port = provider
    base = tmp_path_factory.mktemp("mailhub")
    spki = DKIM_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    dns = base / "dns.json"  # development mode only: the hub reads DKIM keys from here instead of DNS
    dns.write_text(json.dumps({"sel._domainkey.customer.test": "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()}))
    hub = HubProcess("mail", base, smtp_listen=f"127.0.0.1:{free_port()}", smtp_relay=f"127.0.0.1:{port}",
                     mail_dns_file=str(dns))
    hub.smtp_port = int(hub.config.read_text().split("smtp_listen = ")[1].split(":")[1].split('"')[0])
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def send_mail(hub, msg: EmailMessage, *, mail_from: str, to: list[str], sign: bool = True) -> None:
    data = dkim_signed(msg) if sign else msg.as_bytes(policy=email.policy.SMTP)
    with smtplib.SMTP("127.0.0.1", hub.smtp_port, timeout=10) as s:
        s.sendmail(mail_from, to, data)


def customer_mail(frm: str, to: str, subject: str, body: str, **headers) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate()
    msg["Message-ID"] = email.utils.make_msgid(domain="customer.test")
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg


def organization_with_agent(hub) -> tuple[str, str]:
    """A new organization "Acme" and its agent "Dana"; their usernames."""
    acme, dana = unique("acme"), unique("dana")
    hub.cli("actor", "add", acme, "--kind", "organization", "--name", "Acme")
    hub.cli("actor", "add", dana, "--kind", "person", "--name", "Dana")
    hub.cli("member", "add", acme, dana, "--role", "agent")
    return acme, dana


def mail_to_acme(hub, acme, dana, sender: str, name: str, subject: str, body: str) -> tuple[str, str]:
    """A customer's first (signed) mail to Acme: the conversation it opens, and its bridged author."""
    send_mail(hub, customer_mail(f"{name} <{sender}>", f"{acme}@localhost", subject, body), mail_from=sender,
              to=[f"{acme}@localhost"])
    conv = wait_until(lambda: listing(hub, acme, dana), message="the mail in Acme's inbox")[0]["uri"]
    return conv, show(hub, acme, conv, dana)["messages"][0]["author"]


def code_in(messages) -> str | None:
    """The claim code in the first of these mails that carries one."""
    for m in messages:
        found = re.search(r"code is: ([A-Z0-9]{4}-[A-Z0-9]{4})", m.get_body(("plain",)).get_content())
        if found:
            return found.group(1)
    return None


def claim(hub, box, username: str, address: str) -> None:
    """``username`` claims ``address`` with the code mailed to it."""
    seen = len(box.to(address))
    hub.cli("identity", "claim", username, "email", address)
    code = wait_until(lambda: code_in(box.to(address)[seen:]), message="the claim code")
    hub.cli("identity", "confirm", username, "email", address, code)


def listing(hub, actor, member=None):
    args = ["inbox", "list", actor, "--json"] + (["--member", member] if member else [])
    return json.loads(hub.cli(*args))


def show(hub, actor, conv, member=None):
    args = ["inbox", "show", actor, conv, "--json"] + (["--member", member] if member else [])
    return json.loads(hub.cli(*args))


def test_a_customer_on_email_and_an_organization_share_one_thread_the_customer_owns(mailhub, provider, hubs):
    mail, (box, _port) = mailhub, provider
    fedi, _b = hubs
    carol_acct, frank = unique("carol"), unique("frank")
    carol = f"{unique('carol')}@customer.test"
    acme, dana = organization_with_agent(mail)
    fedi.cli("actor", "add", frank, "--kind", "person", "--name", "Frank")

    # 1. the customer's mail client writes to acme@DOMAIN
    first = customer_mail(f"Carol Customer <{carol}>", f"{acme}@localhost", "My kettle is broken",
                          "Hello,\nthe kettle I bought last week does not heat.\n\nCarol\n-- \nSent from my phone")
    send_mail(mail, first, mail_from=carol, to=[f"{acme}@localhost"])
    items = wait_until(lambda: listing(mail, acme, dana), message="the mail to reach Acme's inbox")
    conv = items[0]["uri"]
    assert items[0]["owner"] != mail.actor_uri(acme)  # owned by the bridged customer, not the organization
    view = show(mail, acme, conv, dana)
    (m1,) = view["messages"]
    assert m1["network"] == "email" and m1["author_name"] == "Carol Customer"
    assert "does not heat" in m1["text"] and "Sent from my phone" not in m1["text"]  # signature stripped
    assert view["conversation"]["subject"] == "My kettle is broken"
    assert {"network": "email", "origin": True} in view["conversation"]["networks"]
    owner_uri = items[0]["owner"]
    assert "@" not in owner_uri.rsplit("/", 1)[1]  # the address is never published in the actor's URI...
    status, doc = get_json(owner_uri)
    assert status == 200 and doc["type"] == "Person" and carol.split("@")[0] not in json.dumps(doc)  # ...nor in it
    assert m1["author_address"] == {"network": "email", "address": carol}  # the people in the conversation see it

    # 2. an agent replies from the hub; it arrives as mail, threaded
    marker = unique("PRIVATE-mail-note-")
    mail.cli("inbox", "set", acme, conv, "--note", f"{marker} customer sounds upset", "--member", dana)
    reply = mail.cli("conversation", "reply", acme, conv, "Sorry! A new kettle is on its way.", "--member", dana).strip()
    (got,) = wait_until(lambda: box.to(carol), message="the reply to reach the customer's provider")
    assert got["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in got["References"]
    assert got["Subject"] == "Re: My kettle is broken"
    assert got["Message-ID"].endswith("@localhost>")
    assert re.fullmatch(rf'"?Acme"? <{acme}\+[A-Za-z0-9_-]+@localhost>', got["From"]), got["From"]
    plain = got.get_body(preferencelist=("plain",))
    assert plain is not None and "new kettle is on its way" in plain.get_content()
    assert "Auto-Submitted" not in got  # a person wrote it
    assert box.envelope_senders(carol)[0].startswith("bounces+")
    delivery = wait_until(lambda: [d for m in show(mail, acme, conv, dana)["messages"] if m["uri"] == reply
                                   for d in m["delivery"] if d.get("network") == "email" and d["state"] == "sent"],
                          message="the delivery state to show the mail as sent")
    assert delivery[0]["address"] == carol

    # 3. the customer answers from their mail client, quoting as mail clients do
    answer = customer_mail(f"Carol Customer <{carol}>", got["From"], "Re: My kettle is broken",
                           "Great, thank you!\n\nOn Mon, 23 Nov 2026 at 10:00, Acme wrote:\n> Sorry! A new kettle is on its way.\n",
                           In_Reply_To=got["Message-ID"], References=f"{first['Message-ID']} {got['Message-ID']}")
    send_mail(mail, answer, mail_from=carol, to=[email.utils.parseaddr(got["From"])[1]])
    view = wait_until(lambda: (v := show(mail, acme, conv, dana)) and len(v["messages"]) == 3 and v,
                      message="the answer in the same conversation")
    assert view["messages"][2]["text"].strip() == "Great, thank you!"  # quoted history stripped
    assert len(listing(mail, acme, dana)) == 1  # no second conversation

    # 4. a fediverse user on another hub joins and sees the mail as a normal thread
    mail.cli("conversation", "add", acme, conv, fedi.handle(frank), "--member", dana)
    fview = wait_until(lambda: [i for i in listing(fedi, frank) if i["uri"] == conv]
                       and (v := show(fedi, frank, conv)) and len(v["messages"]) == 3 and v,
                       timeout=30, message="the fediverse user to see the whole thread")
    assert [m["author"] for m in fview["messages"]][0] == owner_uri
    assert "does not heat" in fview["messages"][0]["text"]
    fedi.cli("conversation", "reply", frank, conv, "Frank from the repair shop: I can fix the old one too.")
    relayed = wait_until(lambda: [m for m in box.to(carol) if "repair shop" in m.get_body(("plain",)).get_content()],
                         timeout=30, message="the fediverse reply to reach the customer by mail")
    assert "via Acme" in relayed[0]["From"]  # says who really wrote it
    assert "Frank" in relayed[0].get_body(("plain",)).get_content()

    # the private note never left: not in any mail, not on the other hub
    assert all(marker not in m.as_string() for _f, _r, m in box.messages)
    for table, column in (("activities", "raw"), ("messages", "content_text"), ("jobs", "payload")):
        assert fedi.sql(f"SELECT count(*) FROM {table} WHERE {column} LIKE '%{marker}%'") == [(0,)], table
    assert mail.sql(f"SELECT count(*) FROM jobs WHERE kind = 'bridge.send' AND payload LIKE '%{marker}%'") == [(0,)]

    # 5. the customer claims the address from their account: the conversation is theirs
    mail.cli("actor", "add", carol_acct, "--kind", "person", "--name", "Carol")
    before = len(box.to(carol))
    mail.cli("identity", "claim", carol_acct, "email", carol)
    code_mail = wait_until(lambda: box.to(carol)[before:], message="the confirmation code by mail")[0]
    assert code_mail["Auto-Submitted"] == "auto-generated"
    code = code_in([code_mail])
    rc, _out, err = mail.cli("identity", "confirm", carol_acct, "email", carol, "AAAA-AAAA", check=False)
    assert rc != 0 and "wrong code" in err
    mail.cli("identity", "confirm", carol_acct, "email", carol, code)
    mine = listing(mail, carol_acct)
    assert [c["uri"] for c in mine] == [conv] and mine[0]["owner"] == mail.actor_uri(carol_acct)
    assert show(mail, acme, conv, dana)["conversation"]["owner"] == mail.actor_uri(carol_acct)
    # her next mail is written by her account
    more = customer_mail(f"Carol <{carol}>", got["From"], "Re: My kettle is broken", "One more question.",
                         In_Reply_To=got["Message-ID"])
    send_mail(mail, more, mail_from=carol, to=[email.utils.parseaddr(got["From"])[1]])
    last = wait_until(lambda: (v := show(mail, carol_acct, conv)) and len(v["messages"]) == 5 and v["messages"][-1],
                      message="her next mail in her conversation")
    assert last["author"] == mail.actor_uri(carol_acct) and last["network"] == "email"
    assert "unauthenticated" not in last["flags"]
    # a forged mail in her name (no valid signature) never speaks for her account
    forged = customer_mail(f"Carol <{carol}>", got["From"], "Re: My kettle is broken", "Send the refund to IBAN X",
                           In_Reply_To=got["Message-ID"])
    send_mail(mail, forged, mail_from=carol, to=[email.utils.parseaddr(got["From"])[1]], sign=False)
    other = wait_until(lambda: [c for c in listing(mail, acme, dana) if c["uri"] != conv],
                       message="the forged mail to be placed apart")
    (fake,) = show(mail, acme, other[0]["uri"], dana)["messages"]
    assert fake["author"] != mail.actor_uri(carol_acct) and "unverified_claimed_identity" in fake["flags"]
    assert len(show(mail, carol_acct, conv)["messages"]) == 5  # not in her conversation
    assert listing(mail, carol_acct)[0]["uri"] == conv and len(listing(mail, carol_acct)) == 1
    # and the fediverse participant's hub follows the new owner
    wait_until(lambda: [i for i in listing(fedi, frank) if i["uri"] == conv][0]["owner"] == mail.actor_uri(carol_acct),
               timeout=30, message="the other hub to see the conversation as hers")


def test_bounces_and_auto_replies_never_become_messages(mailhub):
    mail = mailhub
    shop = unique("shop")
    mail.cli("actor", "add", shop, "--kind", "organization", "--name", "Shop")
    ooo = customer_mail("Out Of Office <ooo@customer.test>", f"{shop}@localhost", "Automatic reply: away",
                        "I am away until Monday.", Auto_Submitted="auto-replied")
    send_mail(mail, ooo, mail_from="ooo@customer.test", to=[f"{shop}@localhost"])
    bulk = customer_mail("News <news@list.test>", f"{shop}@localhost", "Weekly news", "Hello all",
                         Precedence="bulk", List_Id="<news.list.test>")
    send_mail(mail, bulk, mail_from="news@list.test", to=[f"{shop}@localhost"])
    def classified():
        rows = json.loads(mail.cli("bridge", "items", "email", "--json"))
        return [i for i in rows if i["sender"] in ("ooo@customer.test", "news@list.test") and i["status"] != "queued"]

    items = wait_until(lambda: len(x := classified()) == 2 and x, message="the items to be classified")
    assert all(i["status"] == "flagged" and i["message_id"] is None for i in items)
    assert listing(mail, shop) == []

    # unknown recipients, other domains and mail without From are refused in the SMTP dialogue
    with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("x@customer.test")
        code, text = s.rcpt("nobody-here@localhost")
        assert code == 550 and b"5.1.1" in text
        code, text = s.rcpt("someone@elsewhere.test")
        assert code == 550 and b"5.7.1" in text
        assert s.rcpt(f"{shop}@localhost")[0] == 250
        code, text = s.data(b"Subject: no sender\r\n\r\nhello\r\n")
        assert code == 550 and b"From" in text


def test_a_claimed_address_moves_with_its_customer(mailhub, provider, tmp_path):
    """The customer claimed her address on the mail hub, then moves to hub C: her mail keeps reaching the
    conversation (now hers on C), the organization's answers keep reaching her address, what she writes from
    C is not mailed back to her, a new thread by mail reaches her on C, and C claims the address anew by a
    code sent to it (an archive proves nothing about an address)."""
    mail, (box, port) = mailhub, provider
    dora_acct, dora_new = unique("dora"), unique("dora")
    dora = f"{unique('dora')}@customer.test"
    acme, dana = organization_with_agent(mail)
    mail.cli("actor", "add", dora_acct, "--kind", "person", "--name", "Dora")

    conv, puppet = mail_to_acme(mail, acme, dana, dora, "Dora", "Where is my parcel?", "It has been ten days.")
    mail.cli("conversation", "reply", acme, conv, "It left our warehouse today.", "--member", dana)
    (got,) = wait_until(lambda: box.to(dora), message="the answer by mail")

    claim(mail, box, dora_acct, dora)
    assert show(mail, acme, conv, dana)["conversation"]["owner"] == mail.actor_uri(dora_acct)

    c = HubProcess("c", tmp_path, smtp_relay=f"127.0.0.1:{port}")
    c.start()
    try:
        archive = tmp_path / "dora.zip"
        mail.cli("export", dora_acct, "--out", str(archive))
        import zipfile

        with zipfile.ZipFile(archive) as z:
            (ident,) = json.loads(z.read("identities.json"))["items"]
        assert ident["remoteId"] == dora and ident["actor"] == puppet and ident["conversations"] == [conv]

        seen = len(box.to(dora))
        summary = json.loads(c.cli("import", str(archive), "--as", dora_new, "--json"))
        assert summary["identities"] == [{"network": "email", "remote_id": dora, "state": "code_sent",
                                          "expires_at": summary["identities"][0]["expires_at"]}]
        # the claim on C is not taken from the archive: the code sent to the address proves it
        assert json.loads(c.cli("identity", "list", dora_new, "--json")) == []
        code = wait_until(lambda: code_in(box.to(dora)[seen:]), message="C's claim code")
        c.cli("identity", "confirm", dora_new, "email", dora, code)
        assert [i["remote_id"] for i in json.loads(c.cli("identity", "list", dora_new, "--json"))] == [dora]
        (mine,) = listing(c, dora_new)
        assert mine["owner"] == c.actor_uri(dora_new) and len(show(c, dora_new, mine["uri"])["messages"]) == 2

        c.cli("alias", "add", dora_new, mail.handle(dora_acct))
        mail.cli("move", dora_acct, c.handle(dora_new))
        wait_until(lambda: show(mail, acme, conv, dana)["conversation"]["owner"] == c.actor_uri(dora_new),
                   message="the conversation on the mail hub to name her new self")
        assert json.loads(mail.cli("identity", "list", dora_acct, "--json")) == []  # the claim went with her

        # her mail, answered from her mail client, reaches the conversation on C, as her bridged self
        more = customer_mail(f"Dora <{dora}>", got["From"], "Re: Where is my parcel?", "Still nothing here.",
                             In_Reply_To=got["Message-ID"])
        send_mail(mail, more, mail_from=dora, to=[email.utils.parseaddr(got["From"])[1]])
        last = wait_until(lambda: (v := show(c, dora_new, mine["uri"])) and len(v["messages"]) == 3
                          and v["messages"][-1], timeout=30, message="her mail in her conversation on C")
        assert "Still nothing" in last["text"] and last["author"] == puppet
        assert len(listing(mail, acme, dana)) == 1  # the same conversation at Acme, not a new one

        # Acme's answer reaches both her address and C
        seen = len(box.to(dora))
        mail.cli("conversation", "reply", acme, conv, "A courier will call tomorrow.", "--member", dana)
        wait_until(lambda: [m for m in box.to(dora)[seen:] if "courier" in m.get_body(("plain",)).get_content()],
                   message="the answer by mail after the move")
        wait_until(lambda: "courier" in show(c, dora_new, mine["uri"])["messages"][-1]["text"], timeout=30,
                   message="the answer on C")

        # what she writes on C reaches Acme, and is not mailed back to her own address
        c.cli("conversation", "reply", dora_new, mine["uri"], "Thanks, I will be home.")
        wait_until(lambda: "be home" in show(mail, acme, conv, dana)["messages"][-1]["text"], timeout=30,
                   message="her message from C at Acme")
        mail.cli("conversation", "reply", acme, conv, "Noted, see you then.", "--member", dana)
        wait_until(lambda: [m for m in box.to(dora) if "see you then" in m.get_body(("plain",)).get_content()],
                   message="the next answer by mail")
        assert not [m for m in box.to(dora) if "be home" in m.get_body(("plain",)).get_content()]

        # a new thread started by mail reaches her on C too
        fresh = customer_mail(f"Dora <{dora}>", f"{acme}@localhost", "A second order", "Order 42 is wrong.")
        send_mail(mail, fresh, mail_from=dora, to=[f"{acme}@localhost"])
        wait_until(lambda: [i for i in listing(c, dora_new) if i["uri"] != mine["uri"]], timeout=30,
                   message="the new thread on C")
        assert len(listing(mail, acme, dana)) == 2
    finally:
        c.stop()


def test_leaving_for_good_tells_the_people_on_email_and_forgets_the_claimed_address(mailhub, provider):
    mail, (box, _port) = mailhub, provider
    erin_acct = unique("erin")
    erin, bob = f"{unique('erin')}@customer.test", f"{unique('bob')}@customer.test"
    acme, dana = organization_with_agent(mail)
    mail.cli("actor", "add", erin_acct, "--kind", "person", "--name", "Erin")

    conv, puppet = mail_to_acme(mail, acme, dana, erin, "Erin", "Warranty", "My blender broke.")
    claim(mail, box, erin_acct, erin)
    # she brings her partner in, by mail, and writes to him
    mail.cli("conversation", "add", erin_acct, conv, f"mailto:{bob}")
    mail.cli("conversation", "reply", erin_acct, conv, "Bob, the receipt is in the drawer.")
    wait_until(lambda: [m for m in box.to(bob) if "drawer" in m.get_body(("plain",)).get_content()],
               message="her message to Bob by mail")
    to_erin = len(box.to(erin))

    summary = json.loads(mail.cli("account", "delete", erin_acct, "--json"))
    assert summary["identities_erased"] == 1 and summary["bridged_told"] == 1 and summary["conversations_closed"] == 1
    notice = wait_until(lambda: [m for m in box.to(bob) if "deleted their account" in m.get_body(("plain",)).get_content()],
                        message="the notice to Bob")[0]
    body = notice.get_body(("plain",)).get_content()
    assert f"@{erin_acct}@" in body and "now closed" in body and "copies you received stay" in body
    assert notice["Auto-Submitted"] == "auto-generated" and notice["Subject"] == "Re: Warranty"
    assert "Erin" not in body  # her name is erased; her handle stays as her tombstone does
    # the account's own address is not told, and is forgotten: nothing on this hub names it any more
    assert len(box.to(erin)) == to_erin
    assert mail.sql(f"SELECT count(*) FROM remote_identities WHERE remote_id LIKE '%{erin}%'") == [(0,)]
    assert mail.sql("SELECT count(*) FROM messages WHERE content_text LIKE '%blender%'") == [(0,)]
    assert get_json(puppet)[0] == 410 and get_json(mail.actor_uri(erin_acct))[0] == 410
    # the job is not repeated: one notice
    wait_until(lambda: mail.sql("SELECT state FROM jobs WHERE kind = 'bridge.leave' AND payload LIKE "
                                f"'%{summary['actor'].rsplit('/', 1)[-1]}%'") in ([("done",)], []), message="the job")
    assert len([m for m in box.to(bob) if "deleted their account" in m.get_body(("plain",)).get_content()]) == 1
    # mail from the address later starts afresh, with nobody's account
    again = customer_mail(f"Erin <{erin}>", f"{acme}@localhost", "Hello again", "Another question.")
    send_mail(mail, again, mail_from=erin, to=[f"{acme}@localhost"])
    fresh = wait_until(lambda: [i for i in listing(mail, acme, dana) if i["uri"] != conv], message="a new thread")
    assert fresh[0]["owner"] not in (puppet, mail.actor_uri(erin_acct))
