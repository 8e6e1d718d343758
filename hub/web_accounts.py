"""Pages to sign up, sign in and out, and change a password.

Every form carries a hidden ``csrf_token``: the session's own once signed in,
and before that a random token also kept in the ``rt_csrf`` cookie (double
submit). A POST whose token does not match, or whose ``Origin`` is another
site, is refused with 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import BodyPartReader, web

from hub import sessions
from hub.errors import HubError
from hub.store import actors as actor_store
from hub.web import HUB_KEY, render

CSRF_COOKIE = "rt_csrf"
SESSION_KEY = web.RequestKey("rt_session", object)
NEW_CSRF_KEY = web.RequestKey("rt_new_csrf", str)
PENDING_KEY = web.RequestKey("rt_pending", object)


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Load the browser's session, if it sends one (federation requests do not)."""
    hub = request.app[HUB_KEY]
    token = request.cookies.get(sessions.cookie_name(hub))
    request[SESSION_KEY] = await sessions.session_of(hub, token) if token else None
    return await handler(request)


def current(request: web.Request):
    return request.get(SESSION_KEY)


def _secure(request: web.Request) -> bool:
    return request.app[HUB_KEY].cfg.scheme == "https"


def set_session_cookie(request: web.Request, resp: web.StreamResponse, token: str) -> None:
    hub = request.app[HUB_KEY]
    resp.set_cookie(sessions.cookie_name(hub), token, max_age=hub.cfg.session_days * 86400, path="/",
                    httponly=True, samesite="Lax", secure=_secure(request))


def _pre_csrf(request: web.Request) -> str:
    """The signed-out CSRF token: the cookie's, or a new one (set by ``_with_pre_csrf``)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) > 100:
        token = request.get(NEW_CSRF_KEY) or secrets.token_urlsafe(24)
        request[NEW_CSRF_KEY] = token
    return token


def _with_pre_csrf(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    if request.get(NEW_CSRF_KEY):
        resp.set_cookie(CSRF_COOKIE, request[NEW_CSRF_KEY], path="/", httponly=True, samesite="Strict",
                        secure=_secure(request))
    return resp


def csrf_token(request: web.Request) -> str:
    session = current(request) or request.get(PENDING_KEY)
    return session.csrf_token if session is not None else _pre_csrf(request)


def check_origin(request: web.Request) -> None:
    """A form posted from another site is refused (403)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        o = urlsplit(origin)
        if f"{o.scheme}://{o.netloc}" != request.app[HUB_KEY].cfg.base_url:
            raise web.HTTPForbidden(text="this form was sent from another site")


def check_csrf(request: web.Request, sent: str) -> None:
    """The form's CSRF token must be the session's (or, signed out, the cookie's); 403 otherwise."""
    session = current(request) or request.get(PENDING_KEY)
    expected = session.csrf_token if session is not None else request.cookies.get(CSRF_COOKIE)
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise web.HTTPForbidden(text="the form has expired or was not sent from this site: reload the page and try again")


async def form_of(request: web.Request) -> dict[str, str]:
    """A POSTed form, its CSRF token and origin checked; 403 otherwise."""
    check_origin(request)
    if request.content_length and request.content_length > 64 * 1024:
        raise web.HTTPRequestEntityTooLarge(max_size=64 * 1024, actual_size=request.content_length)
    data = await request.post()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    check_csrf(request, form.get("csrf_token", ""))
    return form


