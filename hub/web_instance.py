"""The instance administration pages (``/admin``): federation status with
retry buttons, domain blocks, received reports. Only for logins with
``accounts.is_admin`` (``roundtable admin grant USERNAME``); everyone else
gets a 403 page, and signed-out visitors are sent to sign in."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from hub import moderation
from hub.errors import HubError
from hub.web import HUB_KEY, render
from hub.web_accounts import current, form_of


def _admin(request: web.Request):
    session = current(request)
    if session is None:
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
    if not session.is_admin:
        raise web.HTTPForbidden(text="this page is for the instance's administrators")
    return session


async def _page(request: web.Request, template: str, *, error=None, done=None, status=200, **context):
    return render(request, template, error=error, done=done, status=status, section=template, **context)


async def status_page(request: web.Request, *, error=None, done=None, status=200) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    _admin(request)
    fed = await moderation.federation_status(hub)
    return await _page(request, "admin.html", fed=fed, error=error, done=done, status=status)


async def status_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    _admin(request)
    form = await form_of(request)
    action = form.get("action")
    try:
        if action == "retry_job":
            await moderation.retry_job(hub, form.get("job", ""))
            done = "The job is queued again, due now"
        elif action == "retry_host":
            n = await moderation.retry_host(hub, form.get("host", ""))
            done = f"{n} deliveries to {form.get('host')} are queued again, due now"
        elif action == "revive_inbox":
            n = await moderation.revive_inbox(hub, form.get("inbox", ""))
            done = f"{form.get('inbox')} will be tried again ({n} deliveries it missed are queued)"
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except HubError as exc:
        return await status_page(request, error=exc.safe, status=exc.status)
    return await status_page(request, done=done)


async def domains_page(request: web.Request, *, error=None, done=None, status=200, values=None) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    _admin(request)
    blocks = await moderation.list_domain_blocks(hub)
    return await _page(request, "admin_domains.html", blocks=blocks, error=error, done=done, status=status,
                       values=values or {})


async def domains_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    session = _admin(request)
    form = await form_of(request)
    try:
        if form.get("action") == "block":
            domain = await moderation.block_domain(hub, form.get("domain", ""), reason=form.get("reason") or None,
                                                   by_account_id=session.account_id)
            done = f"{domain} is blocked: nothing comes in from it, nothing goes out to it"
        elif form.get("action") == "unblock":
            domain = await moderation.unblock_domain(hub, form.get("domain", ""))
            done = f"{domain} is no longer blocked"
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except HubError as exc:
        return await domains_page(request, error=exc.safe, status=exc.status, values=form)
    return await domains_page(request, done=done)


async def reports_page(request: web.Request, *, error=None, done=None, status=200) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    _admin(request)
    open_ = await moderation.list_reports(hub, resolved=False)
    resolved = await moderation.list_reports(hub, resolved=True)
    return await _page(request, "admin_reports.html", open_reports=open_, resolved_reports=resolved, error=error,
                       done=done, status=status)


async def reports_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    session = _admin(request)
    form = await form_of(request)
    action = form.get("action")
    try:
        if action not in ("resolve", "reopen"):
            raise web.HTTPBadRequest(text="unknown action")
        await moderation.resolve_report(hub, form.get("report", ""), by_account_id=session.account_id,
                                        resolved=action == "resolve")
    except HubError as exc:
        return await reports_page(request, error=exc.safe, status=exc.status)
    return await reports_page(request, done="The report is resolved" if action == "resolve" else "The report is open again")


@web.middleware
async def forbidden_page(request: web.Request, handler):
    """A readable page, not a bare line, for a signed-in person who is not an administrator."""
    try:
        return await handler(request)
    except web.HTTPForbidden as exc:
        if not request.path.startswith("/admin"):
            raise
        return render(request, "forbidden.html", status=403, reason=exc.text)


def setup(app: web.Application) -> None:
    app.middlewares.append(forbidden_page)
    for path, get, post in (("/admin", status_page, status_post), ("/admin/domains", domains_page, domains_post),
                            ("/admin/reports", reports_page, reports_post)):
        app.router.add_get(path, get)
        app.router.add_post(path, post)
