"""Audience of a message: the four visibilities and the URIs they address.

The store keeps each message's ``to`` and ``cc`` as URIs, the way
ActivityStreams addresses; this module is the one place that maps a
visibility to addressing and back (following Mastodon's rules, which every
fediverse server reads: Public in ``to`` = public, Public in ``cc`` =
unlisted, the author's followers collection = followers-only, otherwise
direct).
"""

from __future__ import annotations

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = frozenset({PUBLIC, "as:Public", "Public"})
VISIBILITIES = ("public", "unlisted", "followers", "direct")


def is_public(uri: str) -> bool:
    return uri in PUBLIC_ALIASES


def audience(visibility: str, *, followers_uri: str, mentions: list[str]) -> tuple[list[str], list[str]]:
    """``(to, cc)`` for a new message."""
    mentions = list(dict.fromkeys(mentions))
    if visibility == "public":
        return [PUBLIC], [followers_uri, *mentions]
    if visibility == "unlisted":
        return [followers_uri], [PUBLIC, *mentions]
    if visibility == "followers":
        return [followers_uri], mentions
    if visibility == "direct":
        return mentions, []
    raise ValueError(f"unknown visibility {visibility!r}")


def visibility_of(to: list[str], cc: list[str], *, followers_uri: str | None) -> str:
    if any(is_public(u) for u in to):
        return "public"
    if any(is_public(u) for u in cc):
        return "unlisted"
    if followers_uri and (followers_uri in to or followers_uri in cc):
        return "followers"
    return "direct"


def visible_to_anyone(visibility: str) -> bool:
    return visibility in ("public", "unlisted")
