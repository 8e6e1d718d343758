"""HTTP signatures, both generations, and body digests. Pure functions, no I/O.

* draft-cavage-http-signatures-12 (``Signature: keyId=...,headers=...``), what
  every fediverse server sends and accepts today.
* RFC 9421 HTTP Message Signatures (``Signature-Input`` + ``Signature``),
  which Mastodon 4.5+ and Fedify verify and send.
* ``Digest`` (RFC 3230) and ``Content-Digest`` (RFC 9530) over the body.

Parsing a signature yields a :class:`ParsedSignature` with the exact bytes
that were signed; finding the key and deciding whether the signer may speak
for an activity is the caller's business (``hub.federation.verify``).
Every failure raises :class:`hub.errors.Unauthorized` with a short reason
suitable for the 401 body.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import functools
import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from hub import crypto
from hub.errors import Unauthorized

Headers = Mapping[str, str] | CIMultiDict | CIMultiDictProxy

# --- digests -----------------------------------------------------------------

_DIGEST_ALGOS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def digest_header(body: bytes) -> str:
    """``Digest`` header value (RFC 3230): ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def content_digest_header(body: bytes) -> str:
    """``Content-Digest`` header value (RFC 9530): ``sha-256=:<base64>:``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def check_digest(headers: Headers, body: bytes) -> set[str]:
    """Verify ``Digest`` and ``Content-Digest`` against the body.

    Returns the names of the headers that were checked and matched. Raises
    Unauthorized when neither is present, when one is malformed, or when any
    supported hash listed does not match (a digest we can check must be right).
    """
    headers = _ci(headers)
    checked: set[str] = set()
    for raw in headers.getall("Digest", []):
        for part in raw.split(","):
            algo, sep, value = part.strip().partition("=")
            fn = _DIGEST_ALGOS.get(algo.lower())
            if not sep or fn is None:
                continue
            if not _b64_equal(value, fn(body).digest()):
                raise Unauthorized("Digest does not match the body")
            checked.add("digest")
    for raw in headers.getall("Content-Digest", []):
        for part in raw.split(","):
            algo, sep, value = part.strip().partition("=")
            fn = _DIGEST_ALGOS.get(algo.strip().lower())
            if not sep or fn is None:
                continue
            value = value.strip()
            if len(value) < 2 or value[0] != ":" or value[-1] != ":":
                raise Unauthorized("malformed Content-Digest")
            if not _b64_equal(value[1:-1], fn(body).digest()):
                raise Unauthorized("Content-Digest does not match the body")
            checked.add("content-digest")
    if not checked:
        raise Unauthorized("missing Digest or Content-Digest header")
    return checked


def _b64_equal(value: str, expected: bytes) -> bool:
    try:
        return base64.b64decode(value.strip(), validate=True) == expected
    except ValueError:
        return False


# --- parsed signatures -------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedSignature:
    scheme: str  # "cavage" | "rfc9421"
    key_id: str
    algorithm: str | None
    covered: tuple[str, ...]
    signature: bytes
    base: bytes
    created: int | None = None
    expires: int | None = None
    alt_bases: tuple[bytes, ...] = ()
    """Other forms a correct sender may have signed (see ``verify_parsed``)."""

    def covers(self, name: str) -> bool:
        return name in self.covered


def _ci(headers: Headers) -> CIMultiDict:
    if isinstance(headers, (CIMultiDict, CIMultiDictProxy)):
        return headers  # type: ignore[return-value]
    return CIMultiDict(headers)


def _header_value(headers: CIMultiDict, name: str) -> str:
    values = headers.getall(name, [])
    if not values:
        raise Unauthorized(f"signed header {name!r} is missing")
    return ", ".join(v.strip() for v in values)


def has_signature(headers: Headers) -> bool:
    headers = _ci(headers)
    return "Signature" in headers or headers.get("Authorization", "").startswith("Signature ")


def parse_signature(
    *, method: str, path_qs: str, target_uri: str, headers: Headers
) -> ParsedSignature:
    """Parse whichever signature the request carries and build its signed bytes.

    ``path_qs`` is the request target as received (path and query);
    ``target_uri`` the full URI for RFC 9421's ``@target-uri``.
    """
    headers = _ci(headers)
    if "Signature-Input" in headers:
        return _parse_rfc9421(method=method, target_uri=target_uri, headers=headers)
    raw = headers.get("Signature")
    if raw is None:
        auth = headers.get("Authorization", "")
        if auth.startswith("Signature "):
            raw = auth[len("Signature ") :]
    if raw is None:
        raise Unauthorized("request is not signed")
    return _parse_cavage(raw, method=method, path_qs=path_qs, headers=headers)


def verify_parsed(parsed: ParsedSignature, key: crypto.PublicKey) -> bool:
    """Check the signature bytes against ``key``; True when they verify."""
    kind = crypto.key_kind(key)
    algo = (parsed.algorithm or "").lower()
    if kind == "ed25519":
        if algo not in ("", "hs2019", "ed25519"):
            return False
        hash_name = "sha256"
    else:
        if algo in ("", "hs2019", "rsa-sha256", "rsa-v1_5-sha256"):
            hash_name = "sha256"
        elif algo in ("rsa-sha512",):
            hash_name = "sha512"
        else:
            return False
    # alt_bases: the request target without its query (Misskey and Fedify
    # sign the path only; Mastodon and Akkoma did before 4.3 / 2026.08), or
    # an RFC 9421 parameter line as the sender wrote it when it is not in
    # canonical form.
    return any(
        crypto.verify(key, parsed.signature, base, hash_name=hash_name)
        for base in (parsed.base, *parsed.alt_bases)
    )


SUPPORTED_ALGORITHMS = ("rsa-sha256", "hs2019", "rsa-sha512", "rsa-v1_5-sha256", "ed25519")


def check_freshness(
    parsed: ParsedSignature,
    headers: Headers,
    *,
    now: dt.datetime,
    max_age_s: int,
    max_future_s: int,
) -> None:
    """Refuse a signature whose date is outside the window or that has expired.

    The date comes from a signed ``Date`` header, or ``created`` when the
    signature covers it (cavage ``(created)``, RFC 9421 ``created``).
    """
    headers = _ci(headers)
    ts: float | None = None
    if parsed.covers("date"):
        ts = _http_date(_header_value(headers, "date"))
    elif parsed.created is not None and (parsed.scheme == "rfc9421" or parsed.covers("(created)")):
        ts = float(parsed.created)
    if ts is None:
        raise Unauthorized("the signature must cover the Date header or a creation time")
    age = now.timestamp() - ts
    if age > max_age_s:
        raise Unauthorized("signature date is too old")
    if -age > max_future_s:
        raise Unauthorized("signature date is in the future")
    if parsed.expires is not None and parsed.expires < now.timestamp():
        raise Unauthorized("signature has expired")


# A pure memo of a pure function (no state anyone depends on), kept module-wide.
@functools.lru_cache(maxsize=256)
def _http_date(value: str) -> float:
    """Seconds since the epoch of an HTTP date (cached: a busy peer sends
    many requests with the same Date)."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise Unauthorized("malformed Date header") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def check_coverage(parsed: ParsedSignature, *, method: str) -> None:
    """The minimum a signature must cover to bind it to this request, this
    server and (on POST) this body. Every server we know signs the host
    (Mastodon, GoToSocial, Misskey, Akkoma, Fedify), so a request signed for
    another server cannot be replayed to us."""
    c = parsed.covers
    if parsed.scheme == "cavage":
        if not c("(request-target)"):
            raise Unauthorized("the signature must cover (request-target)")
        if not c("host"):
            raise Unauthorized("the signature must cover the Host header")
        digest_covered = c("digest") or c("content-digest")
    else:
        if not c("@method"):
            raise Unauthorized("the signature must cover @method")
        if not (c("@target-uri") or (c("@authority") or c("host")) and (c("@request-target") or c("@path"))):
            raise Unauthorized("the signature must cover @target-uri")
        digest_covered = c("content-digest") or c("digest")
    if method.upper() == "POST" and not digest_covered:
        raise Unauthorized("the signature must cover the body digest on POST")


