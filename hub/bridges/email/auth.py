"""Is an email's sender who the From header says?

Two sources, either is enough:

* a valid DKIM signature (dkimpy) whose signing domain is aligned with the
  From domain (the same domain, or a parent of it, as DMARC's relaxed
  alignment);
* an ``Authentication-Results`` header (RFC 8601) added by an upstream MTA
  this hub trusts (``trusted_authserv_ids``): ``dmarc=pass``, an aligned
  ``dkim=pass``, or an aligned ``spf=pass``, read only behind the hub's own
  MTA (LMTP) and above the second ``Received`` line. Headers from any other
  authserv-id, or lower down (they came with the message), are ignored,
  since anyone can write them.

The DNS lookup of DKIM keys is injectable (``dnsfunc``), for tests and for
an operator's own resolver.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

import authres
import dkim

log = logging.getLogger(__name__)

DnsFunc = Callable[..., bytes | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    authenticated: bool
    how: str
    """``dkim``, ``authentication-results`` or why not."""


def aligned(domain: str | None, from_domain: str) -> bool:
    if not domain:
        return False
    d = domain.lower().strip().rstrip(".")
    f = from_domain.lower().strip().rstrip(".")
    return f == d or f.endswith("." + d)


def _domain_of(value: str | None) -> str | None:
    if not value:
        return None
    return value.rsplit("@", 1)[-1].strip("<> ").lower() or None


def results_from_our_side(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The ``Authentication-Results`` headers above the second ``Received``.

    Read only when the hub sits behind its own MTA (LMTP): where anyone can
    connect to the listener, anyone can write these headers, so only DKIM
    counts. The MTA's milters (OpenDKIM, OpenDMARC, rspamd) write them on top
    or just below the MTA's own ``Received`` line; the MTA must remove
    incoming ones that name its authserv-id (RFC 8601, section 5).
    """
    out = []
    received = 0
    for name, value in headers:
        lowered = name.lower()
        if lowered == "received":
            received += 1
            if received == 2:
                break
        elif lowered == "authentication-results":
            out.append(str(value))
    return out


def from_authentication_results(headers: Iterable[str], from_domain: str, trusted: frozenset[str]) -> Verdict | None:
    """A pass from a trusted ``Authentication-Results`` header, if any."""
    if not trusted:
        return None
    for value in headers:
        try:
            parsed = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + str(value))
        except Exception:  # a malformed header counts for nothing
            continue
        if (parsed.authserv_id or "").lower() not in trusted:
            continue
        for result in parsed.results:
            props = {f"{p.type}.{p.name}".lower(): p.value for p in result.properties}
            method, outcome = (result.method or "").lower(), (result.result or "").lower()
            if outcome != "pass":
                continue
            if method == "dmarc" and aligned(props.get("header.from") or from_domain, from_domain):
                return Verdict(True, f"authentication-results: dmarc=pass ({parsed.authserv_id})")
            if method == "dkim" and aligned(props.get("header.d") or _domain_of(props.get("header.i")), from_domain):
                return Verdict(True, f"authentication-results: dkim=pass ({parsed.authserv_id})")
            if method == "spf" and aligned(_domain_of(props.get("smtp.mailfrom")), from_domain):
                return Verdict(True, f"authentication-results: spf=pass ({parsed.authserv_id})")
    return None


def dkim_verdict(raw: bytes, from_domain: str, dnsfunc: DnsFunc | None) -> Verdict:
    """Check each DKIM signature (at most 5); synchronous, as DNS may be."""
    try:
        checker = dkim.DKIM(raw, minkey=1024)
        count = sum(1 for name, _value in checker.headers if name.lower() == b"dkim-signature")
    except Exception as exc:
        return Verdict(False, f"dkim: unreadable ({type(exc).__name__})")
    if count == 0:
        return Verdict(False, "no DKIM signature")
    reasons = []
    for idx in range(min(count, 5)):
        try:
            ok = checker.verify(idx=idx, dnsfunc=dnsfunc) if dnsfunc else checker.verify(idx=idx)
        except Exception as exc:  # bad signature syntax, DNS failure...
            reasons.append(f"{type(exc).__name__}")
            continue
        domain = checker.domain.decode(errors="replace") if isinstance(checker.domain, bytes) else str(checker.domain)
        if ok and aligned(domain, from_domain):
            return Verdict(True, f"dkim: d={domain}")
        reasons.append(f"d={domain} {'not aligned' if ok else 'invalid'}")
    return Verdict(False, "dkim: " + ", ".join(reasons))


def check(raw: bytes, auth_results: list[str], from_domain: str, *, trusted: frozenset[str],
          dnsfunc: DnsFunc | None) -> Verdict:
    upstream = from_authentication_results(auth_results, from_domain, trusted)
    if upstream is not None:
        return upstream
    return dkim_verdict(raw, from_domain, dnsfunc)


def dns_from_file(path: str) -> DnsFunc:
    """A resolver answering TXT lookups from a JSON file ``{"name.": "record"}``
    (development mode only: how tests give DKIM keys to a hub process)."""
    import json

    with open(path, encoding="utf-8") as fh:
        records = {k.lower().rstrip("."): v for k, v in json.load(fh).items()}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().lower().rstrip("."))
        return value.encode() if value is not None else None

    return lookup
