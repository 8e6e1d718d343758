"""Message text: plain text to HTML, HTML to plain text, and sanitising.

Remote HTML is never trusted: everything that arrives goes through
:func:`sanitize_html` (nh3, the Python binding of the ammonia sanitiser)
before it is stored, and is shown only as sanitised HTML or as plain text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = {
    "p", "br", "a", "span", "strong", "b", "em", "i", "u", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title", "lang", "translate"}, "ol": {"start", "reversed"}, "li": {"value"}}
# Classes with a meaning in fediverse HTML (Mastodon's mention and link markup).
ALLOWED_CLASSES = {
    "a": {"mention", "hashtag", "u-url", "status-link", "unhandled-link"},
    "span": {"h-card", "invisible", "ellipsis", "quote-inline"},
    "p": {"quote-inline"},
}

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@/])@([a-z0-9_][a-z0-9_.-]*)(?:@([a-z0-9.-]+(?::\d+)?))?", re.IGNORECASE)
# A hashtag: letters, digits and underscores, at least one of them not a digit (as Mastodon has it)
_HASHTAG = re.compile(r"(?<![\w/#&])#(\w{0,99}[^\W\d]\w{0,99})(?!\w)")


def tag_name(value: str) -> str:
    """A hashtag as it is kept and looked up: without its ``#``, lower case, at most 100 characters."""
    return value.strip().lstrip("#").lower()[:100]


def find_hashtags(text: str) -> list[str]:
    """``#tags`` in the text, as :func:`tag_name` keeps them, in order, without repeats (at most 20)."""
    return list(dict.fromkeys(tag_name(m.group(1)) for m in _HASHTAG.finditer(text or "")))[:20]


def sanitize_html(value: str | None) -> str:
    if not value:
        return ""
    return nh3.clean(
        value,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes={"http", "https", "mailto", "xmpp", "matrix"},
        link_rel="nofollow noopener noreferrer",
    )


def find_mentions(text: str) -> list[tuple[str, str | None]]:
    """``@user`` and ``@user@host`` handles in the text, in order, without repeats."""
    seen: dict[tuple[str, str | None], None] = {}
    for m in _MENTION.finditer(text):
        user, host = m.group(1).rstrip(".-"), m.group(2)
        if host:
            host = host.rstrip(".-").lower()
        seen[(user.lower(), host)] = None
    return list(seen)


def plain_to_html(text: str, mentions: Mapping[str, str] | None = None, tags_base: str | None = None) -> str:
    """Turn plain text into the HTML fediverse clients expect.

    Paragraphs on blank lines, ``<br>`` on single newlines, links for URLs,
    and an h-card link for each ``@handle`` found in ``mentions`` (a map of
    lower-case ``user@host`` or ``user`` to the actor's profile URL); with
    ``tags_base``, a link to ``{tags_base}/{tag}`` for each ``#tag``.
    """
    mentions = {k.lower(): v for k, v in (mentions or {}).items()}
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    out = []
    for para in paragraphs:
        lines = [_inline(line, mentions, tags_base) for line in para.strip().split("\n")]
        out.append("<p>" + "<br>".join(lines) + "</p>")
    return "".join(out)


def _inline(line: str, mentions: Mapping[str, str], tags_base: str | None = None) -> str:
    pieces: list[str] = []
    pos = 0
    tokens = sorted(
        [(m.start(), m.end(), "url", m) for m in _URL.finditer(line)]
        + [(m.start(), m.end(), "mention", m) for m in _MENTION.finditer(line)]
        + ([(m.start(), m.end(), "tag", m) for m in _HASHTAG.finditer(line)] if tags_base else []),
        key=lambda t: t[0],
    )
    for start, end, kind, m in tokens:
        if start < pos:
            continue
        if kind == "tag":
            from urllib.parse import quote

            tag = m.group(1)
            pieces.append(html.escape(line[pos:start]))
            pieces.append(f'<a href="{html.escape(tags_base)}/{quote(tag.lower())}" class="mention hashtag" '
                          f'rel="tag">#<span>{html.escape(tag)}</span></a>')
            pos = end
        elif kind == "url":
            url = m.group(0)
            pieces.append(html.escape(line[pos:start]))
            pieces.append(f'<a href="{html.escape(url)}" rel="nofollow noopener noreferrer">{html.escape(url)}</a>')
            pos = end
        else:
            user, host = m.group(1), m.group(2)
            key = f"{user}@{host}".lower() if host else user.lower()
            href = mentions.get(key)
            if href is None:
                continue
            pieces.append(html.escape(line[pos:start]))
            # The handle stays as written: "@user@host" keeps the host visible
            # in every client's plain-text view of the message.
            suffix = f"@{html.escape(host)}" if host else ""
            pieces.append(
                f'<span class="h-card"><a href="{html.escape(href)}" class="u-url mention">'
                f"@<span>{html.escape(user)}</span>{suffix}</a></span>"
            )
            pos = end
    pieces.append(html.escape(line[pos:]))
    return "".join(pieces)


class _TextExtractor(HTMLParser):
    BLOCK = {"p", "div", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")

    def handle_endtag(self, tag):
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(value: str | None) -> str:
    if not value:
        return ""
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