def check_signed_digest(parsed: ParsedSignature, verified: set[str]) -> None:
    """The digest the signature covers must be one that was checked against the body."""
    if not any(parsed.covers(name) for name in verified):
        raise Unauthorized("the signature does not cover a digest that matches the body")


# --- draft-cavage ------------------------------------------------------------

# The quoted-string part is "unrolled" ([^"\\]*(?:\\.[^"\\]*)*): three times faster on a
# 344-character base64 signature than the plain alternation.
_CAVAGE_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^,\s"]*))\s*(?:,|$)')


def _parse_cavage(raw: str, *, method: str, path_qs: str, headers: CIMultiDict) -> ParsedSignature:
    params: dict[str, str] = {}
    pos = 0
    raw = raw.strip()
    while pos < len(raw):
        m = _CAVAGE_PARAM.match(raw, pos)
        if not m or m.end() == pos:
            raise Unauthorized("malformed Signature header")
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1)] = value.replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    key_id = params.get("keyId")
    sig_b64 = params.get("signature")
    if not key_id or not sig_b64:
        raise Unauthorized("Signature header lacks keyId or signature")
    algorithm = params.get("algorithm") or None
    if algorithm is not None and algorithm.lower() not in SUPPORTED_ALGORITHMS:
        raise Unauthorized(f"unsupported signature algorithm {algorithm!r}")
    covered = tuple((params.get("headers") or "date").lower().split())
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        raise Unauthorized("signature is not valid base64") from None
    created = _int_or_none(params.get("created"), "created")
    expires = _int_or_none(params.get("expires"), "expires")
    lines = []
    target_line = None
    for name in covered:
        if name == "(request-target)":
            target_line = len(lines)
            lines.append(f"(request-target): {method.lower()} {path_qs}")
        elif name == "(created)":
            if created is None:
                raise Unauthorized("(created) is signed but missing")
            lines.append(f"(created): {created}")
        elif name == "(expires)":
            if expires is None:
                raise Unauthorized("(expires) is signed but missing")
            lines.append(f"(expires): {expires}")
        else:
            lines.append(f"{name}: {_header_value(headers, name)}")
    alt_bases: tuple[bytes, ...] = ()
    if target_line is not None and "?" in path_qs:
        no_query = list(lines)
        no_query[target_line] = f"(request-target): {method.lower()} {path_qs.split('?', 1)[0]}"
        alt_bases = ("\n".join(no_query).encode(),)
    return ParsedSignature(
        scheme="cavage",
        key_id=key_id,
        algorithm=algorithm,
        covered=covered,
        signature=signature,
        base="\n".join(lines).encode(),
        created=created,
        expires=expires,
        alt_bases=alt_bases,
    )


