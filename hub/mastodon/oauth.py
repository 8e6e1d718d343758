"""OAuth 2 as Mastodon's clients use it (RFC 6749, PKCE RFC 7636, revocation RFC 7009,
metadata RFC 8414): ``POST /api/v1/apps``, ``/oauth/authorize``, ``/oauth/token``,
``/oauth/revoke``, ``/.well-known/oauth-authorization-server``.

Codes and tokens are random 256-bit strings; only their SHA-256 is stored.
A code is good once, for ten minutes, for the redirect URI and PKCE challenge
(S256 only) it was issued with. Tokens do not expire; they end when revoked by
the client, when the password is changed or reset, or when the member may no
longer speak for the organization the token speaks as.

Why not Authlib's or oauthlib's server: both are built around synchronous
validator callbacks (``query_client``, ``save_token``...), which would block
the event loop on every database read here; the grants below are short, and
each check names the RFC section it follows.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from urllib.parse import unquote, urlencode, urlsplit

from aiohttp import web

from hub import sessions
from hub.errors import HubError
from hub.mastodon import push
from hub.mastodon.core import (
    ALL_SCOPES,
    HUB_KEY,
    ApiError,
    as_list,
    bearer_of,
    covered,
    digest,
    json_response,
    params_of,
    parse_scopes,
)
from hub.store import actors as actor_store
from hub.store import mastodon as client_store
from hub.store import org as org_store
from hub.store.base import utcnow

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_TTL_S = 600
GRANT_TYPES = ["authorization_code", "password", "client_credentials", "refresh_token"]


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _valid_redirect(uri: str) -> bool:
    """An absolute URI without a fragment, whitespace or characters that could break out of a header
    (it is named in the consent page's CSP); http(s) with a plain host, or an app's own scheme."""
    if uri == OOB:
        return True
    if any(c.isspace() or c in "\"'<>;,\\`" for c in uri):
        return False
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme) or parts.fragment or scheme in ("javascript", "data", "vbscript", "file"):
        return False
    if scheme in ("http", "https"):
        return bool(_HOST.match(parts.netloc))
    return True  # a custom scheme of a mobile or desktop app (com.example.app:/oauth)


def app_json(hub, app, *, secret: str | None = None) -> dict:
    data = {
        "id": app.id,
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes.split(),
        "redirect_uri": "\n".join(app.redirect_uris),
        "redirect_uris": list(app.redirect_uris),
        "vapid_key": push.public_key(hub),
    }
    if secret is not None:
        data.update(client_id=app.client_id, client_secret=secret, client_secret_expires_at=0)
    return data


async def create_app(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    params = await params_of(request)
    name = str(params.get("client_name") or "").strip()
    if not name:
        raise ApiError(422, "Validation failed: Application name can't be blank")
    if len(name) > 255:
        raise ApiError(422, "Validation failed: Application name is too long (maximum is 255 characters)")
    raw = params.get("redirect_uris")
    uris = [u.strip() for item in as_list(raw) for u in str(item).split("\n") if u.strip()]
    if not uris:
        raise ApiError(422, "Validation failed: Redirect URI can't be blank")
    if len(uris) > 20 or any(len(u) > 2000 or not _valid_redirect(u) for u in uris):
        raise ApiError(422, "Validation failed: Redirect URI must be an absolute URI")
    scopes = parse_scopes(params.get("scopes"))
    website = str(params.get("website") or "").strip() or None
    if website and (len(website) > 2000 or urlsplit(website).scheme not in ("http", "https")):
        raise ApiError(422, "Validation failed: Website is not a valid URL")
    client_id, secret = _new_secret(), _new_secret()
    async with hub.db.write() as conn:
        app_id = await client_store.put_app(conn, client_id=client_id, secret_hash=digest(secret), name=name,
                                            website=website, redirect_uris=uris, scopes=" ".join(scopes))
        app = await client_store.get_app(conn, app_id)
    return json_response(app_json(hub, app, secret=secret))


async def verify_app(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    token = bearer_of(request)
    async with hub.db.read() as conn:
        row = await client_store.get_token(conn, digest(token)) if token and len(token) < 200 else None
        app = await client_store.get_app(conn, row.app_id) if row is not None else None
    if app is None:
        raise ApiError(401, "The access token is invalid")
    return json_response(app_json(hub, app))


# --- the authorization endpoint (RFC 6749 §4.1.1) ------------------------------------------


def _page(request: web.Request, template: str, *, status: int = 200, form_target: str | None = None,
          **context) -> web.Response:
    from hub.web import render

    resp = render(request, template, status=status, **context)
    if form_target:
        # After consent the browser is sent to the app's redirect URI: let the form go there.
        parts = urlsplit(form_target)  # validated by _valid_redirect when the app registered it
        scheme = parts.scheme.lower()
        source = f"{scheme}://{parts.netloc}" if scheme in ("http", "https") else f"{scheme}:"
        resp.headers["Content-Security-Policy"] = resp.headers["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {source}")
    return resp


def _error_page(request: web.Request, message: str, status: int = 400) -> web.Response:
    return _page(request, "oauth_error.html", status=status, message=message)


async def _request_of(request: web.Request, params: dict):
    """Check an authorization request; ``(app, redirect_uri, scopes)`` or an error page to show."""
    hub = request.app[HUB_KEY]
    client_id = str(params.get("client_id") or "")
    async with hub.db.read() as conn:
        app = await client_store.get_app_by_client_id(conn, client_id) if client_id else None
    if app is None:
        return _error_page(request, "This application is not known here (unknown client_id).")
    redirect_uri = str(params.get("redirect_uri") or "")
    if not redirect_uri and len(app.redirect_uris) == 1:
        redirect_uri = app.redirect_uris[0]
    if redirect_uri not in app.redirect_uris:
        return _error_page(request, "The redirect URI is not one the application registered.")
    if (params.get("response_type") or "code") != "code":
        return _redirect_error(redirect_uri, params, "unsupported_response_type", "only response_type=code")
    try:
        scopes = parse_scopes(params.get("scope") or params.get("scopes"), default=app.scopes)
    except ApiError as exc:
        return _redirect_error(redirect_uri, params, "invalid_scope", exc.message)
    if not covered(scopes, app.scopes.split()):
        return _redirect_error(redirect_uri, params, "invalid_scope", "the scopes asked for exceed the application's")
    challenge = params.get("code_challenge")
    if challenge:
        if params.get("code_challenge_method") != "S256":
            return _redirect_error(redirect_uri, params, "invalid_request", "code_challenge_method must be S256")
        if not isinstance(challenge, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43,128}", challenge):
            return _redirect_error(redirect_uri, params, "invalid_request", "code_challenge is not an S256 challenge")
    return app, redirect_uri, scopes


def _redirect_error(redirect_uri: str, params: dict, error: str, description: str):
    if redirect_uri == OOB:
        return ApiError(400, description)
    query = {"error": error, "error_description": description}
    if params.get("state"):
        query["state"] = params["state"]
    sep = "&" if "?" in redirect_uri else "?"
    return web.HTTPFound(redirect_uri + sep + urlencode(query))


async def _checked(request: web.Request, params: dict) -> tuple | web.Response:
    """``(app, redirect_uri, scopes)``, or the page to answer with (an error page, or a redirect raised)."""
    checked = await _request_of(request, params)
    if isinstance(checked, ApiError):
        return _error_page(request, checked.message)
    if isinstance(checked, web.HTTPException):
        raise checked
    return checked


async def _voices(hub, account) -> list:
    """The actors an account may speak as from an app: its own, and organizations
    whose admin lets it (admins and owners always may)."""
    async with hub.db.read() as conn:
        rows = await org_store.list_actors_of_account(conn, account.id)
        out = []
        for r in rows:
            membership = await org_store.get_membership(conn, account_id=account.id, actor_id=r.id)
            own = r.username == account.username
            if own or r.role in ("owner", "admin") or membership.app_access:
                out.append((0 if own else 1, r))
    return [r for _, r in sorted(out, key=lambda x: (x[0], x[1].username))]


async def authorize_page(request: web.Request) -> web.StreamResponse:
    from hub import web_accounts

    hub = request.app[HUB_KEY]
    params = dict(request.query)
    checked = await _checked(request, params)
    if not isinstance(checked, tuple):
        return checked
    app, redirect_uri, scopes = checked
    session = web_accounts.current(request)
    if session is None or params.get("force_login") in ("true", "1"):
        target = request.path_qs.replace("force_login=true", "").replace("force_login=1", "")
        raise web.HTTPFound("/login?" + urlencode({"next": target}))
    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, session.account_id)
    voices = await _voices(hub, account)
    if not voices:
        return _error_page(request, "Your login speaks for no actor here.", 403)
    return _page(request, "oauth_authorize.html", form_target=redirect_uri, app=app, scopes=scopes,
                 scope_text=" ".join(scopes), redirect_uri=redirect_uri, params=params, voices=voices,
                 oob=redirect_uri == OOB, descriptions=SCOPE_TEXT)


SCOPE_TEXT = {
    "read": "read everything of your account: conversations, timelines, notifications, follows",
    "write": "post, reply, favourite, boost, follow and change your profile for you",
    "follow": "follow, block and mute accounts for you",
    "push": "send you push notifications",
    "profile": "know who you are (your account's name)",
}


async def authorize_post(request: web.Request) -> web.StreamResponse:
    from hub import web_accounts

    hub = request.app[HUB_KEY]
    form = await web_accounts.form_of(request)
    session = web_accounts.current(request)
    if session is None:
        raise web.HTTPFound("/login")
    checked = await _checked(request, form)
    if not isinstance(checked, tuple):
        return checked
    app, redirect_uri, scopes = checked
    if form.get("decision") != "allow":
        err = _redirect_error(redirect_uri, form, "access_denied", "the user denied the request")
        if isinstance(err, ApiError):
            return _page(request, "oauth_code.html", app=app, code=None)
        raise err
    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, session.account_id)
    voices = {v.username: v for v in await _voices(hub, account)}
    voice = voices.get(form.get("actor") or account.username)
    if voice is None:
        return _error_page(request, "You may not speak as that actor from apps.", 403)
    code = _new_secret()
    async with hub.db.write() as conn:
        await client_store.prune_codes(conn)
        await client_store.put_code(conn, {
            "code_hash": digest(code), "app_id": app.id, "account_id": account.id, "actor_id": voice.id,
            "redirect_uri": redirect_uri, "scopes": " ".join(scopes),
            "code_challenge": form.get("code_challenge") or None,
            "code_challenge_method": "S256" if form.get("code_challenge") else None,
            "expires_at": utcnow() + dt.timedelta(seconds=CODE_TTL_S),
        })
    if redirect_uri == OOB:
        return _page(request, "oauth_code.html", app=app, code=code)
    query = {"code": code}
    if form.get("state"):
        query["state"] = form["state"]
    sep = "&" if "?" in redirect_uri else "?"
    raise web.HTTPFound(redirect_uri + sep + urlencode(query))


# --- the token endpoint (RFC 6749 §3.2) -----------------------------------------------------


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _oauth_error(exc: OAuthError) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="roundtable"'
    return json_response({"error": exc.error, "error_description": exc.description}, status=exc.status,
                         headers=headers)


async def _client(request: web.Request, params: dict):
    """The client, authenticated by HTTP Basic or by ``client_id``/``client_secret`` parameters."""
    hub = request.app[HUB_KEY]
    client_id, secret = params.get("client_id"), params.get("client_secret")
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
            client_id, _, secret = (unquote(p) for p in decoded.partition(":"))
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    if not client_id or not isinstance(client_id, str):
        raise OAuthError("invalid_client", "client_id is required", 401)
    async with hub.db.read() as conn:
        app = await client_store.get_app_by_client_id(conn, client_id)
    if app is None:
        raise OAuthError("invalid_client", "Client authentication failed due to unknown client", 401)
    return app, secret


def _check_secret(app, secret) -> None:
    if not secret or not isinstance(secret, str) or not hmac.compare_digest(digest(secret), app.client_secret_hash):
        raise OAuthError("invalid_client", "Client authentication failed: wrong client_secret", 401)


def _pkce_ok(code_row, verifier) -> bool:
    if not code_row.code_challenge:
        return True
    if not verifier or not isinstance(verifier, str) or not 43 <= len(verifier) <= 128:
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(computed, code_row.code_challenge)


async def _issue(hub, *, app, account_id, actor_id, scopes: list[str], refresh: bool = True,
                 code_hash: str | None = None) -> dict:
    token = _new_secret()
    refresh_token = _new_secret() if refresh else None
    async with hub.db.write() as conn:
        await client_store.put_token(conn, token_hash=digest(token), refresh_hash=digest(refresh_token) if refresh else None,
                                     app_id=app.id, account_id=account_id, actor_id=actor_id, scopes=" ".join(scopes),
                                     code_hash=code_hash)
    data = {"access_token": token, "token_type": "Bearer", "scope": " ".join(scopes),
            "created_at": int(utcnow().timestamp())}
    if refresh_token:
        data["refresh_token"] = refresh_token
    return data


async def token(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    try:
        try:
            params = await params_of(request)
        except ApiError as exc:
            raise OAuthError("invalid_request", exc.message) from None
        grant = params.get("grant_type")
        if grant not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type must be one of {', '.join(GRANT_TYPES)}")
        app, secret = await _client(request, params)
        if grant == "authorization_code":
            # A public client (PKCE, no secret) may omit the secret; a wrong one is refused.
            code = params.get("code")
            if not code or not isinstance(code, str):
                raise OAuthError("invalid_request", "code is required")
            async with hub.db.write() as conn:
                row = await client_store.take_code(conn, digest(code))
            if row is None or row.app_id != app.id:
                raise OAuthError("invalid_grant", "The provided authorization grant is invalid, expired or used")
            if secret or not row.code_challenge:
                _check_secret(app, secret)
            given = params.get("redirect_uri")
            if given is None and len(app.redirect_uris) > 1:
                raise OAuthError("invalid_request", "redirect_uri is required: the application registered several")
            if (given or row.redirect_uri) != row.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
            if not _pkce_ok(row, params.get("code_verifier")):
                raise OAuthError("invalid_grant", "the code_verifier does not match the code_challenge")
            data = await _issue(hub, app=app, account_id=row.account_id, actor_id=row.actor_id,
                                scopes=row.scopes.split(), code_hash=row.code_hash)
        elif grant == "password":
            _check_secret(app, secret)
            scopes = _scopes_for(app, params)
            login, password = params.get("username"), params.get("password")
            if not isinstance(login, str) or not isinstance(password, str):
                raise OAuthError("invalid_request", "username and password are required")
            try:
                account = await sessions.check_login(hub, login, password, ip=request.remote)
            except HubError as exc:
                raise OAuthError("invalid_grant", exc.safe, 400 if exc.status != 429 else 429) from None
            if account.totp_secret:
                raise OAuthError("invalid_grant", "this account uses two-factor sign-in: sign in through the browser")
            async with hub.db.read() as conn:
                actor = await actor_store.get_local_actor(conn, account.username)
            if actor is None:
                raise OAuthError("invalid_grant", "this login has no actor of its own")
            data = await _issue(hub, app=app, account_id=account.id, actor_id=actor.id, scopes=scopes)
        elif grant == "client_credentials":
            _check_secret(app, secret)
            scopes = _scopes_for(app, params)
            data = await _issue(hub, app=app, account_id=None, actor_id=None, scopes=scopes, refresh=False)
        else:
            _check_secret(app, secret)
            refresh = params.get("refresh_token")
            if not refresh or not isinstance(refresh, str):
                raise OAuthError("invalid_request", "refresh_token is required")
            async with hub.db.write() as conn:
                old = await client_store.get_token_by_refresh(conn, digest(refresh))
                if old is None or old.app_id != app.id:
                    raise OAuthError("invalid_grant", "The refresh token is invalid or was revoked")
                await client_store.revoke_token(conn, old.id)
            scopes = old.scopes.split()
            if params.get("scope"):
                asked = parse_scopes(params.get("scope"))
                if not covered(asked, scopes):
                    raise OAuthError("invalid_scope", "a refreshed token cannot have more scopes than the old one")
                scopes = asked
            data = await _issue(hub, app=app, account_id=old.account_id, actor_id=old.actor_id, scopes=scopes,
                                code_hash=old.code_hash)
    except OAuthError as exc:
        return _oauth_error(exc)
    except ApiError as exc:
        return _oauth_error(OAuthError("invalid_scope" if "scope" in exc.message else "invalid_request", exc.message))
    return json_response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _scopes_for(app, params) -> list[str]:
    scopes = parse_scopes(params.get("scope") or params.get("scopes"), default=app.scopes)
    if not covered(scopes, app.scopes.split()):
        raise OAuthError("invalid_scope", "the scopes asked for exceed the application's")
    return scopes


async def revoke(request: web.Request) -> web.Response:
    """RFC 7009: the token's own client revokes it; an unknown token is not an error."""
    hub = request.app[HUB_KEY]
    try:
        params = await params_of(request)
        app, secret = await _client(request, params)
        _check_secret(app, secret)
        value = params.get("token")
        if not value or not isinstance(value, str):
            raise OAuthError("invalid_request", "token is required")
        async with hub.db.write() as conn:
            row = await client_store.get_token(conn, digest(value)) or await client_store.get_token_by_refresh(
                conn, digest(value))
            if row is not None:
                if row.app_id != app.id:
                    raise OAuthError("unauthorized_client", "You are not authorized to revoke this token", 403)
                await client_store.revoke_token(conn, row.id)
    except OAuthError as exc:
        return _oauth_error(exc)
    return json_response({})


async def metadata(request: web.Request) -> web.Response:
    base = request.app[HUB_KEY].cfg.base_url
    return json_response({
        "issuer": base + "/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": ALL_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    })
