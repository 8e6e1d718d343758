"""The email bridge polls support mailboxes over IMAP, against a real server:
Dovecot, started by the tests on a free loopback port (``.ci/deps`` installs
the ``dovecot-imapd`` package; without it these tests fail, they do not
skip).

Mail reaches the mailbox the way a local delivery agent puts it there: a
file written into the user's ``Maildir/tmp`` and renamed into ``new``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub import actors
from hub.bridges.base import State
from hub.bridges.email import EmailConnector, imap
from hub.errors import UsageError
from hub.inbox import access, conversations, state
from hub.store import bridges as bridge_store
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Imap-pw"
POLL_S = 0.2
INSTALL_HINT = "Dovecot is not installed: run .ci/deps (Debian: apt-get install dovecot-imapd)"


# --- a Dovecot of our own ---------------------------------------------------------------------------


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
                                             if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


class Dovecot:
    """One Dovecot master in the foreground (``dovecot -F -c CONFIG``), its
    whole state in a temporary directory, listening on 127.0.0.1 only. As
    root its processes run as the package's ``dovecot``/``dovenull`` users
    and mail belongs to ``dovecot``; otherwise everything runs as the
    current user (Dovecot's "rootless" setup)."""

    def __init__(self, users: dict[str, str], *, tls: bool = False):
        self.binary = dovecot_binary()
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        self.version = out
        self.v24 = tuple(int(x) for x in re.findall(r"\d+", out)[:2]) >= (2, 4)
        self.base = Path(tempfile.mkdtemp(prefix="rt-dovecot-"))
        os.chmod(self.base, 0o755)  # its unprivileged processes look in here
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.tls = tls
        self.users = dict(users)
        self.proc: subprocess.Popen | None = None
        if os.geteuid() == 0:
            internal, login = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
            self.mail_uid, self.mail_gid = internal.pw_uid, internal.pw_gid
            self.internal_user, self.login_user = internal.pw_name, login.pw_name
            self.internal_group = _group_name(internal.pw_gid)
        else:
            me = pwd.getpwuid(os.getuid())
            self.mail_uid, self.mail_gid = me.pw_uid, me.pw_gid
            self.internal_user = self.login_user = me.pw_name
            self.internal_group = _group_name(me.pw_gid)
        self.passwd = self.base / "passwd"
        self.log = self.base / "dovecot.log"
        self.ca_file: Path | None = None

    def home(self, user: str) -> Path:
        return self.base / "home" / user

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def write_passwd(self) -> None:
        lines = [f"{u}:{{PLAIN}}{p}:{self.mail_uid}:{self.mail_gid}::{self.home(u)}::" for u, p in self.users.items()]
        tmp = self.passwd.with_suffix(".new")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.passwd)  # a new file: Dovecot reads it again at the next login

    def set_password(self, user: str, password: str) -> None:
        self.users[user] = password
        self.write_passwd()

    def _config(self) -> str:
        b = self.base
        common = f"""
protocols = imap
listen = 127.0.0.1
base_dir = {b}/run
state_dir = {b}/state
log_path = {self.log}
info_log_path = {self.log}
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}
first_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}
auth_mechanisms = plain login
auth_failure_delay = 0
namespace inbox {{
  inbox = yes
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        if self.v24:  # Dovecot 2.4 renamed much of this
            ssl = (f"ssl = yes\nssl_server_cert_file = {b}/server.pem\nssl_server_key_file = {b}/server.key\n"
                   if self.tls else "ssl = no\n")
            return ("dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n" + common + ssl + f"""
