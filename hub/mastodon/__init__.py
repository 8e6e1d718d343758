"""The Mastodon-compatible client API, so people use Roundtable from the
fediverse apps they already have (toot, Tusky, Ivory, Elk, Phanpy...).

Routes answer with and without a trailing slash; ``/api/*``, ``/oauth/*``,
``/.well-known/*`` and ``/nodeinfo/*`` answer CORS preflights; errors under
``/api/v1``, ``/api/v2`` and ``/oauth`` are ``{"error": "..."}`` with the
right status, as Mastodon sends them.
"""

from __future__ import annotations

import logging

from aiohttp import web

from hub.context import Hub
from hub.errors import HubError
from hub.mastodon import api, oauth, push, streaming
from hub.mastodon.core import HUB_KEY, ApiError, json_response

log = logging.getLogger(__name__)
CORS_PREFIXES = ("/api/", "/oauth/", "/.well-known/", "/nodeinfo/")
JSON_PREFIXES = ("/api/v1/", "/api/v2/", "/oauth/token", "/oauth/revoke")
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, Accept",
    "Access-Control-Expose-Headers": "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id, "
                                     "Idempotency-Key",
    "Access-Control-Max-Age": "7200",
}

E = api.empty_list

ROUTES = [
    # OAuth and apps
    ("POST", "/api/v1/apps", oauth.create_app),
    ("GET", "/api/v1/apps/verify_credentials", oauth.verify_app),
    ("GET", "/oauth/authorize", oauth.authorize_page),
    ("POST", "/oauth/authorize", oauth.authorize_post),
    ("POST", "/oauth/token", oauth.token),
    ("POST", "/oauth/revoke", oauth.revoke),
    ("GET", "/.well-known/oauth-authorization-server", oauth.metadata),
    # instance
    ("GET", "/api/v1/instance", api.instance_v1),
    ("GET", "/api/v2/instance", api.instance_v2),
    ("GET", "/api/v1/instance/{what:peers|activity|rules|domain_blocks|extended_description|translation_languages}",
     api.instance_extras),
    ("GET", "/api/v1/custom_emojis", E(auth=False)),
    ("GET", "/api/v1/directory", E(auth=False)),
    ("GET", "/api/v1/trends", E(auth=False)),
    ("GET", "/api/v1/trends/{kind:tags|statuses|links}", E(auth=False)),
    ("GET", "/api/v1/announcements", E()),
    # accounts
    ("POST", "/api/v1/accounts", api.register),
    ("GET", "/api/v1/accounts", api.many_accounts),
    ("GET", "/api/v1/accounts/verify_credentials", api.verify_credentials),
    ("PATCH", "/api/v1/accounts/update_credentials", api.update_credentials),
    ("GET", "/api/v1/accounts/relationships", api.relationships),
    ("GET", "/api/v1/accounts/lookup", api.lookup_account),
    ("GET", "/api/v1/accounts/search", api.search_accounts),
    ("GET", "/api/v1/accounts/familiar_followers", E("read:follows")),
    ("GET", "/api/v1/accounts/{id}", api.get_account),
    ("GET", "/api/v1/accounts/{id}/statuses", api.account_statuses),
    ("GET", "/api/v1/accounts/{id}/{which:followers|following}", api.follow_list),
    ("GET", "/api/v1/accounts/{id}/featured_tags", E(auth=False)),
    ("GET", "/api/v1/accounts/{id}/lists", E("read:lists")),
    ("GET", "/api/v1/accounts/{id}/identity_proofs", E(auth=False)),
    ("POST", "/api/v1/accounts/{id}/{action}", api.account_action),
    ("GET", "/api/v1/follow_requests", api.follow_requests),
    ("POST", "/api/v1/follow_requests/{id}/{answer:authorize|reject}", api.answer_follow_request),
    ("GET", "/api/v1/blocks", api.blocks_list),
    ("GET", "/api/v1/mutes", api.mutes_list),
    ("GET", "/api/v1/domain_blocks", E("read:blocks")),
    ("GET", "/api/v1/endorsements", E("read:accounts")),
    ("GET", "/api/v1/featured_tags", E("read:accounts")),
    ("GET", "/api/v1/followed_tags", api.followed_tags),
    ("GET", "/api/v1/suggestions", E("read")),
    ("GET", "/api/v2/suggestions", E("read")),
    ("GET", "/api/v1/preferences", api.preferences),
    # statuses and media
    ("POST", "/api/v1/statuses", api.create_status),
    ("GET", "/api/v1/statuses", api.many_statuses),
    ("GET", "/api/v1/statuses/{id}", api.get_status),
    ("PUT", "/api/v1/statuses/{id}", api.edit_status),
    ("DELETE", "/api/v1/statuses/{id}", api.delete_status),
    ("GET", "/api/v1/statuses/{id}/context", api.status_context),
    ("GET", "/api/v1/statuses/{id}/source", api.status_source),
    ("GET", "/api/v1/statuses/{id}/history", api.status_history),
    ("GET", "/api/v1/statuses/{id}/{which:favourited_by|reblogged_by}", api.status_reactors),
    ("POST", "/api/v1/statuses/{id}/{action}", api.status_action),
    ("GET", "/api/v1/scheduled_statuses", E("read:statuses")),
    ("POST", "/api/v2/media", api.upload_media),
    ("POST", "/api/v1/media", api.upload_media),
    ("GET", "/api/v1/media/{id}", api.get_media),
    ("PUT", "/api/v1/media/{id}", api.update_media),
    # timelines and the rest of what clients read
    ("GET", "/api/v1/timelines/home", api.home_timeline),
    ("GET", "/api/v1/timelines/public", api.public_timeline),
    ("GET", "/api/v1/timelines/tag/{tag}", api.public_timeline),
    ("GET", "/api/v1/timelines/list/{id}", api.unknown_list_item),
    ("GET", "/api/v1/timelines/direct", E("read:statuses")),
    ("GET", "/api/v1/conversations", api.list_conversations),
    ("DELETE", "/api/v1/conversations/{id}", api.delete_conversation),
    ("POST", "/api/v1/conversations/{id}/read", api.read_conversation),
    ("GET", "/api/v1/notifications", api.list_notifications),
    ("GET", "/api/v1/notifications/unread_count", api.unread_notifications),
    ("GET", "/api/v1/notifications/policy", api.notifications_policy),
    ("GET", "/api/v1/notifications/requests", E("read:notifications")),
    ("POST", "/api/v1/notifications/clear", api.clear_notifications),
    ("POST", "/api/v1/notifications/dismiss", api.dismiss_notification),
    ("GET", "/api/v1/notifications/{id}", api.get_notification),
    ("POST", "/api/v1/notifications/{id}/dismiss", api.dismiss_notification),
    ("GET", "/api/v2/notifications", api.grouped_notifications),
    ("GET", "/api/v2/notifications/unread_count", api.unread_notifications),
    ("GET", "/api/v2/notifications/policy", api.notifications_policy),
    ("PATCH", "/api/v2/notifications/policy", api.change_policy),
    ("PUT", "/api/v2/notifications/policy", api.change_policy),
    ("PATCH", "/api/v1/notifications/policy", api.change_policy),
    ("GET", "/api/v2/notifications/{key}", api.grouped_notification),
    ("GET", "/api/v2/notifications/{key}/accounts", api.group_accounts),
    ("POST", "/api/v2/notifications/{key}/dismiss", api.dismiss_group),
    ("GET", "/api/v2/search", api.search),
    ("GET", "/api/v1/markers", api.get_markers),
    ("POST", "/api/v1/markers", api.set_markers),
    ("GET", "/api/v1/favourites", api.favourites),
    ("GET", "/api/v1/bookmarks", api.bookmarks_list),
    ("POST", "/api/v1/reports", api.create_report),
    ("POST", "/api/v1/lists", api.not_supported),
    ("POST", "/api/v1/tags/{tag}/{action:follow|unfollow}", api.follow_tag),
    ("GET", "/api/v1/lists", E("read:lists")),
    ("GET", "/api/v1/lists/{id}", api.unknown_list_item),
    ("GET", "/api/v1/filters", E("read:filters")),
    ("GET", "/api/v2/filters", E("read:filters")),
    ("GET", "/api/v1/tags/{tag}", api.tag),
    # streaming and push
    ("GET", "/api/v1/streaming/health", streaming.health),
    ("GET", "/api/v1/streaming", streaming.websocket),
    ("GET", "/api/v1/streaming/{stream:user|user/notification|public|public/local|public/remote|direct|hashtag|"
            "hashtag/local}",
     streaming.sse),
    ("POST", "/api/v1/push/subscription", push.create_subscription),
    ("GET", "/api/v1/push/subscription", push.get_subscription),
    ("PUT", "/api/v1/push/subscription", push.update_subscription),
    ("DELETE", "/api/v1/push/subscription", push.delete_subscription),
]


