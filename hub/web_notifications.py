"""The account's notification settings page, ``/settings/notifications``:
for each actor the login speaks for, which events it wants by mail (new
conversations, new messages, conversations assigned to it). A plain form,
CSRF-checked, working without JavaScript. What is sent is ``hub.notify``'s."""

from __future__ import annotations

from aiohttp import web

from hub import notify
from hub.web import HUB_KEY, render
from hub.web_accounts import current, form_of

PATH = "/settings/notifications"
LABELS = {
    "conversations": "New conversations",
    "messages": "New messages in its conversations",
    "assignments": "Conversations assigned to me",
}


def _session(request: web.Request):
    session = current(request)
    if session is None:
        raise web.HTTPSeeOther(f"/login?next={PATH}")
    return session


async def _page(request: web.Request, session, *, done: str | None = None) -> web.Response:
    hub = request.app[HUB_KEY]
    rows = await notify.list_choices(hub, session.account_id)
    return render(request, "notifications.html", rows=rows, labels=LABELS, email=session.email,
                  mail_on=notify.enabled(hub), done=done)


async def notifications_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, _session(request))


async def notifications_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    session = _session(request)
    form = await form_of(request)
    # Only the actors the form showed change (an unticked box is not sent at
    # all, so a membership added since the page was drawn keeps its choices).
    shown = {key.removeprefix("shown:") for key in form if key.startswith("shown:")}
    for row in await notify.list_choices(hub, session.account_id):
        if row["actor"] in shown:
            await notify.set_choices(hub, session.account_id, row["actor_id"],
                                     {c: f"{row['actor']}:{c}" in form for c in notify.CHOICES})
    return await _page(request, session, done="Your choices are saved.")


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, notifications_page)
    app.router.add_post(PATH, notifications_post)
