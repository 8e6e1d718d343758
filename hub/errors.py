"""The one error hierarchy of the hub.

Every error carries a short message that is safe to show a client or a remote
server (``safe``) and, separately, internal detail for the logs (``detail``).
Errors are either *permanent* (retrying cannot help) or *transient* (retry
later); job runners and the delivery policy branch on that, never on strings.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    status = 500
    permanent = True

    def __init__(self, safe: str, *, detail: str | None = None, status: int | None = None):
        super().__init__(safe if detail is None else f"{safe} ({detail})")
        self.safe = safe
        self.detail = detail
        if status is not None:
            self.status = status


class ConfigError(HubError):
    """Invalid configuration."""


class UsageError(HubError):
    """Bad input to a command or service call (a CLI prints it on one line)."""

    status = 400


class NotFound(HubError):
    status = 404


class Gone(HubError):
    status = 410


class Forbidden(HubError):
    status = 403


class BadRequest(HubError):
    status = 400


class Unauthorized(HubError):
    """A missing, malformed or invalid signature or digest."""

    status = 401


class KeyUnavailable(Unauthorized):
    """The signing key could not be fetched: the signature cannot be checked
    (which is not the same as a signature known to be bad)."""


class PayloadTooLarge(HubError):
    status = 413


class Conflict(HubError):
    status = 409


class FetchError(HubError):
    """A remote fetch failed. ``permanent`` tells whether retrying can help."""

    status = 502

    def __init__(
        self,
        safe: str,
        *,
        detail: str | None = None,
        status_code: int | None = None,
        permanent: bool = False,
        retry_after_s: float | None = None,
    ):
        super().__init__(safe, detail=detail)
        self.status_code = status_code
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class BlockedAddress(FetchError):
    """The SSRF guard refused a private, loopback or link-local address."""

    def __init__(self, safe: str, *, detail: str | None = None):
        super().__init__(safe, detail=detail, permanent=True)


class TransientError(HubError):
    """Something that may work if tried again later."""

    permanent = False
