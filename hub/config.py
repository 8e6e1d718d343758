"""Configuration: one TOML file plus ``ROUNDTABLE_*`` environment overrides.

Loaded once (``load_config``) into a frozen :class:`Config` that is passed
explicitly to everything that needs it. This module performs no I/O at import
time and keeps no module-level state.

Every setting can be given in the TOML file under its field name, or in the
environment as ``ROUNDTABLE_<FIELD>`` in upper case; the environment wins.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hub.errors import ConfigError

ENV_PREFIX = "ROUNDTABLE_"

# About ten tries over roughly 2.7 days (initial try + these nine waits),
# in the spirit of Mastodon's Sidekiq schedule for deliveries.
DEFAULT_RETRY_SCHEDULE_S = (60, 300, 1800, 3600, 10800, 21600, 43200, 64800, 86400)


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """All settings of one hub. Immutable once loaded."""

    domain: str = "localhost:8080"
    """Public domain, optionally with a port (``localhost:8101``)."""
    listen: str = "127.0.0.1:8080"
    """``host:port`` the web server binds."""
    data: Path = Path("data")
    """Data directory (SQLite database, media, exports)."""
    database_url: str = ""
    """SQLAlchemy URL; defaults to SQLite in the data directory."""
    dev: bool = False
    """Development mode: plain http and private/loopback federation allowed."""
    scheme: str = ""
    """Public URL scheme; ``http`` in development mode, else ``https``."""
    instance_name: str = "Roundtable"
    instance_description: str = "A conversation hub where customers own their conversations."
    log_level: str = "INFO"
    access_log: bool = False
    """Log every HTTP request (a reverse proxy usually does this already)."""
    secret_key: str = dataclasses.field(default="", repr=False)  # a secret: never in logs or reprs
    """Seals what is kept but must not be readable from the database alone (the access token a Web
    Push payload carries). Empty: one is made in the data directory (``secret.key``); set it when
    several machines share one database."""
    workers: bool = True
    """Run the job workers inside ``roundtable serve``."""
    worker_concurrency: int = 64
    """Jobs run at once per worker process."""
    per_host_concurrency: int = 4
    """Deliveries in flight to one remote host at once."""
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    """Waits between delivery attempts; its length + 1 is the number of tries."""
    retry_jitter: float = 0.2
    """Each wait is spread by up to this fraction, so retries do not stampede."""
    job_poll_s: float = 1.0
    """How often idle workers look for new jobs."""
    periodic_s: float = 30.0
    """How often each job runner does the work that is due by time (snoozed
    conversations whose time has come are reopened)."""
    job_lease_s: float = 30.0
    """A running job's lease; workers renew it while they work, so a job whose
    worker died is taken again this long after the death (crash recovery)."""
    http_timeout_s: float = 15.0
    max_inbox_body: int = 1_048_576
    """Inbound activity bodies over this many bytes get 413."""
    max_fetch_body: int = 4_194_304
    """Remote documents over this many bytes are refused when fetching."""
    signature_max_age_s: int = 12 * 3600
    signature_max_future_s: int = 3600
    authorized_fetch: bool = False
    """Require a valid signature on every ActivityPub GET (secure mode)."""
    actor_refresh_s: int = 24 * 3600
    """Cached remote actors older than this are refetched when next needed."""
    user_agent: str = ""
    mail_domain: str = ""
    """The domain of the hub's mail addresses (``acme@MAIL_DOMAIN``); the
    public domain's host by default."""
    smtp_listen: str = ""
    """``host:port`` of the inbound SMTP (or LMTP) listener; off when empty."""
    lmtp: bool = False
    """Speak LMTP instead of SMTP on ``smtp_listen`` (behind an MTA)."""
    smtp_relay: str = ""
    """``host:port`` of the SMTP relay outbound mail is submitted to."""
    smtp_relay_user: str = ""
    smtp_relay_password: str = dataclasses.field(default="", repr=False)  # a secret: never in logs or reprs
    smtp_relay_tls: str = ""
    """``starttls``, ``tls`` or ``none``; ``starttls`` by default, ``none`` in development mode."""
    dkim_selector: str = ""
    dkim_key: str = ""
    """Path of the PEM private key outbound mail is DKIM-signed with (with ``dkim_selector``)."""
    mail_trusted_authserv_ids: str = ""
    """Comma-separated authserv-ids whose ``Authentication-Results`` headers are believed."""
    mail_dns_file: str = ""
    """Development only: a JSON file of TXT records used instead of DNS for DKIM keys."""
    max_mail_bytes: int = 25 * 1024 * 1024
    """Inbound mail over this size is refused (SMTP 552)."""
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_import_bytes: int = 1024 * 1024 * 1024
    """An export archive uploaded to be imported (the *Your data* page, the API) may be this large."""
    imap_poll_s: float = 60.0
    """How often the email bridge polls the IMAP mailboxes it reads (``roundtable bridge imap add``)."""
    signups: bool = True
    """Anyone may create an account at ``/signup``; when off, only with an invitation."""
    session_days: int = 30
    """How long a browser stays signed in without being used."""
    login_max_failures: int = 5
    """Failed sign-ins per account (and four times that per address) within ``login_window_s``
    before sign-in is refused for a while (429)."""
    login_window_s: int = 900

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain}"

    @property
    def host(self) -> str:
        """The domain without the port."""
        return self.domain.rsplit(":", 1)[0] if self.domain.count(":") == 1 else self.domain

    @property
    def listen_host(self) -> str:
        return self.listen.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected a boolean, got {value!r}")


