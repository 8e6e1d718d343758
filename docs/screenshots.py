"""`make screenshots`: the main pages as PNG files in docs/screenshots/.

Starts a throw-away hub (development mode, a temporary data directory, a free
loopback port), fills it with a small scene through the real command line
(an organization with an agent, a customer, a conversation with a private
note), and photographs the pages in Debian's Chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("screenshots need Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="rt-shots-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    env.update(ROUNDTABLE_DEV="1", ROUNDTABLE_DOMAIN=f"localhost:{port}", ROUNDTABLE_LISTEN=f"127.0.0.1:{port}",
               ROUNDTABLE_DATA=str(data), ROUNDTABLE_INSTANCE_NAME="Roundtable")

    def cli(*args: str, stdin: str | None = None) -> str:
        return subprocess.run([sys.executable, "-m", "hub", *args], env=env, cwd=ROOT, input=stdin, text=True,
                              check=True, capture_output=True).stdout

    cli("migrate")
    cli("actor", "add", "acme", "--kind", "organization", "--name", "Acme Kettles")
    cli("actor", "add", "dana", "--kind", "person", "--name", "Dana", "--password-stdin", stdin="dana-secret-1\n")
    cli("actor", "add", "alice", "--kind", "person", "--name", "Alice", "--password-stdin", stdin="alice-secret-1\n")
    cli("member", "add", "acme", "dana", "--role", "agent")
    cli("member", "apps", "acme", "dana", "--allow")
    cli("actor", "set", "acme", "--signature", "— {member_name}, {actor_name}")
    cli("admin", "grant", "dana")
    cli("domain", "block", "spam.example", "--reason", "Sends unsolicited advertising to our customers")
    server = subprocess.Popen([sys.executable, "-m", "hub", "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://localhost:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        conv = json.loads(cli("conversation", "start", "alice", f"@acme@localhost:{port}",
                              "Hello! The kettle I bought last week does not heat any more.",
                              "--subject", "Kettle does not heat", "--json"))["conversation"]
        time.sleep(1)
        cli("inbox", "set", "acme", conv, "--note", "Second complaint about batch 42: check with the factory.",
            "--label", "warranty", "--assign", "dana", "--member", "dana")
        cli("conversation", "reply", "acme", conv, "Sorry about that! A new kettle is on its way today.",
            "--member", "dana")
        for subject, text in (("Invoice 2026-118 is wrong", "The invoice counts two kettles; I bought one."),
                              ("Descaling the kettle", "How often should I descale it? The water here is hard.")):
            other = json.loads(cli("conversation", "start", "alice", f"@acme@localhost:{port}", text,
                                   "--subject", subject, "--json"))["conversation"]
        time.sleep(1)
        cli("inbox", "set", "acme", other, "--label", "how-to", "--status", "pending", "--member", "dana")
        cli("conversation", "publish", "alice", other)
        time.sleep(1.5)
        req = urllib.request.Request(base + "/api/v1/apps", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"client_name": "Tusky", "website": "https://tusky.app",
                                                      "redirect_uris": "oauth2redirect://com.keylesspalace.tusky/",
                                                      "scopes": "read write follow push"}).encode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            client_id = json.loads(resp.read())["client_id"]
        authorize = (f"/oauth/authorize?response_type=code&client_id={client_id}"
                     "&redirect_uri=oauth2redirect://com.keylesspalace.tusky/&scope=read+write+follow+push")
        return asyncio.run(shoot(chromium, base, conv.rsplit("/", 1)[1], other, authorize))
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)


async def shoot(chromium: str, base: str, conv_id: str, public_uri: str, authorize: str) -> int:
    from playwright.async_api import async_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])

        async def signed_in(login: str, password: str):
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            await page.goto(base + "/login")
            await page.get_by_label("Username or email").fill(login)
            await page.get_by_label("Password").fill(password)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url("**/home")
            return page

        anon = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        shots = [(anon, "/", "landing"), (anon, "/login", "sign-in"), (anon, "/users/acme", "profile")]
        dana = await signed_in("dana", "dana-secret-1")
        shots += [(dana, "/inbox/acme", "inbox"), (dana, f"/inbox/acme/{conv_id}", "conversation-agent"),
                  (dana, "/settings/actor/acme", "settings"), (dana, "/admin/domains", "admin-domains")]
        alice = await signed_in("alice", "alice-secret-1")
        shots += [(alice, "/home", "customer-home"), (alice, f"/inbox/alice/{conv_id}", "conversation-customer"),
                  (alice, "/settings/notifications", "notifications"),
                  (anon, public_uri.removeprefix(base), "public-conversation")]
        for page, path, name in shots:
            await page.goto(base + path)
            await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
            print(f"docs/screenshots/{name}.png")
        phone = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
        await phone.goto(base + "/login")
        await phone.screenshot(path=str(OUT / "sign-in-phone.png"), full_page=True)
        print("docs/screenshots/sign-in-phone.png")
        await alice.set_viewport_size({"width": 390, "height": 844})
        await alice.goto(f"{base}/inbox/alice/{conv_id}")
        await alice.screenshot(path=str(OUT / "conversation-phone.png"), full_page=True)
        print("docs/screenshots/conversation-phone.png")
        await dana.set_viewport_size({"width": 390, "height": 844})
        await dana.goto(base + authorize)
        await dana.screenshot(path=str(OUT / "authorize-phone.png"), full_page=True)
        print("docs/screenshots/authorize-phone.png")
        await browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
