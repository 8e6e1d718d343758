"""Pages anyone may read without an account: the instance's landing page and
the public conversations (those their owner made public, and threads of
public posts). A private conversation is never shown here: to anyone else it
does not exist (404); a participant signed in here is sent to their own page
of it. Private notes are never read by this module."""

from __future__ import annotations

from aiohttp import web

from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.web import HUB_KEY, render


async def index(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.db.read() as conn:
        local = [a for a in await actor_store.list_local_actors(conn) if a.discoverable and not a.deleted_at]
        public = await conv_store.list_public_conversations(conn, limit=10)
    organizations = [a for a in local if a.type == "Organization"]
    people = [a for a in local if a.type != "Organization"]
    return render(request, "index.html", actors=local, organizations=organizations, people=people,
                  public=public)


async def _speaks_for_participant(request: web.Request, conn, participants) -> str | None:
    """The username of a local participant the signed-in account speaks for."""
    from hub.store import org as org_store
    from hub.web_accounts import current

    session = current(request)
    if session is None:
        return None
    mine = {a.id for a in await org_store.list_actors_of_account(conn, session.account_id)}
    for p in participants:
        if p.local and p.id in mine:
            return p.username
    return None


async def conversation_page(request: web.Request, conversation_id: str) -> web.StreamResponse:
    """``/c/{id}`` as HTML."""
    hub = request.app[HUB_KEY]
    async with hub.db.read() as conn:
        conv = await msg_store.get_conversation_by_id(conn, conversation_id)
        if conv is None or not hub.uris.is_local(conv.uri):
            return render(request, "gone.html", status=404, what="conversation", request_path=request.path)
        participants = await conv_store.list_participants(conn, conv.id)
        if participants and conv.visibility != "public":
            mine = await _speaks_for_participant(request, conn, participants)
            if mine is not None:
                raise web.HTTPSeeOther(f"/inbox/{mine}/{conv.id}")
            return render(request, "gone.html", status=404, what="conversation", request_path=request.path)
        rows = await conv_store.list_messages(conn, conv.id)
        if not participants:  # a thread of posts: only what was posted for anyone
            rows = [m for m in rows if m.visibility in ("public", "unlisted")]
        files = await bridge_store.attachments_of(conn, [m.id for m in rows])
        owner = await actor_store.get_actor_by_id(conn, conv.owner_id) if conv.owner_id else None
    from hub import media

    messages = []
    for m in rows:
        domain = hub.cfg.domain if m.author_local else m.author_domain
        messages.append({
            "uri": m.uri, "url": m.url or m.uri, "author": m.author_uri, "author_name": m.author_name or m.author_username,
            "author_handle": f"@{m.author_username}@{domain}", "text": m.content_text, "network": m.network,
            "published": m.published_at,
            "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size, "remote": not a.sha256,
                             "description": a.description,
                             "url": media.url_of(hub.cfg, a.id, a.filename) if a.sha256 else a.remote_url}
                            for a in files.get(m.id, [])],
        })
    resp = render(request, "public_conversation.html", conversation=conv, owner=owner, messages=messages,
                  participants=participants)
    resp.headers["Link"] = f'<{conv.uri}>; rel="alternate"; type="application/activity+json"'
    return resp


async def tag_page(request: web.Request) -> web.StreamResponse:
    """``/tags/{name}``: the public posts with the hashtag that this server knows, newest first."""
    from hub.store import mastodon as client_store
    from hub.text import tag_name

    hub = request.app[HUB_KEY]
    name = tag_name(request.match_info["name"])
    async with hub.db.read() as conn:
        rows = await client_store.public_timeline(conn, local=None, viewer_id=None, tag=name, limit=40)
        authors = {i: await actor_store.get_actor_by_id(conn, i) for i in {r.actor_id for r in rows}}
    posts = [{"message": r, "author": authors.get(r.actor_id)} for r in rows]
    return render(request, "tag.html", tag=name, posts=posts)


def setup(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/tags/{name}", tag_page)
