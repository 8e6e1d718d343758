"""Real fediverse client software against real ``roundtable serve`` processes:
``toot`` (its browser OAuth flow, with the code copied from the consent page)
and ``Mastodon.py`` (a broad script over the client API, and its streaming
listener). A customer on hub A writes to an organization on hub B from her
app; the organization answers from its own app; she replies from hers."""

from __future__ import annotations

import html
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import requests
from mastodon import Mastodon, MastodonUnauthorizedError, StreamListener

from tests.e2e.conftest import get_json, unique, wait_until

pytestmark = pytest.mark.e2e
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
TOOT = [sys.executable, "-c", "import sys; from toot.cli import cli; sys.exit(cli())"]


def png(width: int = 2, height: int = 2) -> bytes:
    raw = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def add_actor(hub, username: str, kind: str) -> None:
    hub.cli("actor", "add", username, "--kind", kind, "--email", f"{username}@example.org", "--password-stdin",
            stdin="password123\n")


def mastodon_py(hub, username: str, *, scopes=("read", "write", "follow", "push")) -> Mastodon:
    client_id, secret = Mastodon.create_app(f"pytest-{username}", api_base_url=hub.base_url, scopes=list(scopes))
    api = Mastodon(client_id=client_id, client_secret=secret, api_base_url=hub.base_url)
    api.log_in(f"{username}@example.org", "password123", scopes=list(scopes), allow_http=True)
    return api


def approve_in_browser(hub, username: str, url: str) -> str:
    """Sign in on the hub's pages and approve the app; return the code the page shows."""
    s = requests.Session()
    page = s.get(f"{hub.base_url}/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(f"{hub.base_url}/login", data={"csrf_token": csrf, "login": username, "password": "password123",
                                              "next": "/home"})
    assert r.status_code == 200
    r = s.get(url)
    assert r.status_code == 200 and "Authorize" in r.text, r.text[:500]
    form = {k: html.unescape(v) for k, v in HIDDEN.findall(r.text)}
    form["decision"] = "allow"
    r = s.post(f"{hub.base_url}/oauth/authorize", data=form)
    return re.search(r'id="oauth-code" class="code" value="([^"]+)"', r.text).group(1)