auth_allow_cleartext = yes
mail_driver = maildir
mail_path = ~/Maildir
passdb passwd-file {{
  passwd_file_path = {self.passwd}
}}
userdb passwd-file {{
  passwd_file_path = {self.passwd}
}}
""")
        ssl = f"ssl = yes\nssl_cert = <{b}/server.pem\nssl_key = <{b}/server.key\n" if self.tls else "ssl = no\n"
        return common + ssl + f"""
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd}
}}
"""

    def start(self) -> Dovecot:
        for d in ("run", "state", "home"):
            (self.base / d).mkdir()
        for user in self.users:
            self.home(user).mkdir()
            self._own(self.home(user))
        self.write_passwd()
        if self.tls:
            self.ca_file = make_certificates(self.base)
        conf = self.base / "dovecot.conf"
        conf.write_text(self._config())
        with open(self.base / "stdout.log", "wb") as out:
            self.proc = subprocess.Popen([self.binary, "-F", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        for port in [p for p in (self.port, self.tls_port) if p]:
            while not _accepts(port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop(keep=True)
                    pytest.fail(f"Dovecot {self.version} did not start on 127.0.0.1:{port}:\n{self.logs()}",
                                pytrace=False)
                time.sleep(0.05)
        return self

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in (self.base / "stdout.log", self.log) if p.exists())

    def stop(self, *, keep: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def deliver(self, user: str, raw: bytes) -> None:
        """What a local delivery agent does: write into ``tmp``, rename into ``new``."""
        maildir = self.home(user) / "Maildir"
        for sub in ("", "tmp", "new", "cur"):
            (maildir / sub).mkdir(exist_ok=True)
            self._own(maildir / sub)
        name = f"{time.time_ns()}.P{os.getpid()}.{socket.gethostname()}"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(raw)
        self._own(tmp)
        os.rename(tmp, maildir / "new" / name)


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def make_certificates(directory: Path) -> Path:
    """A test CA and a server certificate for 127.0.0.1 signed by it; the CA's path."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Roundtable test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    return directory / "ca.pem"


@pytest.fixture
def dovecot():
    server = Dovecot({"support": PASSWORD, "sales": PASSWORD}).start()
    yield server
    server.stop()


@pytest.fixture
def dovecot_tls():
    server = Dovecot({"support": PASSWORD}, tls=True).start()
    yield server
    server.stop()


# --- the hub's side ---------------------------------------------------------------------------------------


@pytest.fixture
async def email_bridge(served_hub):
    """Start (again) the hub's email connector, polling every POLL_S; the
    organization 'acme' exists. Call it with config overrides."""
    hub = served_hub
    await actors.create_local_actor(hub, "acme", kind="organization", name="Acme")

    async def start(**overrides) -> EmailConnector:
        await hub.bridges.stop()
        hub.bridges.connectors.clear()
        connector = EmailConnector(dataclasses.replace(hub.cfg, imap_poll_s=POLL_S, smtp_listen="", **overrides))
        hub.bridges.add_connector(connector)
        await hub.bridges.start()
        return connector

    yield start
    await hub.bridges.stop()


