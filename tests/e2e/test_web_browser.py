"""The pages in a real headless Chromium (Debian's `chromium`, driven by
Playwright without downloading a browser), across two real hub processes,
with an accessibility check (axe-core from npm, run in the page)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import unique

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache/npm/node_modules/axe-core/axe.min.js"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("these tests need Debian's chromium (apt-get install chromium; .ci/deps installs it)")
    return path


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        await b.close()


async def axe_violations(page) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE} (make install-test installs it from npm)")
    await page.add_script_tag(content=AXE.read_text())
    result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"]][:3]}
            for v in result["violations"]]


async def test_a_customer_signs_up_writes_to_an_organization_elsewhere_and_reads_the_answer(hubs, browser):
    a, b = hubs
    alice, acme, dana = unique("alice"), unique("acme"), unique("dana")
    # the commands run their own event loop: in a thread, beside this test's
    await asyncio.to_thread(b.cli, "actor", "add", acme, "--kind", "organization", "--name", "Acme")
    await asyncio.to_thread(b.cli, "actor", "add", dana, "--kind", "person", "--name", "Dana", "--password-stdin",
                            stdin="dana-secret-1\n")
    await asyncio.to_thread(b.cli, "member", "add", acme, dana, "--role", "agent")
    await asyncio.to_thread(b.cli, "admin", "grant", dana)  # she runs hub B too: the /admin pages

    # bypass_csp: only so that the test can inject axe-core into our pages, whose CSP forbids inline scripts
    customer = await browser.new_context(bypass_csp=True)
    agent = await browser.new_context(bypass_csp=True)
    try:
        page = await customer.new_page()
        await page.goto(a.base_url + "/")
        await page.get_by_role("link", name="Sign up").click()
        await page.get_by_label("Username").fill(alice)
        await page.get_by_label("Display name").fill("Alice")
        await page.get_by_label("Password", exact=True).fill("alice-secret-1")
        await page.get_by_label("Password again").fill("alice-secret-1")
        await page.get_by_role("button", name="Create account").click()
        await page.wait_for_url("**/home")
        assert alice in await page.locator(".username").inner_text()

        await page.goto(f"{a.base_url}/inbox/{alice}/new")
        await page.get_by_label("With").fill(b.handle(acme))
        await page.get_by_label("Subject").fill("Broken kettle")
        await page.get_by_label("Message").fill("My kettle does not heat.")
        await page.get_by_role("button", name="Send").click()
        await page.wait_for_url(f"**/inbox/{alice}/*")
        customer_url = page.url
        assert "My kettle does not heat." in await page.locator(".thread").inner_text()

        staff = await agent.new_page()
        await staff.goto(b.base_url + "/login")
        await staff.get_by_label("Username or email").fill(dana)
        await staff.get_by_label("Password").fill("dana-secret-1")
        await staff.get_by_role("button", name="Sign in").click()
        await staff.wait_for_url("**/home")

        async def arrived():
            await staff.goto(f"{b.base_url}/inbox/{acme}")
            return await staff.get_by_role("link", name=re.compile("kettle")).count() > 0

        for _ in range(100):
            if await arrived():
                break
            await staff.wait_for_timeout(200)
        assert "(1)" in await staff.title()  # unread, in the page title
        await staff.get_by_role("link", name=re.compile("kettle")).first.click()
        marker = unique("PRIVATE-browser-note-")
        await staff.get_by_label("Private note").fill(marker)
        await staff.get_by_role("button", name="Add note").click()
        await staff.get_by_label(f"Reply as @{acme}").fill("A new kettle is on its way.")
        await staff.get_by_label("Attach files").set_input_files(
            [{"name": "label.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 shipping label"}])
        await staff.get_by_role("button", name="Send reply").click()
        await staff.wait_for_load_state()
        assert marker in await staff.locator(".notes").inner_text()
        assert "label.pdf" in await staff.locator(".thread").inner_text()

        # the customer's page, open all along, shows the answer by itself (server-sent events),
        # with the file the agent attached: a link to where the organization's server keeps it
        assert page.url == customer_url
        await page.locator(".thread").get_by_text("A new kettle is on its way.").wait_for(timeout=30_000)
        text = await page.content()
        assert "A new kettle is on its way." in text and marker not in text
        file_link = page.locator(".thread .attachments a", has_text="label.pdf")
        href = await file_link.get_attribute("href")
        assert href.startswith(b.base_url + "/media/")
        got = await page.request.get(href)
        assert got.status == 200 and await got.body() == b"%PDF-1.4 shipping label"

        # the inbox by keyboard: j moves to a conversation, x ticks it, a bulk action resolves it
        await staff.goto(f"{b.base_url}/inbox/{acme}")
        await staff.keyboard.press("j")
        assert await staff.evaluate("document.activeElement.classList.contains('subject')")
        assert await staff.locator("#conversation-list > li.current").count() == 1
        await staff.keyboard.press("x")
        assert await staff.locator("#conversation-list > li.current input.pick").is_checked()
        await staff.get_by_label("Do", exact=True).select_option("resolved")
        await staff.get_by_role("button", name="Apply").click()
        await staff.get_by_text("1 conversation changed.").wait_for()
        assert "resolved" in await staff.locator("#conversation-list .status").first.inner_text()
        await staff.keyboard.press("j")
        await staff.keyboard.press("Enter")
        await staff.wait_for_url(f"**/inbox/{acme}/*")
        await staff.keyboard.press("r")
        assert await staff.evaluate("document.activeElement.id") == "reply-text"
        await staff.keyboard.type("typing r, n and u here acts on nothing")
        assert await staff.evaluate("document.activeElement.id") == "reply-text"
        await staff.locator("body").click(position={"x": 5, "y": 5})
        await staff.keyboard.press("?")
        assert await staff.locator("#shortcuts").get_attribute("open") is not None

        # the customer, who owns the conversation, makes it public: anyone reads it, never the note
        await page.goto(customer_url)
        await page.get_by_role("button", name="Make it public").click()
        await page.get_by_role("link", name="its public page").first.click()
        public_url = page.url
        assert re.search(r"/c/[0-9a-z]{26}$", public_url)
        reader = await browser.new_context(bypass_csp=True)
        outsider = await reader.new_page()
        await outsider.goto(public_url)
        public_text = await outsider.locator("main").inner_text()
        assert "My kettle does not heat." in public_text and "A new kettle is on its way." in public_text
        assert marker not in await outsider.content()
        await outsider.goto(a.base_url + "/")
        assert "Broken kettle" in await outsider.locator("main").inner_text()  # listed on the landing page
        for url in (public_url, a.base_url + "/"):
            await outsider.goto(url)
            violations = await axe_violations(outsider)
            assert violations == [], f"{url}: {violations}"
        await reader.close()

        # the administrator blocks a domain from the page (so that its table is on the page checked next)
        await staff.goto(f"{b.base_url}/admin/domains")
        await staff.get_by_label("Domain", exact=True).fill("spam.example")
        await staff.get_by_label("Reason").fill("spam waves")
        await staff.get_by_role("button", name="Block").click()
        await staff.get_by_text("spam.example is blocked").wait_for()

        # a fediverse app asks to use the customer's account: the consent page (also in a phone's web view)
        req = urllib.request.Request(f"{a.base_url}/api/v1/apps", method="POST", headers={
            "Content-Type": "application/json"}, data=json.dumps({
                "client_name": "Phone app", "redirect_uris": "com.example.app:/oauth", "scopes": "read write"}).encode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            client_id = json.loads(resp.read())["client_id"]
        consent_url = (f"{a.base_url}/oauth/authorize?response_type=code&client_id={client_id}"
                       "&redirect_uri=com.example.app:/oauth&scope=read+write")

        # every main page passes an automated accessibility check
        for p, url in ((page, consent_url), (page, a.base_url + "/"), (page, a.base_url + "/home"), (page, customer_url),
                       (staff, f"{b.base_url}/inbox/{acme}"), (staff, staff.url), (page, f"{a.base_url}/inbox/{alice}/new"),
                       (staff, f"{b.base_url}/settings/actor/{acme}"), (page, f"{a.base_url}/settings/password"),
                       (page, f"{a.base_url}/settings/notifications"),
                       (page, f"{a.base_url}/settings/data/{alice}"), (staff, f"{b.base_url}/admin"),
                       (staff, f"{b.base_url}/admin/domains"), (staff, f"{b.base_url}/admin/reports")):
            await p.goto(url)
            violations = await axe_violations(p)
            assert violations == [], f"{url}: {violations}"
        anon = await browser.new_page(bypass_csp=True)
        for url in (a.base_url + "/login", a.base_url + "/signup", f"{a.base_url}/users/{alice}"):
            await anon.goto(url)
            violations = await axe_violations(anon)
            assert violations == [], f"{url}: {violations}"
        await anon.close()
        # a phone's width: nothing wider than the screen, on the pages people use on the move
        for p, url in ((page, customer_url), (page, consent_url), (page, a.base_url + "/"), (staff, f"{b.base_url}/inbox/{acme}"),
                       (staff, f"{b.base_url}/settings/actor/{acme}")):
            await p.set_viewport_size({"width": 360, "height": 740})
            await p.goto(url)
            wide = await p.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > 360.5)
                .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)""")
            assert await p.evaluate("document.documentElement.scrollWidth") <= 360, (url, wide)
    finally:
        await customer.close()
        await agent.close()