_TIMESTAMP = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,9})?$")


def _int_or_none(value: str | None, name: str) -> int | None:
    """``created``/``expires``: seconds, at most 15 digits (RFC 8941's integers)."""
    if value is None or value == "":
        return None
    if not _TIMESTAMP.match(value):
        raise Unauthorized(f"malformed {name} parameter")
    return int(float(value))


def _request_target(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port and parts.port != default:
        host = f"{host}:{parts.port}"
    path_qs = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, path_qs


def sign_cavage(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: crypto.PrivateKey,
    date: str | None = None,
    digest: str | None = None,
) -> dict[str, str]:
    """Headers that sign a request the draft-cavage way.

    Covers ``(request-target) host date`` plus ``digest`` when there is a
    body, with ``algorithm="rsa-sha256"`` present (older Mastodon and
    Pleroma require the parameter). ``url`` must already be in the exact form
    that goes on the wire. ``digest`` may carry the body's ``Digest`` value,
    computed once for a fan-out of the same body.
    """
    host, path_qs = _request_target(url)
    headers = {"Host": host, "Date": date or email.utils.formatdate(usegmt=True)}
    covered = ["(request-target)", "host", "date"]
    lines = [f"(request-target): {method.lower()} {path_qs}", f"host: {host}", f"date: {headers['Date']}"]
    if body is not None:
        headers["Digest"] = digest or digest_header(body)
        covered.append("digest")
        lines.append(f"digest: {headers['Digest']}")
    algo = "ed25519" if crypto.key_kind(private_key) == "ed25519" else "rsa-sha256"
    sig = base64.b64encode(crypto.sign(private_key, "\n".join(lines).encode())).decode()
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="{algo}",headers="{" ".join(covered)}",signature="{sig}"'
    )
    return headers