async def wait_for(predicate, timeout=15.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def inbox(hub, username="acme"):
    acting = await access.acting_as(hub, username)
    items, _ = await state.list_conversations(hub, acting)
    return acting, items


async def items(hub):
    await hub.runner.drain()
    async with hub.db.read() as conn:
        return await bridge_store.list_items(conn, bridge="email", limit=1000)


async def bridge_row(hub):
    async with hub.db.read() as conn:
        return await bridge_store.get_bridge(conn, "email")


async def mailbox(hub, box_id):
    return next(b for b in (await bridge_row(hub)).settings["imap"] if b["id"] == box_id)


async def polled(hub, server: Dovecot, user: str, rounds: int = 3) -> None:
    """Wait until the poller has read the mailbox ``rounds`` more times (each
    round is one login, which Dovecot logs)."""

    def logins() -> int:
        return server.logs().count(f"Login: user=<{user}>")

    before = logins()

    async def done():
        return logins() >= before + rounds

    await wait_for(done, what=f"{rounds} more rounds")
    await hub.runner.drain()


def mail(sender: str, subject: str, text: str, message_id: str, *, in_reply_to: str | None = None,
         size: int = 0) -> bytes:
    m = EmailMessage()
    m["Return-Path"] = f"<{sender}>"
    m["From"] = f"Customer <{sender}>"
    m["To"] = "Acme Support <support@acme.example>"
    m["Subject"] = subject
    m["Message-ID"] = message_id
    m["Date"] = "Mon, 03 Mar 2025 10:00:00 +0000"
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    m.set_content(text + ("\n" + "x" * 70) * (size // 71))
    return m.as_bytes().replace(b"\n", b"\r\n")


async def cli(hub, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """``roundtable ARGS`` in its own process, on the served hub's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    env.update({"ROUNDTABLE_DEV": "1", "ROUNDTABLE_DOMAIN": hub.cfg.domain, "ROUNDTABLE_LISTEN": hub.cfg.listen,
                "ROUNDTABLE_DATA": str(hub.cfg.data), "ROUNDTABLE_DATABASE_URL": hub.cfg.database_url})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub", *args, cwd=ROOT, env=env,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate((stdin or "").encode()), 60)
    return proc.returncode, out.decode(), err.decode()


async def imap_flags(server: Dovecot, user: str) -> list[bytes]:
    client = aioimaplib.IMAP4(host="127.0.0.1", port=server.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login(user, server.users[user])
    await client.select("INBOX")
    response = await client.fetch("1:*", "(FLAGS)")
    await client.logout()
    return [line for line in response.lines if b"FETCH" in line]


# --- the tests ----------------------------------------------------------------------------------------------


async def test_mail_in_a_support_mailbox_becomes_conversations_once(served_hub, dovecot, email_bridge):
    hub = served_hub
    await email_bridge()
    dovecot.deliver("support", mail("dan@customer.test", "Broken heater", "My heater is broken.", "<dan-1@customer.test>"))

    rc, out, err = await cli(hub, "bridge", "imap", "add", "acme", "--host", "127.0.0.1", "--port", str(dovecot.port),
                             "--user", "support", "--password-stdin", "--tls", "none", "--json", stdin=PASSWORD + "\n")
    assert rc == 0, err
    added = json.loads(out)
    box_id = added["id"]
    assert added["owner"] == "acme" and added["folder"] == "INBOX" and added["last_uid"] == 0
    assert "password" not in added and PASSWORD not in out + err

    async def conversations_of_acme(n):
        await hub.runner.drain()
        _acting, got = await inbox(hub)
        return len(got) == n and got

    (first,) = await wait_for(lambda: conversations_of_acme(1), what="the mail already in the mailbox")
    acting = await access.acting_as(hub, "acme")
    conversation = await conversations.get_conversation(hub, first["id"])
    view = await state.show(hub, acting, conversation)
    (m,) = view["messages"]
    assert m["network"] == "email" and m["text"].strip() == "My heater is broken."
    (item,) = await items(hub)
    assert item.status == "placed" and item.sender == "dan@customer.test"
    assert item.recipients == [f"acme@{hub.cfg.mail_domain}"]
    assert (await mailbox(hub, box_id))["last_uid"] == 1

    # later rounds take nothing again, and leave the mail unread in the mailbox
    await polled(hub, dovecot, "support")
    assert len(await items(hub)) == 1 and len((await inbox(hub))[1]) == 1
    assert all(b"\\Seen" not in line for line in await imap_flags(dovecot, "support"))

    # mail that arrives later is taken by the next round
    dovecot.deliver("support", mail("erin@customer.test", "Invoice", "Where is my invoice?", "<erin-1@customer.test>"))
    await wait_for(lambda: conversations_of_acme(2), what="a message delivered later")
    assert (await mailbox(hub, box_id))["last_uid"] == 2

    # after a restart nothing is placed again; the position was kept in the database
    await hub.bridges.stop()
    assert (await bridge_row(hub)).state == "stopped"
    await email_bridge()
    await polled(hub, dovecot, "support")
    assert len(await items(hub)) == 2 and len((await inbox(hub))[1]) == 2
    assert (await mailbox(hub, box_id))["last_uid"] == 2
    row = await bridge_row(hub)
    assert row.state == "connected", row.state_detail

    # a reply to the first mail, in the mailbox, continues its conversation
    dovecot.deliver("support", mail("dan@customer.test", "Re: Broken heater", "It works again, thanks.",
                                    "<dan-2@customer.test>", in_reply_to="<dan-1@customer.test>"))

    async def answered():
        await hub.runner.drain()
        return len((await state.show(hub, acting, conversation))["messages"]) == 2

    await wait_for(answered, what="the reply")
    assert len((await inbox(hub))[1]) == 2

    # a crash after a hand-over but before the position was saved: the mail is
    # fetched again, and the message map drops the copies
    await imap.update_mailbox(hub.db, "email", box_id, {"last_uid": 0})

    async def caught_up():
        return (await mailbox(hub, box_id))["last_uid"] == 3

    await wait_for(caught_up, what="the second reading")
    got = await items(hub)
    assert len(got) == 6 and sorted(i.status for i in got) == ["dropped"] * 3 + ["placed"] * 3
    assert all("duplicate" in i.flags for i in got if i.status == "dropped")
    assert len((await inbox(hub))[1]) == 2

    # the command line never shows the password
    rc, out, err = await cli(hub, "bridge", "imap", "list", "--json")
    assert rc == 0, err
    (listed,) = json.loads(out)
    assert listed["id"] == box_id and listed["last_uid"] == 3 and "password" not in listed
    assert PASSWORD not in out + err
    rc, out, err = await cli(hub, "bridge", "imap", "list")
    assert rc == 0 and box_id in out and PASSWORD not in out + err
    rc, out, err = await cli(hub, "bridge", "list", "--json")
    assert rc == 0 and PASSWORD not in out + err
    rc, out, err = await cli(hub, "bridge", "imap", "remove", box_id)
    assert rc == 0, err
    assert (await bridge_row(hub)).settings["imap"] == []


async def test_a_refused_login_shows_bad_credentials_and_the_hub_goes_on(served_hub, dovecot, email_bridge, session):
    hub = served_hub
    connector = await email_bridge()
    # the command line checks the login before it stores anything
    rc, out, err = await cli(hub, "bridge", "imap", "add", "acme", "--host", "127.0.0.1", "--port", str(dovecot.port),
                             "--user", "support", "--password-stdin", "--tls", "none", stdin="wrong-password\n")
    assert rc == 1 and "refused the login" in err and "wrong-password" not in out + err
    assert "imap" not in ((await bridge_row(hub)).settings or {}) or not (await bridge_row(hub)).settings["imap"]
    rc, _out, err = await cli(hub, "bridge", "imap", "add", "nobody", "--host", "127.0.0.1", "--port",
                              str(dovecot.port), "--user", "support", "--password-stdin", "--tls", "none",
                              stdin=PASSWORD + "\n")
    assert rc == 1 and "no local actor @nobody" in err

    support = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=dovecot.port, user="support",
                                     password=PASSWORD, tls="none")
    sales = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=dovecot.port, user="sales",
                                   password=PASSWORD, tls="none")
    with pytest.raises(UsageError, match="polled already"):
        await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=dovecot.port, user="sales", password=PASSWORD,
                               tls="none")
    # the provider's password changes: the hub's no longer works
    dovecot.set_password("support", "changed-at-the-provider")

    async def bad_credentials():
        row = await bridge_row(hub)
        return row.state == State.BAD_CREDENTIALS and row

    row = await wait_for(bad_credentials, what="the bad_credentials state")
    assert row.state_detail.startswith(f"imap {support['id']}: the server refused the login")
    assert PASSWORD not in row.state_detail and "changed-at-the-provider" not in row.state_detail
    assert connector.state()[0] == State.BAD_CREDENTIALS

    # the other mailbox is still read, and the hub still answers
    dovecot.deliver("sales", mail("fay@customer.test", "Quote", "A quote for 40 chairs, please.", "<fay-1@c.test>"))

    async def placed():
        await hub.runner.drain()
        return [i for i in await items(hub) if i.status == "placed"]

    await wait_for(placed, what="the mail of the mailbox that works")
    assert (await mailbox(hub, sales["id"]))["last_uid"] == 1
    async with session.get(hub.cfg.base_url + "/healthz") as resp:
        assert resp.status == 200

    # the password is right again: the mailbox is read, the bridge connected
    dovecot.deliver("support", mail("gus@customer.test", "Hello", "Is anyone there?", "<gus-1@c.test>"))
    dovecot.set_password("support", PASSWORD)

    async def recovered():
        row = await bridge_row(hub)
        return row.state == State.CONNECTED and (await mailbox(hub, support["id"]))["last_uid"] == 1

    await wait_for(recovered, what="the mailbox read again")
    assert (await bridge_row(hub)).state_detail == "no smtp_listen; no smtp_relay: cannot send"
    await hub.runner.drain()
    assert len((await inbox(hub))[1]) == 2

    # a server that cannot be reached is a transient disconnect
    dead = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=free_port(), user="x", password="y", tls="none",
                                  check=False)

    async def disconnected():
        row = await bridge_row(hub)
        return row.state == State.DISCONNECTED and row

    row = await wait_for(disconnected, what="the disconnected state")
    assert row.state_detail.startswith(f"imap {dead['id']}: cannot read 127.0.0.1:")
    await imap.remove_mailbox(hub, dead["id"])

    async def connected():
        return (await bridge_row(hub)).state == State.CONNECTED

    await wait_for(connected, what="the state once the failing mailbox is gone")


async def test_a_silent_server_holds_up_neither_other_mailboxes_nor_the_stop(served_hub, dovecot, email_bridge):
    hub = served_hub
    await email_bridge()
    accepted = asyncio.Event()

    async def silent(reader, writer):  # takes the connection, never greets
        accepted.set()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=port, user="x", password="y", tls="none",
                               check=False)
        await asyncio.wait_for(accepted.wait(), 15)
        box = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=dovecot.port, user="support",
                                     password=PASSWORD, tls="none")
        dovecot.deliver("support", mail("jo@customer.test", "Hi", "Still there?", "<jo-1@c.test>"))

        async def read():
            return (await mailbox(hub, box["id"]))["last_uid"] == 1

        await wait_for(read, what="the other mailbox")
        started = time.monotonic()
        await hub.bridges.stop()
        assert time.monotonic() - started < 3
        assert (await bridge_row(hub)).state == "stopped"
    finally:
        server.close()


async def test_mail_over_the_size_limit_is_skipped_and_counted(served_hub, dovecot, email_bridge):
    hub = served_hub
    await email_bridge(max_mail_bytes=8_000)
    dovecot.deliver("support", mail("hal@customer.test", "Logs", "The whole log.", "<hal-1@c.test>", size=20_000))
    dovecot.deliver("support", mail("hal@customer.test", "Short", "Just a question.", "<hal-2@c.test>"))
    box = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=dovecot.port, user="support",
                                 password=PASSWORD, tls="none")

    async def read():
        return (await mailbox(hub, box["id"]))["last_uid"] == 2

    await wait_for(read, what="both messages")
    got = await items(hub)
    assert [i.status for i in got] == ["placed"] and got[0].size < 8_000
    stored = await mailbox(hub, box["id"])
    assert stored["skipped"] == 1 and stored["last_skipped"]["uid"] == 1 and stored["last_skipped"]["size"] > 20_000
    _acting, conversations_ = await inbox(hub)
    assert len(conversations_) == 1


async def test_starttls_and_implicit_tls_check_the_certificate(served_hub, dovecot_tls, email_bridge, monkeypatch):
    hub = served_hub
    server = dovecot_tls
    await email_bridge()
    # a certificate nobody vouches for: refused, with a readable reason
    with pytest.raises(UsageError, match="certificate is not valid"):
        await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=server.tls_port, user="support",
                               password=PASSWORD, tls="tls")
    with pytest.raises(UsageError, match="certificate is not valid"):
        await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=server.port, user="support",
                               password=PASSWORD, tls="starttls")
    # plain IMAP is for development only, at the command line and in the poller
    production = dataclasses.replace(hub.cfg, dev=False)
    with pytest.raises(UsageError, match="only allowed in development mode"):
        await imap.add_mailbox(type("H", (), {"cfg": production, "db": hub.db})(), "acme", host="127.0.0.1",
                               port=server.port, user="support", password=PASSWORD, tls="none")
    with pytest.raises(imap.ImapError, match="only allowed in development mode"):
        await imap.open_session({"host": "127.0.0.1", "port": server.port, "user": "support", "password": PASSWORD,
                                 "tls": "none"}, dev=False)

    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # OpenSSL's default trust store, for this test
    implicit = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=server.tls_port, user="support",
                                      password=PASSWORD, tls="tls", skip_existing=True)
    server.deliver("support", mail("ida@customer.test", "Over TLS", "Sent over TLS.", "<ida-1@c.test>"))

    async def read(box_id, uid):
        return (await mailbox(hub, box_id))["last_uid"] == uid

    await wait_for(lambda: read(implicit["id"], 1), what="the mailbox read over implicit TLS")
    await imap.remove_mailbox(hub, implicit["id"])
    starttls = await imap.add_mailbox(hub, "acme", host="127.0.0.1", port=server.port, user="support",
                                      password=PASSWORD, tls="starttls", skip_existing=True)
    assert starttls["last_uid"] == 1  # what was there is left alone
    server.deliver("support", mail("jan@customer.test", "Over STARTTLS", "Sent after STARTTLS.", "<jan-1@c.test>"))
    await wait_for(lambda: read(starttls["id"], 2), what="the mailbox read after STARTTLS")
    await hub.runner.drain()
    _acting, got = await inbox(hub)
    assert len(got) == 2
    logins = [line for line in server.logs().splitlines() if "Login: user=<support>" in line]
    assert logins and all("TLS" in line for line in logins)  # never in clear
