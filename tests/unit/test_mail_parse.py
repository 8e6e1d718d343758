"""The email bridge's parser on mail in the shapes real clients and servers send
(tests/fixtures/mail, described in its README)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest

from hub.bridges.base import Envelope, Rejected
from hub.bridges.email import parse as mail

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
SETTINGS = mail.Settings(mail_domain="hub.example")

TOKEN = "3f9a1c0e7b2d4a68"
ACME = f"acme+{TOKEN}@hub.example"
M0 = "01kb7k8e2c4d6f8g0h2j4k6m8n"  # Acme's first message
M1 = "01kb7m3q9v2r5t8w1x4y6z0a2c"  # Acme's second, which the replies answer
BOUNCES = f"bounces+{M1}@hub.example"
THREAD = [f"{M1}@hub.example", f"{M0}@hub.example"]  # In-Reply-To, then References newest first

# Acme's text, quoted in the replies: none of it may survive cleaning
QUOTED = "from Saturday morning until Sunday afternoon"

# The SMTP envelope each file came with: MAIL FROM, RCPT TO
ENVELOPES: dict[str, tuple[str, list[str]]] = {
    "outlook_reply.eml": ("Carol.Danvers@Northwind.example", [ACME]),
    "gmail_reply.eml": ("bruno.diaz@gmail.com", [ACME]),
    "apple_mail_reply.eml": ("dana@scully.example", [ACME]),
    "thunderbird_reply.eml": ("ingrid@halvorsen.example", [ACME]),
    "thunderbird_inline_reply.eml": ("ingrid@halvorsen.example", [ACME]),
    "german_outlook.eml": ("j.mueller@beispiel.example", [ACME]),
    "windows1252.eml": ("frank@obrien.example", [ACME]),
    "iso8859_1.eml": ("francois@lefevre.example", ["acme@hub.example"]),
    "mislabeled_latin1.eml": ("www-data@web01.hallfriends.example", ["acme@hub.example"]),
    "iso2022jp.eml": ("hanako.yamada@example.jp", ["acme@hub.example"]),
    "base64_body.eml": ("erin.walsh@example.net", [ACME]),
    "html_only.eml": ("wordpress@hallfriends.example", ["acme@hub.example"]),
    "attachment.eml": ("lucie@martin.example", [ACME]),
    "gmail_attachment.eml": ("bruno.diaz@gmail.com", [ACME]),
    "smtputf8_headers.eml": ("zoe@angstrom.example", [ACME]),
    "bounce_dsn.eml": ("", [BOUNCES]),
    "delayed_dsn.eml": ("", [BOUNCES]),
    "bounce_gmail_to_author.eml": ("", [ACME]),
    "bounce_qmail.eml": ("", [BOUNCES]),
    "out_of_office.eml": ("grace.hopper@northwind.example", [ACME]),
    "vacation_precedence.eml": ("henry@oldunix.example", [ACME]),
    "autoresponder_x_autoreply.eml": ("office@stmary-parish.example", [ACME]),
    "mailing_list.eml": ("volunteers-bounces+acme=hub.example@lists.hallfriends.example", ["acme@hub.example"]),
    "loop.eml": (f"SRS0=Qx3k=T2=hub.example=bounces+{M1}@remote.example", ["acme@hub.example"]),
    "xloop.eml": ("ivan@petrov.example", ["acme@hub.example"]),
    "malformed.eml": ("sales@bouncy.example", ["acme@hub.example"]),
}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> Envelope | Rejected:
    mail_from, rcpt_to = ENVELOPES[name]
    return mail.parse(raw(name), network="email", sender=mail_from, recipients=rcpt_to, settings=SETTINGS)


def uncleaned(name: str) -> str:
    """The body the parser picks, before quotes and signatures come off."""
    msg = email.message_from_bytes(raw(name), policy=email.policy.compat32)
    return mail.bodies(msg, [], SETTINGS)[0]


def utc(*args: int, hours: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=hours)))


def test_every_fixture_has_an_envelope():
    assert sorted(p.name for p in FIXTURES.glob("*.eml")) == sorted(ENVELOPES)


# --- people's replies and first messages ---------------------------------------------------


@dataclasses.dataclass
class Case:
    text: str
    """The cleaned text, exactly."""
    absent: list[str]
    """Quoted history and signatures in the body that cleaning must take off."""
    sender: str
    name: str | None
    subject: str
    published: dt.datetime
    reply_to: list[str] = dataclasses.field(default_factory=lambda: list(THREAD))
    token: str | None = TOKEN


CASES = {
    "outlook_reply.eml": Case(
        text="Hi Acme,\n\nYes, we can have the six trestle tables from the hall store. I\u2019ll ask Sam to unlock it on "
             "Friday evening so they can go into the van before 8am on Saturday.",
        absent=[QUOTED, "Sent: Monday, November 23, 2026", "Volunteer coordinator", "01632 960123", "Kind regards"],
        sender="carol.danvers@northwind.example", name="Carol Danvers", subject="RE: Spring fair tables",
        published=utc(2026, 11, 23, 10, 42, 17),
    ),
    "gmail_reply.eml": Case(
        text="Great, count me in for Saturday. I can also bring the urn from the caf\u00e9 if that\nhelps \u2615",
        absent=[QUOTED, "wrote:", f"<{ACME}>"],
        sender="bruno.diaz@gmail.com", name="Bruno D\u00edaz", subject="Re: Spring fair tables",
        published=utc(2026, 11, 23, 10, 17, 45),
    ),
    "apple_mail_reply.eml": Case(
        # delsp=yes: the soft break's extra space is gone, the words' own space stays
        text="Saturday works for me. I\u2019ll be at the hall from 8 to help unload, and I can stay until the raffle "
             "is drawn.\n\nDana",
        absent=[QUOTED, "> On 23 Nov 2026, at 10:00, Acme"],
        sender="dana@scully.example", name="Dana Scully", subject="Re: Spring fair tables",
        published=utc(2026, 11, 23, 10, 31, 2),
    ),
    "thunderbird_reply.eml": Case(
        # written below the quote, Thunderbird's default
        text="The hall store has eight, so six is no problem. I'll leave the key with the caretaker \u2013 just ask at "
             "the side door.",
        absent=[QUOTED, "On 23/11/2026 10:00, Acme wrote:", "Hall bookings, St Aidan's", "-- "],
        sender="ingrid@halvorsen.example", name="Ingrid Halvorsen", subject="Re: Spring fair tables",
        published=utc(2026, 11, 23, 11, 5, 32, hours=1),
    ),
    "german_outlook.eml": Case(
        text="Hallo zusammen,\n\nich bringe am Samstag zwei Biertischgarnituren mit. K\u00f6nnen wir die Tische um 8 "
             "Uhr aufbauen?",
        absent=[QUOTED, "Gesendet: Montag, 23. November 2026", "Viele Gr\u00fc\u00dfe"],
        sender="j.mueller@beispiel.example", name="J\u00fcrgen M\u00fcller", subject="AW: Spring fair tables",
        published=utc(2026, 11, 23, 11, 48, 9, hours=1),
    ),
    "windows1252.eml": Case(
        text="Grand, I\u2019ll bring the \u201cgood\u201d urn as well. The hire is \u20ac30 for the weekend, "
             "I\u2019ll pay it.\n\nFrank",
        absent=[QUOTED, "-----Original Message-----", "[mailto:"],
        sender="frank@obrien.example", name="Frank O'Brien", subject="RE: Spring fair tables",
        published=utc(2026, 11, 23, 11, 2, 44),
    ),
    "iso8859_1.eml": Case(
        text="Bonjour,\n\nJe peux tenir le stand caf\u00e9 samedi matin, et ma femme apportera des\ng\u00e2teaux. "
             "Faut-il pr\u00e9voir une rallonge \u00e9lectrique pour la machine ?\n\nAmiti\u00e9s,\nFran\u00e7ois",
        absent=["Fran\u00e7ois Lef\u00e8vre", "06 12 34 56 78"],
        sender="francois@lefevre.example", name="Fran\u00e7ois Lef\u00e8vre",
        subject="Caf\u00e9 et g\u00e2teaux pour samedi", published=utc(2026, 11, 23, 11, 20, 3, hours=1),
        reply_to=[], token=None,
    ),
    "mislabeled_latin1.eml": Case(
        # labelled ISO-8859-1, written in Windows-1252: read as browsers read it
        text="Name: Erin Walsh\nE-mail: erin.walsh@example.net\nStall: Cakes \u2013 home-made\n\nMessage:\n"
             "We\u2019d like a \u201cdouble\u201d pitch near the entrance. Is the \u20ac25 fee per day or for the "
             "whole weekend?",
        absent=[],
        sender="website@hallfriends.example", name="Hall Friends website", subject="Stall booking from the website",
        published=utc(2026, 11, 23, 9, 30, 12), reply_to=[], token=None,
    ),
    "iso2022jp.eml": Case(
        text="Acme \u5fa1\u4e2d\n\n"
             "\u5c71\u7530\u3067\u3059\u3002\u3044\u3064\u3082\u304a\u4e16\u8a71\u306b\u306a\u3063\u3066\u304a\u308a"
             "\u307e\u3059\u3002\n\n"
             "\u571f\u66dc\u65e5\u306e\u6625\u796d\u308a\u306e\u4ef6\u3001\u30c6\u30fc\u30d6\u30eb\u3092\u4e8c\u53f0"
             "\u304a\u501f\u308a\u3067\u304d\u307e\u3059\u3067\u3057\u3087\u3046\u304b\u3002\n"
             "\u642c\u5165\u306f\u671d\u516b\u6642\u3054\u308d\u3092\u4e88\u5b9a\u3057\u3066\u3044\u307e\u3059\u3002"
             "\n\n\u3088\u308d\u3057\u304f\u304a\u9858\u3044\u3044\u305f\u3057\u307e\u3059\u3002",
        absent=["hanako.yamada@example.jp"],
        sender="hanako.yamada@example.jp", name="\u5c71\u7530 \u82b1\u5b50",
        subject="\u6625\u796d\u308a\u306e\u30c6\u30fc\u30d6\u30eb\u306b\u3064\u3044\u3066",
        published=utc(2026, 11, 24, 9, 12, 40, hours=9), reply_to=[], token=None,
    ),
    "base64_body.eml": Case(
        text="Yes please, put me down for the cake stall \U0001f370 I\u2019ll bring a float for change.",
        absent=[QUOTED, "Sent from my Galaxy", "-------- Original message --------"],
        sender="erin.walsh@example.net", name="Erin Walsh", subject="Re: Spring fair tables",
        published=utc(2026, 11, 23, 10, 21, 1),
    ),
    "html_only.eml": Case(
        text="A stall booking came in through the website.\n\nName: Erin Walsh\nStall: Cakes & bakes\n"
             "Pitch: double, near the entrance\n\nMessage:\nWe\u2019d like to sell home-made cr\u00e8me "
             "br\u00fbl\u00e9e \u2013 can we plug in a small fridge?\n"
             "See [our stall page](https://hallfriends.example/stalls/cakes) for photos.",
        absent=["This e-mail was sent from a contact form"],
        sender="wordpress@hallfriends.example", name="Hall Friends website",
        subject="New stall booking: Cakes & bakes", published=utc(2026, 11, 23, 9, 48, 31), reply_to=[], token=None,
    ),
    "attachment.eml": Case(
        text="Bonjour,\n\nVoici le plan de salle pour samedi, et le formulaire d'inscription des exposants.\n\nLucie",
        absent=[],
        sender="lucie@martin.example", name="Lucie Martin", subject="Plan de salle et formulaire",
        published=utc(2026, 11, 23, 12, 14, 9, hours=1), reply_to=[],
    ),
    "gmail_attachment.eml": Case(
        text="Here are the receipts for the tea and the raffle prizes.",
        absent=[],
        sender="bruno.diaz@gmail.com", name="Bruno D\u00edaz", subject="Re: Spring fair tables",
        published=utc(2026, 11, 23, 13, 2, 11), reply_to=[f"{M1}@hub.example"],
    ),
    "smtputf8_headers.eml": Case(
        text="I can bring k\u00f6ttbullar for forty people.",
        absent=[],
        sender="zoe@angstrom.example", name="Zo\u00eb \u00c5ngstr\u00f6m",
        subject="Re: Spring fair tables \u2013 k\u00f6ttbullar f\u00f6r alla",
        published=utc(2026, 11, 23, 10, 55, 0, hours=1), reply_to=[f"{M1}@hub.example"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_message_becomes_its_cleaned_text(name: str):
    case = CASES[name]
    env = parse(name)
    assert isinstance(env, Envelope), env
    body = uncleaned(name)
    for gone in case.absent:
        assert gone in body, f"the fixture should contain {gone!r} before cleaning"
        assert gone not in env.text, f"{gone!r} survived cleaning"
    assert "\ufffd" not in env.text and "\r" not in env.text
    assert env.text == case.text


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_message_names_its_sender_thread_and_date(name: str):
    case = CASES[name]
    env = parse(name)
    assert isinstance(env, Envelope), env
    assert env.network == "email"
    assert env.sender.remote_id == case.sender
    assert env.sender.display_name == case.name
    assert env.sender.authenticated is False  # the connector judges that, not the parser
    assert env.subject == case.subject
    assert env.reply_to == case.reply_to
    assert env.thread_token == case.token
    assert env.recipients == ["acme"]
    assert env.published == case.published
    assert env.flags == []  # well-formed mail: nothing to flag
    assert env.txn_id is None and env.hops == 0


@pytest.mark.parametrize(("name", "remote_id"), [
    ("outlook_reply.eml", "AM6PR04MB59218C3E5F0A7B8D9E1F2A3B4C5D6E7F8A9@AM6PR04MB5921.eurprd04.prod.outlook.com"),
    ("gmail_reply.eml", "CAJx8nV2mT0q3Zp5c1yQeR7dLfK9wH4uB6aS2gE8oXnY3rWkM0A@mail.gmail.com"),
    ("apple_mail_reply.eml", "9E3A7C21-5B4D-4F8E-A0C6-2D1B7E9F3A58@scully.example"),
    ("windows1252.eml", "000601db5d2a$3c4f1e20$b4ed5a60$@obrien.example"),
    ("iso2022jp.eml", "20261124091240.8F3C.A1B2C3D4@example.jp"),
])
def test_the_remote_id_is_the_message_id_without_brackets(name: str, remote_id: str):
    env = parse(name)
    assert isinstance(env, Envelope)
    assert env.remote_id == remote_id


def test_an_interleaved_reply_keeps_its_quotes_with_flowed_lines_joined_at_their_depth():
    env = parse("thunderbird_inline_reply.eml")
    assert isinstance(env, Envelope)
    assert "On 23/11/2026 10:00, Acme wrote:" in uncleaned("thunderbird_inline_reply.eml")
    assert "wrote:" not in env.text
    assert " > " not in env.text  # no quote marks inside a joined line
    assert env.text == (
        "> Can we borrow the trestle tables from the hall for the spring fair? We need six,\n\n"
        "Yes, six is fine.\n\n"
        "> from Saturday morning until Sunday afternoon.\n\n"
        "Sunday afternoon is tight: the Brownies have the hall from 4pm, so could they be back by 3?\n\n"
        "Ingrid"
    )
    assert env.reply_to == THREAD and env.thread_token == TOKEN


# --- attachments ---------------------------------------------------------------------------


def test_attachments_keep_their_rfc2231_names_types_and_bytes():
    env = parse("attachment.eml")
    assert isinstance(env, Envelope)
    assert [(a.filename, a.content_type) for a in env.attachments] == [
        ("Plan de salle \u2013 f\u00eate.png", "image/png"),
        ("Formulaire d'inscription des exposants \u2013 f\u00eate du printemps 2026.pdf", "application/pdf"),
    ]
    png, pdf = env.attachments
    assert png.data == (FIXTURES / "attachment.png").read_bytes()
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.data == (FIXTURES / "attachment.pdf").read_bytes()
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.rstrip().endswith(b"%%EOF")


def test_an_attachment_name_in_rfc2047_words_is_decoded():
    env = parse("gmail_attachment.eml")
    assert isinstance(env, Envelope)
    assert len(env.attachments) == 1
    (pdf,) = env.attachments
    assert pdf.filename == "Relev\u00e9 des d\u00e9penses \u2013 novembre.pdf"
    assert pdf.content_type == "application/pdf"
    assert pdf.data == (FIXTURES / "attachment.pdf").read_bytes()


def test_an_attachment_over_the_limit_is_dropped_and_flagged():
    small = mail.Settings(mail_domain="hub.example", max_attachment_bytes=100)
    env = mail.parse(raw("attachment.eml"), network="email", sender="lucie@martin.example", recipients=[ACME],
                     settings=small)
    assert isinstance(env, Envelope)
    assert [a.content_type for a in env.attachments] == ["image/png"]  # 78 bytes kept, the PDF is larger
    assert env.flags == ["attachment_dropped"]


# --- bounces -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "permanent", "recipient", "status"), [
    ("bounce_dsn.eml", True, "carol.old@remote.example", "5.1.1"),
    ("delayed_dsn.eml", False, "frank@slow.example", "4.4.1"),
    ("bounce_gmail_to_author.eml", True, "dana.old@gmail.com", "5.1.1"),
    ("bounce_qmail.eml", True, None, None),
])
def test_a_bounce_names_the_send_it_returns(name: str, permanent: bool, recipient: str | None, status: str | None):
    result = parse(name)
    assert isinstance(result, Rejected), result
    assert result.flags == ["bounce"]
    assert result.bounce_of == M1
    assert result.permanent is permanent
    assert result.bounced_recipient == recipient
    assert result.echo is False
    assert result.reason.startswith("bounce: ")
    if status:
        assert f"status {status}" in result.reason


def test_a_dsn_without_the_bounce_address_is_traced_by_the_returned_copy():
    # it came to acme+TOKEN, not to bounces+TXN: only the returned copy's X-Roundtable-Txn names the send
    assert not any(r.startswith("bounces+") for r in ENVELOPES["bounce_gmail_to_author.eml"][1])
    data = raw("bounce_gmail_to_author.eml")
    assert f"X-Roundtable-Txn: {M1}".encode() in data
    result = parse("bounce_gmail_to_author.eml")
    assert isinstance(result, Rejected)
    assert result.bounce_of == M1
    without_txn = data.replace(f"X-Roundtable-Txn: {M1}".encode(), b"X-Other: x")
    result = mail.parse(without_txn, network="email", sender="", recipients=[ACME], settings=SETTINGS)
    assert isinstance(result, Rejected)
    assert result.bounce_of == f"{M1}@hub.example"  # then the copy's Message-ID


def test_a_delay_is_not_a_failure():
    result = parse("delayed_dsn.eml")
    assert isinstance(result, Rejected)
    assert result.permanent is False
    assert "delayed" in result.reason


# --- automatic mail, list mail, loops ------------------------------------------------------


@pytest.mark.parametrize(("name", "flags", "reason"), [
    ("out_of_office.eml", ["auto_reply"], "Auto-Submitted: auto-replied"),
    ("vacation_precedence.eml", ["auto_reply"], "Precedence: bulk"),
    ("autoresponder_x_autoreply.eml", ["auto_reply"], "X-Autoreply"),
    ("mailing_list.eml", ["list"], "mailing-list"),
    ("xloop.eml", ["loop"], "X-Loop"),
])
def test_mail_no_person_wrote_to_us_is_rejected(name: str, flags: list[str], reason: str):
    result = parse(name)
    assert isinstance(result, Rejected), result
    assert result.flags == flags
    assert reason in result.reason
    assert result.bounce_of is None
    assert result.echo is False


def test_our_own_message_come_back_is_an_echo():
    result = parse("loop.eml")
    assert isinstance(result, Rejected), result
    assert result.flags == ["loop"]
    assert result.echo is True
    assert result.bounce_of is None


# --- broken mail ---------------------------------------------------------------------------


def test_broken_mime_still_gives_its_text_flagged():
    env = parse("malformed.eml")
    assert isinstance(env, Envelope), env
    assert env.text == "Hello from Bob\u2019s Bouncy Castles! Our quote for Saturday: one castle, 9am to 5pm, \u00a3180."
    assert "malformed" in env.flags  # no closing boundary
    assert "bad_encoding" in env.flags  # charset="utf8x"
    assert env.sender.remote_id == "sales@bouncy.example"
    assert env.sender.display_name == "Bob's Bouncy Castles"


@pytest.mark.parametrize("name", sorted(ENVELOPES))
def test_a_truncated_message_never_raises(name: str):
    data = raw(name)
    mail_from, rcpt_to = ENVELOPES[name]
    for cut in sorted({len(data) * i // 16 for i in range(16)} | {len(data) - 1}):
        result = mail.parse(data[:cut], network="email", sender=mail_from, recipients=rcpt_to, settings=SETTINGS)
        assert isinstance(result, (Envelope, Rejected)), (cut, result)


def test_a_broken_rfc2231_name_loses_only_the_name():
    data = raw("attachment.eml")
    broken = data.replace(b" filename*1*=", b" filename*=x;\r\n filename*1*=")  # a plain part among continuations
    assert broken != data
    env = mail.parse(broken, network="email", sender="lucie@martin.example", recipients=[ACME], settings=SETTINGS)
    assert isinstance(env, Envelope), env
    assert env.text == CASES["attachment.eml"].text
    assert [a.filename for a in env.attachments] == ["Plan de salle \u2013 f\u00eate.png", "attachment-2"]
    assert env.attachments[1].data == (FIXTURES / "attachment.pdf").read_bytes()


def test_a_message_the_standard_parser_raises_on_is_rejected_as_malformed():
    data = raw("attachment.eml")
    boundary = b'boundary="------------f3Jq0nV8sK2yB5wX7zR1cM4d"'
    broken = data.replace(boundary, boundary + b"; boundary*=''x; boundary*0=y")
    assert broken != data
    with pytest.raises(TypeError):  # CPython's own parser chokes on it
        email.message_from_bytes(broken, policy=email.policy.compat32)
    result = mail.parse(broken, network="email", sender="lucie@martin.example", recipients=[ACME], settings=SETTINGS)
    assert isinstance(result, Rejected), result
    assert result.flags == ["malformed"]
    assert result.reason.startswith("an unreadable message")


def test_a_list_in_a_reply_is_kept_and_the_signature_after_the_separator_is_not():
    text = ("Here is what is missing:\n- the lid\n- the power cord\n- the manual\n\nThanks\n-- \nCarol Customer\n"
            "+49 30 1234567\n")
    assert mail.strip_quotes(text) == "Here is what is missing:\n- the lid\n- the power cord\n- the manual\n\nThanks"


def test_a_german_exchange_auto_reply_subject_is_recognised_without_headers():
    msg = ("From: Jana <jana@example.de>\r\nTo: acme@hub.example\r\nSubject: Automatische Antwort: Ihre Bestellung\r\n"
           "Message-ID: <ar-1@example.de>\r\n\r\nIch bin bis Montag nicht im Buero.\r\n").encode()
    result = mail.parse(msg, network="email", sender="jana@example.de", recipients=["acme@hub.example"],
                        settings=SETTINGS)
    assert isinstance(result, Rejected) and "auto_reply" in result.flags


def test_composed_mail_keeps_every_header_on_one_line_and_international_domains_in_idna():
    from hub.bridges.base import Outbound, SendError
    from hub.bridges.email import compose

    out = Outbound(network="email", txn_id="01ktxn", to="carol@bücher.example", to_name="Jöran\nBcc: x@y.example",
                   from_username="acme", from_name="Acme\r\nBcc: evil@x.example", text="hi", html="<p>hi</p>",
                   subject="Line 1\nBcc: evil@x.example\u2028more")
    msg, mail_from, message_id = compose.compose(out, mail_domain="hub.example")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["Subject"] == "Line 1 Bcc: evil@x.example more"
    assert parsed["To"].addresses[0].addr_spec == "carol@xn--bcher-kva.example"
    assert parsed["To"].addresses[0].display_name == "Jöran Bcc: x@y.example"
    assert compose.wire_address("carol@bücher.example") == "carol@xn--bcher-kva.example"
    assert mail_from == "bounces+01ktxn@hub.example" and message_id == "01ktxn@hub.example"
    with pytest.raises(SendError) as info:
        compose.wire_address("jöran@example.de")
    assert info.value.permanent


@pytest.mark.parametrize(("subject", "automatic"), [
    ("Automatic reply: Your order", True), ("Out of Office: back Monday", True), ("Auto: away", True),
    ("Abwesenheitsnotiz: Urlaub", True), ("Réponse automatique : absent", True), ("Out of office", True),
    ("Absence of refund for order 123", False), ("Auto: my car repair", True),
    ("Automobile insurance question", False), ("Autoreply settings do not work", False),
])
def test_auto_reply_subjects_are_recognised_without_swallowing_real_ones(subject, automatic):
    msg = (f"From: Jo <jo@example.org>\r\nTo: acme@hub.example\r\nSubject: {subject}\r\n"
           f"Message-ID: <s-1@example.org>\r\n\r\nHello.\r\n").encode()
    result = mail.parse(msg, network="email", sender="jo@example.org", recipients=["acme@hub.example"],
                        settings=SETTINGS)
    assert isinstance(result, Rejected) is automatic