# --- RFC 9421 ----------------------------------------------------------------
# A small parser for the parts of RFC 8941 structured fields that signatures use.


class _SFParser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def key(self) -> str:
        m = re.compile(r"[a-z*][a-z0-9_.*-]*").match(self.s, self.i)
        if not m:
            raise ValueError("expected a key")
        self.i = m.end()
        return m.group(0)

    def bare_item(self):
        c = self.peek()
        if c == '"':
            self.i += 1
            out = []
            while self.i < len(self.s):
                ch = self.s[self.i]
                self.i += 1
                if ch == "\\":
                    out.append(self.s[self.i])
                    self.i += 1
                elif ch == '"':
                    return "".join(out)
                else:
                    out.append(ch)
            raise ValueError("unterminated string")
        if c == ":":
            end = self.s.index(":", self.i + 1)
            value = base64.b64decode(self.s[self.i + 1 : end], validate=True)
            self.i = end + 1
            return value
        if c == "?":
            self.i += 2
            return self.s[self.i - 1] == "1"
        m = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?").match(self.s, self.i)
        if m:
            self.i = m.end()
            if self.peek().isdigit():
                raise ValueError("number too long")  # RFC 8941: at most 15 digits
            return float(m.group(0)) if m.group(1) else int(m.group(0))
        m = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]*").match(self.s, self.i)
        if m:
            self.i = m.end()
            return _Token(m.group(0))
        raise ValueError("expected an item")

    def params(self) -> dict:
        out = {}
        while self.peek() == ";":
            self.i += 1
            self.ws()
            k = self.key()
            v = True
            if self.peek() == "=":
                self.i += 1
                v = self.bare_item()
            out[k] = v
        return out

    def member(self):
        if self.peek() == "(":
            self.i += 1
            items = []
            while True:
                self.ws()
                if self.peek() == ")":
                    self.i += 1
                    break
                items.append((self.bare_item(), self.params()))
                if self.peek() not in (" ", ")"):
                    raise ValueError("malformed inner list")
            return items, self.params()
        return self.bare_item(), self.params()

    def dictionary(self) -> list[tuple[str, object, dict, str]]:
        out = []
        self.ws()
        while self.i < len(self.s):
            k = self.key()
            if self.peek() != "=":
                raise ValueError("expected '='")
            self.i += 1
            start = self.i
            value, params = self.member()
            out.append((k, value, params, self.s[start : self.i]))
            self.ws()
            if self.i >= len(self.s):
                break
            if self.peek() != ",":
                raise ValueError("expected ','")
            self.i += 1
            self.ws()
        return out


class _Token(str):
    pass


def _sf_item(value) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, _Token):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    return str(value)


def _sf_params(params: dict) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_sf_item(v)}" for k, v in params.items())


def _rfc9421_component(name: str, *, method: str, target_uri: str, headers: CIMultiDict) -> str:
    parts = urlsplit(target_uri)
    if name == "@method":
        return method.upper()
    if name == "@target-uri":
        return target_uri
    if name == "@authority":
        return parts.netloc.lower()
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@request-target":
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return f"?{parts.query}"
    if name.startswith("@"):
        raise Unauthorized(f"unsupported signature component {name!r}")
    return _header_value(headers, name)


