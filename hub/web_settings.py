"""An actor's settings page: members and roles, the signature members sign
with, canned responses, webhooks, bridges and their state, the audit log.
The same page for an organization and for a customer's household; reading
needs the agent role, changing needs admin (members: owner or admin)."""

from __future__ import annotations

from aiohttp import web

from hub import actors
from hub.errors import HubError
from hub.inbox import access, state, webhooks
from hub.store import bridges as bridge_store
from hub.store import org as org_store
from hub.web import HUB_KEY, render
from hub.web_accounts import form_of
from hub.web_inbox import _acting


async def _page(request: web.Request, acting: access.Acting, *, error=None, done=None, secret=None, status=200):
    hub = request.app[HUB_KEY]
    members = await access.list_members(hub, acting)
    canned = await state.list_canned(hub, acting)
    admin = access.ROLES[acting.role] >= access.ROLES["admin"]
    hooks = await webhooks.list_(hub, acting) if admin else []
    async with hub.db.read() as conn:
        bridges = await bridge_store.list_bridges(conn)
        audit = await org_store.list_audit(conn, acting.actor.id, limit=50) if admin else []
    return render(request, "settings.html", acting=acting, members=members, canned=canned, hooks=hooks,
                  bridges=bridges, audit=audit, admin=admin, error=error, done=done, secret=secret,
                  signature=(acting.actor.settings or {}).get("agent_signature", ""), status=status)


async def settings_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, await _acting(request))


async def settings_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    form = await form_of(request)
    action = form.get("action")
    secret = None
    try:
        if action == "add_member":
            await access.add_member(hub, acting, form.get("username", "").strip(), role=form.get("role", "agent"))
            done = f"{form.get('username')} is now a member"
        elif action == "remove_member":
            await access.remove_member(hub, acting, form.get("username", ""))
            done = f"{form.get('username')} is no longer a member"
        elif action == "signature":
            acting.require("admin")
            await actors.update_settings(hub, acting.actor, dict(acting.actor.settings or {},
                                                                 agent_signature=form.get("signature", "")[:500]))
            done = "The signature is saved"
        elif action == "canned":
            await state.save_canned(hub, acting, form.get("name", ""), form.get("text", ""))
            done = f"Saved “{form.get('name')}”"
        elif action == "webhook":
            created = await webhooks.create(hub, acting, form.get("url", ""), None)
            secret = created.get("secret")
            done = "The webhook is registered; copy its secret now, it is shown once"
        elif action == "remove_webhook":
            await webhooks.remove(hub, acting, form.get("id", ""))
            done = "The webhook is removed"
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except HubError as exc:
        return await _page(request, acting, error=exc.safe, status=exc.status)
    acting = await _acting(request)  # the actor row may have changed
    return await _page(request, acting, done=done, secret=secret)


def setup(app: web.Application) -> None:
    app.router.add_get("/settings/actor/{actor}", settings_page)
    app.router.add_post("/settings/actor/{actor}", settings_post)
