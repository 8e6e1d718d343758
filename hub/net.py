"""Outbound HTTP: one aiohttp session, bounded, guarded, signed when asked.

* SSRF guard: outside development mode only ``https`` URLs are fetched, and
  a host that is, or resolves to, a private, loopback, link-local or other
  non-global address is refused. The check happens in the resolver the
  connection actually uses (so DNS rebinding cannot slip past it) and again
  for literal IP hosts, which aiohttp never resolves. Redirects are
  followed by hand so each hop is checked and re-signed.
* Bodies are read up to a limit; more is an error, not a truncation.
* Signing is a callback, called at send time for each hop and each try.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from multidict import CIMultiDictProxy

from hub.config import Config
from hub.errors import BlockedAddress, FetchError

log = logging.getLogger(__name__)

AP_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AP_CONTENT_TYPE = "application/activity+json"
JSON_TYPES = ("application/activity+json", "application/ld+json", "application/json", "application/jrd+json")
MAX_REDIRECTS = 5

Signer = Callable[[str, str, bytes | None], dict[str, str]]
"""``signer(method, url, body) -> headers`` producing a fresh signature."""


class _Blocked(OSError):
    pass


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, if it embeds one (mapped,
    NAT64, 6to4, Teredo, IPv4-compatible): such an address reaches that IPv4
    host, so it must pass the same check."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if any(addr in net for net in _NAT64) or addr in _V4_COMPATIBLE:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def address_allowed(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None and not (embedded.is_global and not embedded.is_multicast):
            return False
    return addr.is_global and not addr.is_multicast


class GuardedResolver(AbstractResolver):
    """Resolves names, then drops every address that is not globally routable."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        infos = await self._inner.resolve(host, port, family)
        allowed = [i for i in infos if address_allowed(i["host"])]
        if not allowed:
            raise _Blocked(f"{host} resolves only to private or reserved addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@dataclasses.dataclass(slots=True)
class Response:
    status: int
    headers: CIMultiDictProxy
    body: bytes
    url: str

    def json(self) -> Any:
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype and not (ctype in JSON_TYPES or ctype.endswith("+json")):
            raise FetchError(
                f"{self.url} is not a JSON document", detail=f"content type {ctype}", permanent=True
            )
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise FetchError(f"{self.url} returned invalid JSON", permanent=True) from None


def retry_after_s(headers) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    def __init__(self, cfg: Config, *, is_blocked: Callable[[str], bool] | None = None):
        self.cfg = cfg
        self.is_blocked = is_blocked
        """``(host or host:port) -> bool``: domains the administrators blocked."""
        self._session: aiohttp.ClientSession | None = None
        self._checked: dict[str, yarl.URL] = {}

    def _make_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=None if self.cfg.dev else GuardedResolver(),
            limit=max(100, self.cfg.worker_concurrency * 2),
            limit_per_host=self.cfg.per_host_concurrency * 2,
            ttl_dns_cache=300,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.cfg.http_timeout_s, connect=min(10.0, self.cfg.http_timeout_s)),
            headers={"User-Agent": self.cfg.user_agent},
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._make_session()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def check_url(self, url: str) -> yarl.URL:
        """Refuse what must never be fetched; return the URL as it goes on the wire.

        Verdicts on allowed URLs are remembered (a fan-out sends to the same
        inboxes again and again); refusals are not, so they stay cheap to log.
        """
        cached = self._checked.get(url)
        if cached is not None:
            self._check_blocked(cached)
            return cached
        u = self._check_url(url)
        self._check_blocked(u)
        if len(self._checked) >= 20_000:
            self._checked.clear()
        self._checked[url] = u
        return u

    def _check_blocked(self, u: yarl.URL) -> None:
        if self.is_blocked is not None and self.is_blocked(f"{u.host}:{u.port}" if u.explicit_port else u.host):
            raise FetchError(f"{u.host} is blocked by this server's administrators", permanent=True)

    def _check_url(self, url: str) -> yarl.URL:
        try:
            u = yarl.URL(url)
        except (ValueError, TypeError):
            raise FetchError(f"invalid URL {url!r}", permanent=True) from None
        if u.scheme not in ("http", "https") or not u.host:
            raise FetchError(f"invalid URL {url!r}", permanent=True)
        if u.user or u.password:
            raise FetchError("URLs with credentials are not fetched", permanent=True)
        if self.cfg.dev:
            return u
        if u.scheme != "https":
            raise BlockedAddress(f"refusing plain http URL {url} (https only outside development mode)")
        host = u.host.strip("[]")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            literal = True
        except ValueError:
            literal = False
        if literal and not address_allowed(host):
            raise BlockedAddress(f"refusing private or reserved address {host}")
        if host == "localhost" or host.endswith(".localhost") or host.endswith(".local") or "." not in host:
            raise BlockedAddress(f"refusing local host name {host}")
        return u

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        signer: Signer | None = None,
        max_bytes: int | None = None,
        follow_redirects: bool = True,
    ) -> Response:
        """Send one request (following GET redirects by hand); never raises on HTTP status."""
        max_bytes = max_bytes or self.cfg.max_fetch_body
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            u = self.check_url(current)
            wire_url = str(u)
            req_headers = dict(headers or {})
            if signer is not None:
                req_headers.update(signer(method, wire_url, body))
            try:
                async with self.session.request(
                    method, u, data=body, headers=req_headers, allow_redirects=False
                ) as resp:
                    if follow_redirects and method == "GET" and resp.status in (301, 302, 303, 307, 308):
                        location = resp.headers.get("Location")
                        if not location:
                            raise FetchError(f"{current} redirected nowhere", status_code=resp.status, permanent=True)
                        current = str(u.join(yarl.URL(location)))
                        continue
                    length = resp.content_length
                    if length is not None and length > max_bytes:
                        raise FetchError(f"{current} is too large ({length} bytes)", permanent=True)
                    data = await resp.content.read(max_bytes + 1)
                    if len(data) > max_bytes:
                        raise FetchError(f"{current} is larger than {max_bytes} bytes", permanent=True)
                    return Response(resp.status, resp.headers, data, str(resp.url))
            except _Blocked as exc:
                raise BlockedAddress(str(exc)) from None
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, _Blocked):
                    raise BlockedAddress(str(exc.os_error)) from None
                raise FetchError(f"cannot connect to {u.host}", detail=str(exc)) from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise FetchError(f"request to {u.host} failed", detail=f"{type(exc).__name__}: {exc}") from None
        raise FetchError(f"too many redirects from {url}", permanent=True)

    async def get_json(self, url: str, *, signer: Signer | None = None, accept: str = AP_ACCEPT) -> tuple[Any, str]:
        """GET a JSON document; returns ``(document, final_url)``.

        Raises FetchError: permanent for 4xx other than 408/429, transient otherwise.
        """
        resp = await self.request("GET", url, headers={"Accept": accept}, signer=signer)
        if resp.status != 200:
            raise status_error(resp, url)
        return resp.json(), resp.url


def status_error(resp: Response, url: str) -> FetchError:
    status = resp.status
    transient = status in (408, 429) or status >= 500
    return FetchError(
        f"{url} answered {status}",
        status_code=status,
        permanent=not transient,
        retry_after_s=retry_after_s(resp.headers) if status in (429, 503) else None,
    )
