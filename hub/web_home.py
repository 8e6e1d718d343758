"""The signed-in home: every conversation of every actor the login speaks for."""

from __future__ import annotations

from aiohttp import web

from hub.inbox import access, state
from hub.store import org as org_store
from hub.web import HUB_KEY, render
from hub.web_accounts import current


async def home(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    session = current(request)
    if session is None:
        raise web.HTTPSeeOther("/login?next=/home")
    async with hub.db.read() as conn:
        actors = await org_store.list_actors_of_account(conn, session.account_id)
    sections = []
    for actor in actors:
        acting = await access.acting_as(hub, actor.username, session.username)
        items, _cursor = await state.list_conversations(hub, acting, limit=50)
        sections.append({"actor": actor, "role": actor.role, "conversations": items,
                         "unread": sum(1 for c in items if c["unread"])})
    return render(request, "home.html", sections=sections)


def setup(app: web.Application) -> None:
    app.router.add_get("/home", home)
