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
                  profile=profile_form(acting.actor),
                  signature=(acting.actor.settings or {}).get("agent_signature", ""), status=status)


PROFILE_ROWS = 4


def profile_changes(form: dict) -> dict:
    """The profile form as ``update_profile`` takes it: plain text in, the
    same HTML the CLI writes (links made clickable) out."""
    from hub.text import plain_to_html

    def html(value: str) -> str:
        return plain_to_html(value).removeprefix("<p>").removesuffix("</p>")

    fields = []
    for i in range(PROFILE_ROWS):
        name, value = form.get(f"field_name_{i}", "").strip(), form.get(f"field_value_{i}", "").strip()
        if name and value:
            fields.append({"name": name[:255], "value": html(value[:2048])})
        elif name or value:
            raise HubError("each profile field needs a name and a value", status=400)
    summary = form.get("summary", "").strip()
    return {"name": form.get("name", "").strip()[:255] or None, "summary": plain_to_html(summary) if summary else None,
            "discoverable": form.get("discoverable") == "on", "fields": fields}


def profile_form(actor) -> dict:
    from hub.text import html_to_text

    rows = [{"name": f.get("name", ""), "value": html_to_text(f.get("value", "")), "verified_at": f.get("verified_at")}
            for f in (actor.fields or [])]
    rows += [{"name": "", "value": "", "verified_at": None}] * (PROFILE_ROWS - len(rows))
    return {"name": actor.name or "", "summary": html_to_text(actor.summary or ""), "discoverable": bool(actor.discoverable),
            "fields": rows[:PROFILE_ROWS]}


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
        elif action in ("allow_apps", "deny_apps"):
            await access.set_app_access(hub, acting, form.get("username", ""), allow=action == "allow_apps")
            done = (f"{form.get('username')} {'may now' if action == 'allow_apps' else 'may no longer'} "
                    f"speak as @{acting.actor.username} from fediverse apps")
        elif action == "remove_member":
            await access.remove_member(hub, acting, form.get("username", ""))
            done = f"{form.get('username')} is no longer a member"
        elif action == "profile":
            acting.require("admin")
            await actors.update_profile(hub, acting.actor, **profile_changes(form))
            done = "The profile is saved; links in it are being checked for rel=\"me\""
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