def _parse_number_list(name: str, value: Any) -> tuple[float, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        out = tuple(float(x) for x in items if str(x).strip() != "")
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated seconds, got {value!r}") from None
    if any(x < 0 for x in out):
        raise ConfigError(f"{name}: waits cannot be negative")
    return out


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    name = field.name
    kind = field.type
    try:
        if kind == "bool":
            return _parse_bool(name, value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(str(value)).expanduser()
        if kind == "tuple[float, ...]":
            return _parse_number_list(name, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: invalid value {value!r}") from None
    return str(value)


def _validate(cfg: Config) -> Config:
    domain = cfg.domain.strip().lower()
    if not domain or "/" in domain or "@" in domain or " " in domain:
        raise ConfigError(f"domain: invalid domain {cfg.domain!r}")
    if ":" in cfg.listen:
        try:
            port = int(cfg.listen.rsplit(":", 1)[1])
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ConfigError(f"listen: invalid host:port {cfg.listen!r}")
    else:
        raise ConfigError(f"listen: expected host:port, got {cfg.listen!r}")
    scheme = cfg.scheme or ("http" if cfg.dev else "https")
    if scheme not in ("http", "https"):
        raise ConfigError(f"scheme: expected http or https, got {cfg.scheme!r}")
    if scheme == "http" and not cfg.dev:
        raise ConfigError("scheme: plain http is only allowed in development mode (ROUNDTABLE_DEV=1)")
    database_url = cfg.database_url or f"sqlite+aiosqlite:///{(cfg.data / 'roundtable.db').absolute()}"
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        database_url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    if cfg.worker_concurrency < 1 or cfg.per_host_concurrency < 1:
        raise ConfigError("worker_concurrency and per_host_concurrency must be at least 1")
    from hub import __version__

    user_agent = cfg.user_agent or f"Roundtable/{__version__} (+{scheme}://{domain}/)"
    relay_tls = (cfg.smtp_relay_tls or ("none" if cfg.dev else "starttls")).lower()
    if relay_tls not in ("starttls", "tls", "none"):
        raise ConfigError(f"smtp_relay_tls: expected starttls, tls or none, got {cfg.smtp_relay_tls!r}")
    for name in ("smtp_listen", "smtp_relay"):
        value = getattr(cfg, name)
        if value and (":" not in value or not value.rsplit(":", 1)[1].isdigit()):
            raise ConfigError(f"{name}: expected host:port, got {value!r}")
    if cfg.mail_dns_file and not cfg.dev:
        raise ConfigError("mail_dns_file: only in development mode (ROUNDTABLE_DEV=1)")
    host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
    return dataclasses.replace(
        cfg,
        domain=domain,
        scheme=scheme,
        database_url=database_url,
        user_agent=user_agent,
        mail_domain=(cfg.mail_domain or host).strip().lower(),
        smtp_relay_tls=relay_tls,
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Load the configuration once.

    Args:
        path: a TOML file; ``None`` means ``$ROUNDTABLE_CONFIG`` if set, else none.
        env: the environment to read overrides from (``os.environ`` by default).
        overrides: values that win over both (used by tests).

    Raises:
        ConfigError: on an unreadable file, an unknown key or an invalid value.
    """
    env = os.environ if env is None else env
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    values: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            if key not in fields:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(fields[key], value)
    for name, field in fields.items():
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = _coerce(field, env_value)
    for key, value in overrides.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(fields[key], value)
    return _validate(Config(**values))