def _is_api(path: str) -> bool:
    return path.startswith(JSON_PREFIXES) or path in ("/oauth/token/", "/oauth/revoke/")


@web.middleware
async def middleware(request: web.Request, handler):
    path = request.path
    cors = path.startswith(CORS_PREFIXES)
    if cors and request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    try:
        resp = await handler(request)
    except ApiError as exc:
        resp = json_response({"error": exc.message, **{k: v for k, v in exc.extra.items() if k != "error_code"}},
                             status=exc.status)
    except HubError as exc:
        if not _is_api(path):
            raise
        resp = json_response({"error": exc.safe}, status=exc.status)
    except web.HTTPException as exc:
        if not (_is_api(path) and exc.status >= 400):
            if cors and exc.status < 400:
                exc.headers.update({"Access-Control-Allow-Origin": "*"})
            raise
        message = "Record not found" if exc.status == 404 else (exc.text if exc.text and not exc.text.startswith(
            str(exc.status)) else exc.reason or "error")
        resp = json_response({"error": message}, status=exc.status)
    except Exception:
        if not _is_api(path):
            raise
        log.exception("client API request %s %s failed", request.method, path)
        resp = json_response({"error": "Something went wrong on our side; it has been logged"}, status=500)
    if resp.status == 413 and not resp.prepared:
        resp.force_close()  # the rest of an oversized body is not read: this connection cannot be reused
    if cors and not resp.prepared:
        for key, value in CORS_HEADERS.items():
            resp.headers.setdefault(key, value)
    return resp


def setup(app: web.Application, hub: Hub) -> None:
    app[HUB_KEY] = hub
    app.middlewares.append(middleware)
    streaming.setup(app)
    push.setup(app, hub)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)
    app.router.add_get("/media/u/{id}/{name}", api.serve_upload)
    # anything else under the client API: a JSON 404, never an HTML page
    app.router.add_route("*", "/api/v1/{tail:.*}", api.unknown_list_item_public)
    app.router.add_route("*", "/api/v2/{tail:.*}", api.unknown_list_item_public)
