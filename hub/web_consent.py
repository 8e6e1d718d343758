"""``/settings/data/{actor}``: the customer's own page of their data and who
may read it. Items (private unless granted), grants with their state and
signed receipts to download, revocation, a form to share items with an
organization, and every read ("Acme read your address for delivery on ...").
An organization sees the offers waiting for a decision there too."""

from __future__ import annotations

import json

from aiohttp import web

from hub import consent
from hub.errors import HubError
from hub.inbox import access
from hub.store import consent as consent_store
from hub.web import HUB_KEY, render
from hub.web_accounts import form_of
from hub.web_inbox import _acting


async def _page(request: web.Request, acting: access.Acting, *, error=None, done=None, status=200,
                link=None) -> web.Response:
    from hub import export

    hub = request.app[HUB_KEY]
    owner = acting.role == "owner"
    exports = await export.list_exports(hub, acting) if owner else []
    items = await consent.profile(hub, acting)
    grants = await consent.grants(hub, acting)
    log = await consent.access_log(hub, acting, limit=200)
    admin = access.ROLES[acting.role] >= access.ROLES["admin"]
    return render(request, "consent.html", acting=acting, items=items, grants=grants, log=log, admin=admin,
                  purposes=consent.PURPOSES, error=error, done=done, status=status, owner=owner, exports=exports,
                  link=link,
                  made=[g for g in grants if g["side"] == "customer"],
                  received=[g for g in grants if g["side"] == "organization"])


async def consent_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, await _acting(request))


async def consent_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    form = await form_of(request)
    action = form.get("action")
    try:
        if action == "set_item":
            await consent.set_item(hub, acting, form.get("name", ""), form.get("value", "") or None)
            done = f"{form.get('name')} is saved: nobody sees it unless you share it"
        elif action == "remove_item":
            await consent.set_item(hub, acting, form.get("name", ""), None)
            done = f"{form.get('name')} is removed"
        elif action == "grant":
            org = await hub.resolve_handle(form.get("organization", "").strip())
            data = await request.post()
            items = [v for v in data.getall("item", []) if isinstance(v, str)]
            purposes = [v for v in data.getall("purpose", []) if isinstance(v, str)]
            grant = await consent.grant(hub, acting, org, items=items, purposes=purposes,
                                        expires=form.get("expires") or None)
            done = f"Offered {', '.join(grant['items'])} to {grant['organization_handle']}"
        elif action == "revoke":
            org = await hub.resolve_handle(form.get("organization", ""))
            await consent.revoke(hub, acting, org)
            done = "Revoked: from now on they read nothing"
        elif action == "export":
            from hub import export

            made = await export.request_export(hub, acting, private_key=form.get("private_key") == "on")
            return await _page(request, acting, link=made["download"],
                               done="Your archive is being built: the link below works for a day once it is ready")
        elif action == "delete_account":
            from hub import leaving, sessions
            from hub.web_accounts import current

            leaving.check_confirmation(acting, form.get("confirm"))
            await sessions.check_password(hub, current(request).account_id, form.get("password", ""))
            summary = await leaving.delete_account(hub, acting)
            resp = render(request, "goodbye.html", summary=summary, handle=f"@{acting.actor.username}")
            async with hub.db.read() as conn:
                from hub.store import actors as actor_store

                login_left = await actor_store.get_account_by_id(conn, current(request).account_id)
            if login_left is None:  # the login spoke only for this account: it is gone, and so is the session
                resp.del_cookie(sessions.cookie_name(hub), path="/")
            return resp
        elif action == "alias":
            from hub import moving

            acting.require("owner")
            aliases = await moving.add_alias(hub, acting, await moving.old_account(hub, form.get("alias", "")))
            done = f"This account is now also known as {', '.join(aliases)}"
        elif action == "move":
            from hub import moving

            acting.require("owner")
            moved = await moving.move(hub, acting, await hub.resolve_handle(form.get("target", "").strip()))
            done = (f"Moved to {moved['moved_to']}: {moved['followers']} followers and {moved['conversations']} "
                    "conversations are being told")
        elif action in ("accept", "reject"):
            grant = await consent.decide(hub, acting, form.get("offer", ""), accept=action == "accept")
            done = f"The offer is {grant['state']}"
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except HubError as exc:
        return await _page(request, acting, error=exc.safe, status=exc.status if exc.status < 500 else 400)
    return await _page(request, acting, done=done)


async def import_post(request: web.Request) -> web.StreamResponse:
    """An archive uploaded from the page (``multipart/form-data``: the CSRF token, then the file), streamed
    to disk as it arrives and imported into this empty account."""
    from aiohttp import BodyPartReader

    from hub import importer
    from hub.web_accounts import check_csrf, check_origin

    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    if acting.role != "owner":
        return await _page(request, acting, error="only the account's owner brings an archive here", status=403)
    check_origin(request)
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text="send the archive with the form")
    reader = await request.multipart()
    token = ""
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise web.HTTPBadRequest(text="a form cannot nest multipart bodies")
            if part.filename is None:
                value = await part.read_chunk(4096)
                if part.name == "csrf_token":
                    token = value.decode(errors="replace")
                continue
            check_csrf(request, token)  # the token comes before the file in the form

            async def chunks(part=part):
                while chunk := await part.read_chunk(256 * 1024):
                    yield chunk

            summary = await importer.import_upload(hub, acting.actor.username, chunks())
            said = (f"Imported {summary['conversations']} conversation(s) from {summary['from']} and "
                    f"{summary['profile_items']} data item(s). Next: name that account below, then move it here "
                    "from there.")
            return await _page(request, acting, done=said)
    except HubError as exc:
        return await _page(request, acting, error=exc.safe, status=exc.status if exc.status < 500 else 400)
    return await _page(request, acting, error="no archive was sent", status=400)


async def receipt_download(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    acting = await _acting(request)
    async with hub.db.read() as conn:
        receipt = await consent_store.get_receipt(conn, request.match_info["receipt"])
        grant = await consent_store.get_grant(conn, receipt.grant_id) if receipt is not None else None
    mine = grant is not None and acting.actor.id == (grant.customer_id if grant.side == "customer"
                                                     else grant.organization_id)
    if not mine:
        raise web.HTTPNotFound(text="no such receipt")
    return web.Response(body=json.dumps(receipt.document, indent=2, ensure_ascii=False).encode(),
                        content_type="application/json", headers={
                            "Content-Disposition": f'attachment; filename="consent-receipt-{receipt.id}.json"',
                            "Cache-Control": "private, no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/settings/data/{actor}", consent_page)
    app.router.add_post("/settings/data/{actor}", consent_post)
    app.router.add_post("/settings/data/{actor}/import", import_post)
    app.router.add_get("/settings/data/{actor}/receipts/{receipt}", receipt_download)
