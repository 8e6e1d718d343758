"""The inbox and conversation pages: the same for a customer and an organization.

``/inbox/{actor}`` lists the actor's conversations (filters by status,
assignee, label, network and words), ``/inbox/{actor}/{id}`` shows one:
every message with who wrote it, the network it came through and, for the
actor's own, its delivery state; private notes apart from replies; the
actor's own status, assignee and labels; a reply box. ``/inbox/{actor}/new``
starts a conversation with anyone by handle (remote ones through WebFinger)
or by email address. Every action is a form (no JavaScript needed), checked
for its CSRF token, done as the signed-in member with their role.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from hub.errors import HubError
from hub.inbox import access, conversations, state
from hub.store import conversations as conv_store
from hub.web import HUB_KEY, render
from hub.web_accounts import current, form_of, form_with_files

STATUSES = ("open", "pending", "snoozed", "resolved")


def _signed_in(request: web.Request):
    session = current(request)
    if session is None:
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
    return session


async def _acting(request: web.Request) -> access.Acting:
    hub = request.app[HUB_KEY]
    session = _signed_in(request)
    try:
        return await access.acting_as(hub, request.match_info["actor"], session.username)
    except HubError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound(text=exc.safe) from None
        raise web.HTTPForbidden(text=exc.safe) from None


async def inbox_page(request: web.Request, *, flash: str | None = None, status: int = 200) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    q = request.query
    filters = {k: q.get(k) or None for k in ("status", "assignee", "label", "network", "q")}
    if filters["status"] not in (None, *STATUSES):
        filters["status"] = None
    try:
        items, cursor = await state.list_conversations(
            hub, acting, status=filters["status"], assignee=filters["assignee"], label=filters["label"],
            network=filters["network"], query=filters["q"], cursor=q.get("cursor") or None, limit=30)
    except HubError as exc:
        items, cursor = [], None
        filters["error"] = exc.safe
    members = await access.list_members(hub, acting) if acting.actor.type == "Organization" else []
    unread = sum(1 for c in items if c["unread"])
    done = q.get("done", "")
    kept = {k: v for k, v in filters.items() if v and k != "error"}
    return render(request, "inbox.html", acting=acting, items=items, cursor=cursor, filters=filters,
                  statuses=STATUSES, members=members, unread=unread, flash=flash, status=status,
                  done=int(done) if done.isdigit() else None, query=urlencode(kept),
                  here=request.path + ("?" + urlencode(kept) if kept else ""))


async def conversation_page(request: web.Request, *, error: str | None = None, status: int = 200,
                            draft: str = "") -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    try:
        conversation = await conversations.get_conversation(hub, request.match_info["id"])
        view = await state.show(hub, acting, conversation)
    except HubError as exc:
        raise web.HTTPNotFound(text=exc.safe) from None
    members = await access.list_members(hub, acting) if acting.actor.type == "Organization" else []
    canned = await state.list_canned(hub, acting)
    owner = conversation.owner_id == acting.actor.id and conversation.local
    return render(request, "conversation.html", acting=acting, view=view, conversation=view["conversation"],
                  statuses=STATUSES, members=members, error=error, status=status, canned=canned, draft=draft,
                  owner=owner, public_url=conversation.uri)


def _snooze_until(value: str | None):
    import datetime as dt

    if not value:
        return None
    try:
        until = dt.datetime.fromisoformat(value)
    except ValueError:
        raise HubError("snooze until: give a date and time", status=400) from None
    if until.tzinfo is None:  # a datetime-local field has no zone: the page says UTC
        until = until.replace(tzinfo=dt.timezone.utc)
    return until


async def act(request: web.Request) -> web.StreamResponse:
    """One form on the conversation page: ``action`` = reply | note | state |
    canned (fill the reply box) | public | private."""
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    form, files = await form_with_files(request)
    back = f"/inbox/{acting.actor.username}/{request.match_info['id']}"
    try:
        conversation = await conversations.get_conversation(hub, request.match_info["id"])
        async with hub.db.read() as conn:
            await conversations.require_participant(conn, acting, conversation)
        action = form.get("action")
        if action == "reply":
            await conversations.reply(hub, acting, conversation, form.get("text", ""), files=files)
        elif action == "canned":
            text = await state.render_canned(hub, acting, form.get("canned", ""), conversation)
            draft = form.get("text", "").rstrip()
            return await conversation_page(request, draft=f"{draft}\n\n{text}" if draft else text)
        elif action == "note":
            await state.update(hub, acting, conversation, note=form.get("text", ""))
        elif action in ("public", "private"):
            await conversations.set_public(hub, acting, conversation, public=action == "public")
        elif action == "state":
            labels = [x.strip() for x in form.get("labels", "").replace(",", " ").split() if x.strip()]
            until = _snooze_until(form.get("snooze_until"))
            current_labels = set((await state.item(hub, acting, conversation))["labels"])
            await state.update(
                hub, acting, conversation, status="snoozed" if until else (form.get("status") or None),
                snooze_until=until,
                assign=form.get("assign") if "assign" in form else None,
                add_labels=[x for x in labels if x not in current_labels],
                remove_labels=[x for x in current_labels if x not in labels] if "labels" in form else [],
            )
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except HubError as exc:
        return await conversation_page(request, error=exc.safe, status=exc.status,
                                       draft=form.get("text", "") if action in ("reply", "canned") else "")
    raise web.HTTPSeeOther(back)


BULK_LIMIT = 100


async def bulk(request: web.Request) -> web.StreamResponse:
    """The inbox's bulk actions on the conversations ticked: a status, an
    assignee, a label added or taken away. Each is done as the member, with
    their role, one conversation at a time; the page says what was done."""
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    form = await form_of(request)
    ids = (await request.post()).getall("ids", [])[:BULK_LIMIT]
    back = form.get("back") or f"/inbox/{acting.actor.username}"
    if not back.startswith(f"/inbox/{acting.actor.username}"):
        back = f"/inbox/{acting.actor.username}"
    action = form.get("bulk", "")
    if not ids:
        return await inbox_page(request, flash="Tick one or more conversations first.", status=400)
    changes: dict = {}
    if action in ("open", "pending", "resolved"):
        changes["status"] = action
    elif action == "assign":
        changes["assign"] = form.get("bulk_assign", "")
    elif action in ("label", "unlabel"):
        label = form.get("bulk_label", "").strip()
        if not label:
            return await inbox_page(request, flash="Write the label to add or take away.", status=400)
        changes["add_labels" if action == "label" else "remove_labels"] = [label]
    else:
        return await inbox_page(request, flash="Choose what to do with the conversations ticked.", status=400)
    done, failed = 0, []
    for conversation_id in ids:
        try:
            conversation = await conversations.get_conversation(hub, conversation_id)
            await state.update(hub, acting, conversation, **changes)
            done += 1
        except HubError as exc:
            failed.append(exc.safe)
    if failed:
        return await inbox_page(request, flash=f"{done} changed; {len(failed)} not: {failed[0]}", status=400)
    sep = "&" if "?" in back else "?"
    raise web.HTTPSeeOther(f"{back}{sep}done={done}")


async def new_page(request: web.Request) -> web.StreamResponse:
    acting = await _acting(request)
    return render(request, "new.html", acting=acting, error=None, values={"to": request.query.get("to", "")})


async def new_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    form, files = await form_with_files(request)
    values = {k: form.get(k, "") for k in ("to", "subject", "text")}
    try:
        targets = [await hub.resolve_handle(h) for h in values["to"].replace(",", " ").split()]
        if not targets:
            raise HubError("write who the conversation is with: a handle such as @acme@example.com, or an email address",
                           status=400)
        conversation, _message = await conversations.start(hub, acting, targets, values["text"],
                                                           subject=values["subject"] or None, files=files)
    except HubError as exc:
        return render(request, "new.html", acting=acting, error=exc.safe, values=values, status=exc.status)
    raise web.HTTPSeeOther(f"/inbox/{acting.actor.username}/{conversation.id}")


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events for a page: ``changed`` whenever the conversation (or,
    without an id, the inbox) has a new message. Polls the database, so it
    works whichever process placed the message; ends after ten minutes (the
    browser reconnects by itself)."""
    import asyncio
    import time

    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    conversation_id = request.match_info.get("id")
    if conversation_id:
        try:
            conversation = await conversations.get_conversation(hub, conversation_id)
            async with hub.db.read() as conn:
                await conversations.require_participant(conn, acting, conversation)
        except HubError as exc:
            raise web.HTTPNotFound(text=exc.safe) from None

    async def mark() -> str:
        if conversation_id:
            async with hub.db.read() as conn:
                return str(await conv_store.message_mark(conn, conversation.id))
        items, _ = await state.list_conversations(hub, acting, limit=1)
        return items[0]["last_activity"] + items[0]["id"] if items else ""

    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    await resp.write(b"retry: 3000\n\n")
    seen = await mark()
    deadline = time.monotonic() + 600
    stopping = request.app[STOPPING_KEY]
    try:
        while time.monotonic() < deadline and not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
                break  # the server is shutting down: end the stream, the browser comes back
            except asyncio.TimeoutError:
                pass
            now = await mark()
            if now != seen:
                seen = now
                await resp.write(b"event: changed\ndata: {}\n\n")
            else:
                await resp.write(b": keep-alive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


STOPPING_KEY = web.AppKey("events_stopping", object)


def setup(app: web.Application) -> None:
    import asyncio

    app[STOPPING_KEY] = asyncio.Event()

    async def on_shutdown(app: web.Application) -> None:
        app[STOPPING_KEY].set()

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/inbox/{actor}/events", events)
    app.router.add_get("/inbox/{actor}/{id}/events", events)
    app.router.add_get("/inbox/{actor}", inbox_page)
    app.router.add_get("/inbox/{actor}/new", new_page)
    app.router.add_post("/inbox/{actor}/new", new_post)
    app.router.add_post("/inbox/{actor}/bulk", bulk)
    app.router.add_get("/inbox/{actor}/{id}", conversation_page)
    app.router.add_post("/inbox/{actor}/{id}", act)