async def form_with_files(request: web.Request) -> tuple[dict[str, str], list]:
    """A POSTed form that may carry files (``multipart/form-data``): its fields
    and its files (``hub.media.NewFile``), the CSRF token and origin checked
    as in ``form_of``. Read part by part, so an oversized body is refused
    (413) before it is all in memory."""
    from hub import media

    if not request.content_type.startswith("multipart/"):
        return await form_of(request), []
    hub = request.app[HUB_KEY]
    check_origin(request)
    per_file = hub.cfg.max_attachment_bytes
    limit = per_file * media.MAX_FILES + 64 * 1024
    if request.content_length and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    form: dict[str, str] = {}
    files: list[media.NewFile] = []
    total = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest(text="a form cannot nest multipart bodies")
        if part.filename is None:
            value = bytearray()
            while chunk := await part.read_chunk(16 * 1024):
                value += chunk
                if len(value) > 64 * 1024:
                    raise web.HTTPRequestEntityTooLarge(text=f"the field {part.name} is too long",
                                                        max_size=64 * 1024, actual_size=len(value))
            total += len(value)
            form.setdefault(part.name or "", bytes(value).decode(part.get_charset("utf-8"), "replace"))
            continue
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            data += chunk
            if len(data) > per_file:
                raise web.HTTPRequestEntityTooLarge(
                    text=f"{part.filename} is too large: at most {per_file // (1024 * 1024)} MB a file",
                    max_size=per_file, actual_size=len(data))
        total += len(data)
        if not part.filename and not data:
            continue  # a file field left empty
        if len(files) >= media.MAX_FILES:
            raise web.HTTPRequestEntityTooLarge(text=f"at most {media.MAX_FILES} files a message",
                                                max_size=limit, actual_size=total)
        ctype = (part.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip().lower()
        files.append(media.NewFile(filename=part.filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or "file",
                                   content_type=ctype or "application/octet-stream", data=bytes(data)))
    check_csrf(request, form.get("csrf_token", ""))
    return form, files


def _next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/home"


def _client_ip(request: web.Request) -> str | None:
    return request.remote


async def login_page(request: web.Request) -> web.StreamResponse:
    if current(request) is not None:
        raise web.HTTPSeeOther(_next(request.query.get("next")))
    resp = render(request, "login.html", next=_next(request.query.get("next")), error=None, login="")
    return _with_pre_csrf(request, resp)


async def login_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    form = await form_of(request)
    login, nxt = form.get("login", ""), _next(form.get("next"))
    try:
        _account, token = await sessions.sign_in(hub, login, form.get("password", ""), ip=_client_ip(request),
                                                 user_agent=request.headers.get("User-Agent"))
    except sessions.TooManyAttempts as exc:
        resp = render(request, "login.html", next=nxt, error=exc.safe, login=login, status=429)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return _with_pre_csrf(request, resp)
    except HubError as exc:
        return _with_pre_csrf(request, render(request, "login.html", next=nxt, error=exc.safe, login=login,
                                              status=exc.status))
    resp = web.HTTPSeeOther(f"/login/code?next={nxt}" if _account.totp_secret else nxt)
    set_session_cookie(request, resp, token)
    raise resp


async def code_page(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    pending = await sessions.pending_session_of(hub, request.cookies.get(sessions.cookie_name(hub)))
    if pending is None:
        raise web.HTTPSeeOther("/login")
    request[PENDING_KEY] = pending
    return render(request, "code.html", next=_next(request.query.get("next")), error=None)


async def code_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    token = request.cookies.get(sessions.cookie_name(hub))
    pending = await sessions.pending_session_of(hub, token)
    if pending is None:
        raise web.HTTPSeeOther("/login")
    request[PENDING_KEY] = pending
    form = await form_of(request)
    nxt = _next(form.get("next"))
    try:
        await sessions.confirm_code(hub, token, form.get("code", ""))
    except sessions.TooManyAttempts as exc:
        resp = render(request, "code.html", next=nxt, error=exc.safe, status=429)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp
    except HubError as exc:
        return render(request, "code.html", next=nxt, error=exc.safe, status=exc.status)
    raise web.HTTPSeeOther(nxt)


async def twofactor_page(request: web.Request, *, error: str | None = None, done: str | None = None,
                         status: int = 200) -> web.StreamResponse:
    import base64

    import segno

    hub = request.app[HUB_KEY]
    session = _require(request)
    secret = uri = qr = None
    if not session.totp_secret:
        secret = sessions.new_totp_secret()
        uri = sessions.totp_uri(hub, session.username, secret)
        svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#1b1f24", light="#ffffff")
        qr = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return render(request, "twofactor.html", enabled=bool(session.totp_secret), secret=secret, uri=uri, qr=qr,
                  error=error, done=done, status=status)


async def twofactor_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    session = _require(request)
    form = await form_of(request)
    try:
        if form.get("action") == "enable":
            await sessions.enable_totp(hub, session.account_id, form.get("secret", ""), form.get("code", ""))
            done = "Two-factor sign-in is on: from now on you will be asked for a code after your password."
        else:
            await sessions.disable_totp(hub, session.account_id, form.get("password", ""))
            done = "Two-factor sign-in is off."
    except HubError as exc:
        return await twofactor_page(request, error=exc.safe, status=exc.status)
    request[SESSION_KEY] = await sessions.session_of(hub, request.cookies.get(sessions.cookie_name(hub)))
    return await twofactor_page(request, done=done)


async def logout_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    await form_of(request)
    await sessions.sign_out(hub, request.cookies.get(sessions.cookie_name(hub)))
    resp = web.HTTPSeeOther("/")
    resp.del_cookie(sessions.cookie_name(hub), path="/")
    raise resp


async def signup_page(request: web.Request) -> web.StreamResponse:
    if current(request) is not None:
        raise web.HTTPSeeOther("/home")
    resp = render(request, "signup.html", error=None, values={"invitation": request.query.get("invitation", "")})
    return _with_pre_csrf(request, resp)


async def signup_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    form = await form_of(request)
    values = {k: form.get(k, "") for k in ("username", "name", "email", "invitation")}
    if form.get("password", "") != form.get("password2", ""):
        return _with_pre_csrf(request, render(request, "signup.html", error="the two passwords differ",
                                              values=values, status=400))
    try:
        _account, token = await sessions.sign_up(
            hub, username=values["username"], password=form.get("password", ""), email=values["email"] or None,
            name=values["name"] or None, invitation=values["invitation"] or None,
            user_agent=request.headers.get("User-Agent"))
    except HubError as exc:
        return _with_pre_csrf(request, render(request, "signup.html", error=exc.safe, values=values,
                                              status=exc.status))
    resp = web.HTTPSeeOther("/home")
    set_session_cookie(request, resp, token)
    raise resp


def _require(request: web.Request):
    session = current(request)
    if session is None:
        raise web.HTTPSeeOther(f"/login?next={request.path}")
    return session


async def _password_page(request: web.Request, session, *, error=None, done=None, status=200) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, session.account_id)
    return render(request, "password.html", error=error, done=done, email=account.email if account else None,
                  status=status)


async def password_page(request: web.Request) -> web.StreamResponse:
    return await _password_page(request, _require(request))


async def password_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    session = _require(request)
    form = await form_of(request)
    if form.get("action") == "email":
        try:
            out = await sessions.change_email(hub, session.account_id, form.get("password", ""), form.get("email", ""))
        except HubError as exc:
            return await _password_page(request, session, error=exc.safe, status=exc.status)
        done = {"changed": f"Mail now goes to {out['email']}.",
                "removed": "The email address is removed: no resets, no notifications by mail.",
                "pending": f"A link to confirm is on its way to {out['email']}: the address changes when you open "
                           f"it (within a day). Until then mail goes where it went."}[out["state"]]
        return await _password_page(request, session, done=done)
    if form.get("new", "") != form.get("new2", ""):
        return await _password_page(request, session, error="the two new passwords differ", status=400)
    try:
        ended = await sessions.change_password(hub, session.account_id, form.get("current", ""), form.get("new", ""),
                                               keep_token=request.cookies.get(sessions.cookie_name(hub)))
    except HubError as exc:
        return await _password_page(request, session, error=exc.safe, status=exc.status)
    return await _password_page(request, session,
                                done=f"Your password is changed. {ended} other session(s) were signed out.")


async def reset_page(request: web.Request) -> web.StreamResponse:
    return _with_pre_csrf(request, render(request, "reset.html", error=None, sent=False, email=""))


async def reset_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    form = await form_of(request)
    address = form.get("email", "")
    try:
        await sessions.request_reset(hub, address, ip=_client_ip(request))
    except sessions.TooManyAttempts as exc:
        resp = render(request, "reset.html", error=exc.safe, sent=False, email=address, status=429)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return _with_pre_csrf(request, resp)
    except HubError as exc:
        return _with_pre_csrf(request, render(request, "reset.html", error=exc.safe, sent=False, email=address,
                                              status=exc.status))
    # the same answer whether an account has this address or not
    return _with_pre_csrf(request, render(request, "reset.html", error=None, sent=True, email=address))


async def reset_token_page(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    account = await sessions.reset_account(hub, request.match_info["token"])
    status = 200 if account is not None else 410
    return _with_pre_csrf(request, render(request, "reset_new.html", account=account, error=None, status=status))


async def reset_token_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    form = await form_of(request)
    token = request.match_info["token"]
    account = await sessions.reset_account(hub, token)
    if form.get("new", "") != form.get("new2", ""):
        return _with_pre_csrf(request, render(request, "reset_new.html", account=account,
                                              error="the two passwords differ", status=400))
    try:
        _account, session_token = await sessions.finish_reset(hub, token, form.get("new", ""),
                                                              user_agent=request.headers.get("User-Agent"))
    except HubError as exc:
        return _with_pre_csrf(request, render(request, "reset_new.html", account=account, error=exc.safe,
                                              status=exc.status))
    resp = web.HTTPSeeOther("/home")
    set_session_cookie(request, resp, session_token)
    raise resp


async def email_confirm_page(request: web.Request) -> web.StreamResponse:
    """The link mailed to a new address: a page with a button (a mail scanner opening the link confirms
    nothing), the button confirms."""
    hub = request.app[HUB_KEY]
    change = await sessions.email_change_of(hub, request.match_info["token"])
    return _with_pre_csrf(request, render(request, "email_confirm.html", change=change, done=None, error=None,
                                          status=200 if change is not None else 410))


async def email_confirm_post(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    await form_of(request)
    try:
        email = await sessions.confirm_email(hub, request.match_info["token"])
    except HubError as exc:
        return _with_pre_csrf(request, render(request, "email_confirm.html", change=None, done=None, error=exc.safe,
                                              status=exc.status))
    return _with_pre_csrf(request, render(request, "email_confirm.html", change=None, done=email, error=None))


def setup(app: web.Application) -> None:
    app.middlewares.append(session_middleware)
    app.router.add_get("/settings/email/{token}", email_confirm_page)
    app.router.add_post("/settings/email/{token}", email_confirm_post)
    for path, get, post in (("/login", login_page, login_post), ("/login/code", code_page, code_post),
                            ("/signup", signup_page, signup_post), ("/settings/password", password_page, password_post),
                            ("/settings/2fa", twofactor_page, twofactor_post), ("/reset", reset_page, reset_post),
                            ("/reset/{token}", reset_token_page, reset_token_post)):
        app.router.add_get(path, get)
        app.router.add_post(path, post)
    app.router.add_post("/logout", logout_post)