def _parse_rfc9421(*, method: str, target_uri: str, headers: CIMultiDict) -> ParsedSignature:
    try:
        inputs = _SFParser(", ".join(headers.getall("Signature-Input"))).dictionary()
        sigs = {k: v for k, v, _p, _r in _SFParser(", ".join(headers.getall("Signature", []))).dictionary()}
    except (ValueError, IndexError):
        raise Unauthorized("malformed Signature-Input or Signature header") from None
    if not inputs:
        raise Unauthorized("empty Signature-Input header")
    # Verify the first signature we can use; senders in the wild send one.
    label, items, params, raw = inputs[0]
    if not isinstance(items, list):
        raise Unauthorized("Signature-Input member is not a list")
    signature = sigs.get(label)
    if not isinstance(signature, bytes):
        raise Unauthorized(f"no signature for label {label!r}")
    covered = []
    lines = []
    for item, item_params in items:
        if not isinstance(item, str) or isinstance(item, _Token):
            raise Unauthorized("malformed component identifier")
        if item_params:
            raise Unauthorized(f"unsupported component parameters on {item!r}")
        name = item.lower()
        covered.append(name)
        value = _rfc9421_component(name, method=method, target_uri=target_uri, headers=headers)
        lines.append(f'"{name}": {value}')
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise Unauthorized("Signature-Input lacks keyid")
    alg = params.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg.lower() not in SUPPORTED_ALGORITHMS):
        raise Unauthorized(f"unsupported signature algorithm {alg!r}")
    created = params.get("created")
    expires = params.get("expires")
    if created is not None and not isinstance(created, int):
        raise Unauthorized("malformed created parameter")
    if expires is not None and not isinstance(expires, int):
        raise Unauthorized("malformed expires parameter")
    canonical = "(" + " ".join(_sf_item(i) for i, _ in items) + ")" + _sf_params(params)
    base = "\n".join([*lines, f'"@signature-params": {canonical}']).encode()
    alt: tuple[bytes, ...] = ()
    if raw != canonical:
        alt = ("\n".join([*lines, f'"@signature-params": {raw}']).encode(),)
    return ParsedSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        covered=tuple(covered),
        signature=signature,
        base=base,
        created=created,
        expires=expires,
        alt_bases=alt,
    )


def sign_rfc9421(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: crypto.PrivateKey,
    created: int | None = None,
    label: str = "sig1",
    digest: str | None = None,
) -> dict[str, str]:
    """Headers that sign a request per RFC 9421.

    Covers ``@method``, ``@target-uri`` and, with a body, ``content-digest``:
    the minimum Mastodon 4.5 requires; ``created`` gives the freshness.
    ``digest`` may carry the body's ``Content-Digest`` value, computed once.
    """
    import time

    created = int(time.time()) if created is None else created
    headers: dict[str, str] = {}
    covered = ["@method", "@target-uri"]
    lines = [f'"@method": {method.upper()}', f'"@target-uri": {url}']
    if body is not None:
        headers["Content-Digest"] = digest or content_digest_header(body)
        covered.append("content-digest")
        lines.append(f'"content-digest": {headers["Content-Digest"]}')
    alg = "ed25519" if crypto.key_kind(private_key) == "ed25519" else "rsa-v1_5-sha256"
    params = f';created={created};keyid={_sf_item(key_id)};alg="{alg}"'
    inner = "(" + " ".join(f'"{c}"' for c in covered) + ")"
    lines.append(f'"@signature-params": {inner}{params}')
    sig = crypto.sign(private_key, "\n".join(lines).encode())
    headers["Signature-Input"] = f"{label}={inner}{params}"
    headers["Signature"] = f"{label}=:{base64.b64encode(sig).decode()}:"
    return headers