class Toot:
    def __init__(self, config_home: Path):
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(config_home), "NO_COLOR": "1", "TERM": "dumb",
                    "COLUMNS": "200"}

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([*TOOT, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"toot {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def login(self, hub, username: str) -> None:
        proc = subprocess.Popen([*TOOT, "login", "--instance", hub.base_url], env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = ""
        while "Open link" not in seen:
            ch = proc.stdout.read(1)
            assert ch, f"toot login ended early: {seen}"
            seen += ch
        url = re.search(r"(http://\S+/oauth/authorize\S*)", seen).group(1)
        code = approve_in_browser(hub, username, url)
        out, _ = proc.communicate(f"n\n{code}\n", timeout=60)
        assert proc.returncode == 0 and "Successfully logged in" in out, out


def test_toot_and_mastodon_py_hold_a_conversation_across_two_hubs(hubs, tmp_path):
    a, b = hubs
    customer, org = unique("tootc"), unique("tooto")
    add_actor(a, customer, "person")
    add_actor(b, org, "organization")
    toot = Toot(tmp_path / "toot")
    toot.login(a, customer)
    assert f"@{customer}" in toot.run("whoami")

    # the customer writes to the organization on the other hub (its handle resolved by WebFinger)
    out = toot.run("post", "--visibility", "direct", f"@{org}@{b.domain} my order 1234 has not arrived")
    first_uri = re.search(r"(http://\S+/m/\S+)", out).group(1)

    # the organization works it from Mastodon.py on hub B
    agent = mastodon_py(b, org)
    convs = wait_until(lambda: agent.conversations(), timeout=30, message="the conversation on hub B")
    assert [acc["acct"] for acc in convs[0]["accounts"]] == [f"{customer}@{a.domain}"]
    assert "order 1234" in convs[0]["last_status"]["content"] and convs[0]["unread"] is True
    mention = wait_until(lambda: agent.notifications(types=["mention"]), timeout=30, message="a mention")
    assert mention[0]["account"]["acct"] == f"{customer}@{a.domain}"
    answer = agent.status_post("It left our warehouse today.", in_reply_to_id=convs[0]["last_status"]["id"],
                               visibility="direct")
    assert answer["in_reply_to_id"] == convs[0]["last_status"]["id"]

    # the customer reads the answer in toot: notifications and the home timeline
    wait_until(lambda: "warehouse" in toot.run("notifications"), timeout=30, message="the answer in toot")
    timeline = toot.run("timeline", "--once", "--count", "10")
    assert "warehouse" in timeline and "order 1234" in timeline

    # and replies in the same thread, from toot
    customer_api = mastodon_py(a, customer, scopes=("read",))
    home = customer_api.timeline_home()
    theirs = next(s for s in home if "warehouse" in s["content"])
    toot.run("post", "--reply-to", theirs["id"], "--visibility", "direct", "Great, thank you!")
    wait_until(lambda: "thank you" in agent.conversations()[0]["last_status"]["content"], timeout=30,
               message="the reply on hub B")
    ctx = agent.status_context(agent.conversations()[0]["last_status"]["id"])
    texts = [s["content"] for s in ctx["ancestors"]]
    assert any("order 1234" in t for t in texts) and any("warehouse" in t for t in texts)
    # the conversation is the customer's: both hubs name hub A's collection as its context
    mine = customer_api.status(theirs["id"])["roundtable"]["conversation"]
    assert mine.startswith(a.base_url + "/c/") and first_uri.startswith(a.base_url)
    assert agent.conversations()[0]["last_status"]["roundtable"]["conversation"] == mine


def test_mastodon_py_over_the_client_api(hubs):
    a, b = hubs
    me, friend, org = unique("mpy"), unique("mpyf"), unique("mpyo")
    add_actor(a, me, "person")
    add_actor(a, friend, "person")
    add_actor(b, org, "organization")
    api = mastodon_py(a, me)
    pal = mastodon_py(a, friend)
    assert api.instance()["version"].startswith("4.") and api.instance_v2()["domain"] == a.domain
    creds = api.account_verify_credentials()
    assert creds["acct"] == me and "source" in creds
    updated = api.account_update_credentials(display_name="Mia P.", note="Hello there",
                                             fields=[("Home", "https://example.org")])
    assert updated["display_name"] == "Mia P." and updated["fields"][0]["name"] == "Home"

    media = api.media_post(io.BytesIO(png(5, 4)), mime_type="image/png", description="orange square", file_name="sq.png")
    assert media["meta"]["original"]["width"] == 5
    post = api.status_post("A picture", media_ids=[media["id"]], spoiler_text="colours", idempotency_key="one")
    again = api.status_post("A picture", media_ids=[media["id"]], spoiler_text="colours", idempotency_key="one")
    assert again["id"] == post["id"] and post["spoiler_text"] == "colours"
    assert post["media_attachments"][0]["description"] == "orange square"
    assert requests.get(post["media_attachments"][0]["url"], timeout=10).content == png(5, 4)

    # a friend follows, favourites, boosts, replies; notifications say so
    pal.account_follow(creds["id"])
    pal.status_favourite(post["id"])
    boost = pal.status_reblog(post["id"])
    assert boost["reblog"]["id"] == post["id"]
    reply = pal.status_post("Lovely", in_reply_to_id=post["id"])
    kinds = {n["type"] for n in api.notifications()}
    assert {"follow", "favourite", "reblog", "mention"} <= kinds, kinds
    only = api.notifications(types=["favourite"])
    assert [n["account"]["acct"] for n in only] == [friend]
    assert [s["id"] for s in api.status_context(post["id"])["descendants"]] == [reply["id"]]
    assert api.account_relationships(pal.me()["id"])[0]["followed_by"] is True
    assert [acc["acct"] for acc in api.account_followers(creds["id"])] == [friend]
    assert post["id"] in [s["id"] for s in pal.timeline_home()]
    assert post["id"] in [s["id"] for s in api.timeline_local()]

    # paging with Link headers, as the library follows them
    for i in range(3):
        api.status_post(f"page {i}")
    first = api.account_statuses(creds["id"], limit=2)
    second = api.fetch_next(first)
    assert len(first) == 2 and second and str(second[0]["id"]) < str(first[-1]["id"])

    # searching and following an organization on the other hub
    found = api.search_v2(f"@{org}@{b.domain}", resolve=True)
    assert [acc["acct"] for acc in found["accounts"]] == [f"{org}@{b.domain}"]
    api.account_follow(found["accounts"][0]["id"])
    wait_until(lambda: api.account_relationships(found["accounts"][0]["id"])[0]["following"], timeout=30,
               message="the remote follow accepted")

    # what clients ask for at start-up
    assert api.preferences()["posting:default:visibility"] == "public"
    assert api.filters() == [] and api.lists() == [] and api.custom_emojis() == [] and api.announcements() == []
    assert api.bookmarks() == [] and [s["id"] for s in pal.favourites()] == [post["id"]]
    api.markers_set(["home"], [post["id"]])
    assert api.markers_get(["home"])["home"]["last_read_id"] == post["id"]

    # edit, delete, revoke
    edited = api.status_update(post["id"], "A picture (edited)")
    assert "edited" in edited["content"] and edited["edited_at"]
    assert api.status_delete(post["id"])["text"] == "A picture (edited)"
    api.revoke_access_token(allow_http=True)
    with pytest.raises(MastodonUnauthorizedError):
        api.account_verify_credentials()


def test_mastodon_py_streaming_receives_a_direct_message_live(hubs):
    a, _b = hubs
    customer, org = unique("strc"), unique("stro")
    add_actor(a, customer, "person")
    add_actor(a, org, "organization")
    agent = mastodon_py(a, org, scopes=("read", "write"))
    writer = mastodon_py(a, customer, scopes=("read", "write"))
    events: list[tuple[str, dict]] = []

    class Listener(StreamListener):
        def on_update(self, status):
            events.append(("update", status))

        def on_notification(self, notification):
            events.append(("notification", notification))

    handle = agent.stream_user(Listener(), run_async=True, reconnect_async=False)
    try:
        time.sleep(1.0)
        dm = writer.status_post(f"@{org} is anyone there?", visibility="direct")
        wait_until(lambda: {"update", "notification"} <= {kind for kind, _ in events}, timeout=20,
                   message="the live events")
        assert any(kind == "update" and s["id"] == dm["id"] for kind, s in events)
        assert any(kind == "notification" and n["status"]["id"] == dm["id"] for kind, n in events)
    finally:
        handle.close()


def test_masto_js_the_library_of_elk_and_phanpy(hubs):
    """masto.js (npm) over REST and the WebSocket stream, as Elk and Phanpy use it: a hashtag
    subscription beside the user stream, grouped notifications, conversations, markers."""
    import json
    import shutil

    a, _b = hubs
    root = Path(__file__).resolve().parents[2]
    module = root / ".cache/npm/node_modules/masto/dist/esm/index.js"
    if not module.exists():
        pytest.fail(f"masto.js is missing at {module} (make install-test installs it from npm)")
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is needed (Debian's npm brings it)"
    customer, org = unique("mjsc"), unique("mjso")
    add_actor(a, customer, "person")
    add_actor(a, org, "organization")
    done = subprocess.run([node, str(Path(__file__).with_name("masto_check.mjs")), module.as_uri(), a.base_url,
                           customer, org], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["org"] == org and out["events"] == ["notification", "update"]
    assert out["conversationWith"] == [customer] and out["ancestors"] == [True]
    assert out["grouped"] and set(out["grouped"]) == {"mention"}
    assert out["home"] is True and out["marker"] is True


def test_a_report_forwarded_from_an_app_reaches_the_other_servers_moderators(hubs):
    """Mastodon.py's ``report(..., forward=True)`` about an account on the other hub: kept here, and sent
    there as a ``Flag`` from this instance's actor (the reporter is not named), naming the account and
    the post; the other hub's administrators see it in ``report list``. Without ``forward`` nothing leaves."""
    a, b = hubs
    me, them = unique("rep"), unique("spam")
    add_actor(a, me, "person")
    add_actor(b, them, "person")
    note = b.cli("post", them, "Buy cheap watches at example.invalid").strip()
    api = mastodon_py(a, me)
    (found,) = api.search_v2(f"@{them}@{b.domain}", resolve=True)["accounts"]
    statuses = api.search_v2(note, resolve=True)["statuses"]  # the post, fetched from its server
    assert statuses and statuses[0]["uri"] == note
    quiet = api.report(found["id"], status_ids=[statuses[0]["id"]], comment="spam, kept here", forward=False)
    loud = api.report(found["id"], status_ids=[statuses[0]["id"]], comment="spam watches", forward=True)
    assert quiet["forwarded"] is False and loud["forwarded"] is True
    report = wait_until(lambda: [r for r in json.loads(b.cli("report", "list", "--json"))
                                 if r["content"] == "spam watches"], timeout=30, message="the Flag on hub B")[0]
    assert report["reporter"] == f"{a.base_url}/actor"  # the instance, not the person who reported
    assert report["targets"][0] == b.actor_uri(them) and statuses[0]["uri"] in report["targets"]
    assert not [r for r in json.loads(b.cli("report", "list", "--json")) if r["content"] == "spam, kept here"]
    mine = [r for r in json.loads(a.cli("report", "list", "--json")) if r["content"] in ("spam watches", "spam, kept here")]
    assert len(mine) == 2  # both kept for this hub's administrators too


def test_hashtags_travel_and_have_a_timeline(hubs):
    """A post with a hashtag on hub B: its note carries a Hashtag tag and a link; hub A, following, keeps the
    tag; Mastodon.py's hashtag timeline on A lists it with its tags; an edit that drops the tag drops it
    there too; the tag's page answers on both hubs."""
    a, b = hubs
    reader, writer = unique("tagr"), unique("tagw")
    add_actor(a, reader, "person")
    add_actor(b, writer, "person")
    api = mastodon_py(a, reader)
    (found,) = api.search_v2(f"@{writer}@{b.domain}", resolve=True)["accounts"]
    api.account_follow(found["id"])
    wait_until(lambda: b.sql(f"SELECT count(*) FROM follows f JOIN actors x ON x.id = f.follower_id "
                             f"WHERE x.uri = '{a.actor_uri(reader)}' AND f.state = 'accepted'") == [(1,)],
               timeout=20, message="the follow accepted")
    tag = unique("Kettles").replace("-", "")
    writer_api = mastodon_py(b, writer)
    post = writer_api.status_post(f"New #{tag} in stock, and #tea too")
    assert sorted(t["name"] for t in post["tags"]) == sorted([tag.lower(), "tea"])
    assert f'href="{b.base_url}/tags/{tag.lower()}"' in post["content"] and 'class="mention hashtag"' in post["content"]
    status, note = get_json(post["uri"])
    assert {"type": "Hashtag", "href": f"{b.base_url}/tags/{tag.lower()}", "name": f"#{tag.lower()}"} in note["tag"]
    seen = wait_until(lambda: api.timeline_hashtag(tag.lower()), timeout=30, message="the post in A's tag timeline")
    assert seen[0]["uri"] == post["uri"] and {t["name"] for t in seen[0]["tags"]} == {tag.lower(), "tea"}
    assert api.timeline_hashtag(tag.lower(), local=True) == []  # not written on A
    for hub in (a, b):
        r = requests.get(f"{hub.base_url}/tags/{tag.lower()}", timeout=10)
        assert r.status_code == 200 and "in stock" in r.text
    writer_api.status_update(post["id"], "New kettles in stock, and #tea too")
    wait_until(lambda: api.timeline_hashtag(tag.lower()) == [], timeout=30, message="the edit to drop the tag")
    assert [s["uri"] for s in api.timeline_hashtag("tea")] == [post["uri"]]
