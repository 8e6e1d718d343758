"""Table definitions used by the store's queries.

The database is *created and changed* only by the numbered Alembic migrations
in ``hub/migrations/versions``; this module describes the result for
SQLAlchemy Core. When a migration changes a table, change it here too (a test
compares the two).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData()


class UTCDateTime(TypeDecorator):
    """Timestamps stored as naive UTC, returned as aware UTC datetimes.

    SQLite has no time-zone type and PostgreSQL's ``timestamp`` compares
    naive values, so the store always speaks UTC and never local time.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # defensive: raw SQLite text
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.timezone.utc)


def _id() -> sa.Column:
    return sa.Column("id", sa.String(26), primary_key=True)


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


actors = sa.Table(
    "actors",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=False, unique=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("local", sa.Boolean, nullable=False, default=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("domain", sa.String(255), nullable=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("url", sa.String(2048), nullable=True),
    sa.Column("icon_url", sa.String(2048), nullable=True),
    sa.Column("image_url", sa.String(2048), nullable=True),  # a remote actor's header image (``image``)
    sa.Column("manually_approves_followers", sa.Boolean, nullable=False, default=False),
    sa.Column("discoverable", sa.Boolean, nullable=False, default=True),
    sa.Column("fields", sa.JSON, nullable=True),
    sa.Column("also_known_as", sa.JSON, nullable=True),
    sa.Column("moved_to", sa.String(2048), nullable=True),
    sa.Column("inbox_uri", sa.String(2048), nullable=True),
    sa.Column("outbox_uri", sa.String(2048), nullable=True),
    sa.Column("shared_inbox_uri", sa.String(2048), nullable=True),
    sa.Column("followers_uri", sa.String(2048), nullable=True),
    sa.Column("following_uri", sa.String(2048), nullable=True),
    sa.Column("featured_uri", sa.String(2048), nullable=True),
    sa.Column("private_key_pem", sa.Text, nullable=True),
    sa.Column("raw", sa.Text, nullable=True),
    sa.Column("settings", sa.JSON, nullable=True),  # local actors: agent signature, accepted purposes...
    sa.Column("implements", sa.JSON, nullable=True),  # remote actors: FEP-844e capability URIs
    sa.Column("bridge_network", sa.String(64), nullable=True),  # set on bridged actors (puppets): their network
    sa.Column("published_at", UTCDateTime(), nullable=True),
    sa.Column("fetched_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=True),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Index("ix_actors_domain_username", "domain", "username"),
    sa.Index(
        "ux_actors_local_username",
        "username",
        unique=True,
        sqlite_where=sa.text("local = 1"),
        postgresql_where=sa.text("local"),
    ),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("key_id", sa.String(2048), primary_key=True),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # rsa | ed25519
    sa.Column("public_key", sa.Text, nullable=False),  # SPKI PEM
    _created(),
)

accounts = sa.Table(
    "accounts",
    metadata,
    _id(),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=True, unique=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    _created(),
    # two-factor sign-in (TOTP, RFC 6238): the shared secret once confirmed
    sa.Column("totp_secret", sa.String(64), nullable=True),
    # the instance's operators: federation status, domain blocks, reports
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
)

memberships = sa.Table(
    "memberships",
    metadata,
    _id(),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    _created(),
    # email notifications this member chose for this actor (sent through the relay)
    sa.Column("notify_conversations", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notify_messages", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notify_assignments", sa.Boolean, nullable=False, server_default=sa.true()),
    # an organization's admin lets this member speak as it from fediverse apps (admins and owners always may)
    sa.Column("app_access", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("account_id", "actor_id", name="uq_memberships_account_actor"),
)

follows = sa.Table(
    "follows",
    metadata,
    _id(),
    sa.Column("follower_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("followee_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False),  # pending | accepted
    sa.Column("uri", sa.String(2048), nullable=True, index=True),
    _created(),
    sa.Column("accepted_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("follower_id", "followee_id", name="uq_follows_pair"),
)

blocks = sa.Table(
    "blocks",
    metadata,
    _id(),
    sa.Column("blocker_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("blocked_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("uri", sa.String(2048), nullable=True, index=True),
    _created(),
    sa.UniqueConstraint("blocker_id", "blocked_id", name="uq_blocks_pair"),
)

mutes = sa.Table(
    # An actor hides another's statuses from its timelines (and, optionally, its notifications).
    "mutes",
    metadata,
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("target_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("notifications", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    _created(),
)

conversations = sa.Table(
    "conversations",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=False, unique=True),
    sa.Column("owner_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="SET NULL"), nullable=True),
    sa.Column("local", sa.Boolean, nullable=False, default=False),
    _created(),
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("visibility", sa.String(16), nullable=True),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.Column("last_message_at", UTCDateTime(), nullable=True),
)

conversation_aliases = sa.Table(
    # Other URIs a conversation is known by: the remote context a thread had
    # before its owner's hub adopted it, Mastodon's ostatus:conversation tag...
    "conversation_aliases",
    metadata,
    sa.Column("uri", sa.String(2048), primary_key=True),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True),
    _created(),
)

conversation_participants = sa.Table(
    "conversation_participants",
    metadata,
    _id(),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),  # owner | participant
    sa.Column("added_by_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="SET NULL"), nullable=True),
    _created(),
    sa.UniqueConstraint("conversation_id", "actor_id", name="uq_participants_pair"),
)

conversation_states = sa.Table(
    # Each local actor's private working state of a conversation. Never federated.
    "conversation_states",
    metadata,
    _id(),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | pending | snoozed | resolved
    sa.Column("snoozed_until", UTCDateTime(), nullable=True),
    sa.Column("assignee_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("team", sa.String(64), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("waiting_since", UTCDateTime(), nullable=True),
    sa.Column("first_response_at", UTCDateTime(), nullable=True),
    sa.Column("last_message_at", UTCDateTime(), nullable=False),
    sa.Column("last_message_id", sa.String(26), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("conversation_id", "actor_id", name="uq_states_pair"),
    sa.Index("ix_states_inbox", "actor_id", "last_message_at", "id"),
    sa.Index("ix_states_status", "actor_id", "status", "last_message_at"),
    sa.Index("ix_states_snoozed", "snoozed_until"),  # waking snoozed ones touches only those due
)

conversation_labels = sa.Table(
    "conversation_labels",
    metadata,
    sa.Column("state_id", sa.String(26), sa.ForeignKey("conversation_states.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Index("ix_labels_label", "label"),
)

conversation_reads = sa.Table(
    "conversation_reads",
    metadata,
    sa.Column("state_id", sa.String(26), sa.ForeignKey("conversation_states.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("read_at", UTCDateTime(), nullable=False),
)

private_notes = sa.Table(
    # Notes an actor's members keep on a conversation: never delivered, bridged or exported to the other side.
    "private_notes",
    metadata,
    _id(),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    _created(),
    sa.Index("ix_notes_conversation", "conversation_id", "actor_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    _created(),
    sa.Index("ix_audit_actor", "actor_id", "id"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=True),
    _created(),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(255), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    _created(),
)

canned_responses = sa.Table(
    "canned_responses",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _created(),
    sa.UniqueConstraint("actor_id", "name", name="uq_canned_name"),
)

messages = sa.Table(
    "messages",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=False, unique=True),
    sa.Column("url", sa.String(2048), nullable=True),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True, index=True),
    sa.Column("in_reply_to_uri", sa.String(2048), nullable=True, index=True),
    sa.Column("content_html", sa.Text, nullable=False, default=""),
    sa.Column("content_text", sa.Text, nullable=False, default=""),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("sensitive", sa.Boolean, nullable=False, default=False),
    sa.Column("language", sa.String(16), nullable=True),
    sa.Column("visibility", sa.String(16), nullable=False),  # public | unlisted | followers | direct
    sa.Column("to_uris", sa.JSON, nullable=False),
    sa.Column("cc_uris", sa.JSON, nullable=False),
    sa.Column("mention_uris", sa.JSON, nullable=False),  # actor URIs
    sa.Column("local", sa.Boolean, nullable=False, default=False),
    sa.Column("network", sa.String(32), nullable=False, default="activitypub"),
    sa.Column("remote_id", sa.String(2048), nullable=True),
    sa.Column("raw", sa.Text, nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=False),
    sa.Column("edited_at", UTCDateTime(), nullable=True),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Column("removed_at", UTCDateTime(), nullable=True),  # taken out of its conversation by the owner
    sa.Column("account_id", sa.String(26), nullable=True),  # the member who wrote a local message
    sa.Column("flags", sa.JSON, nullable=True),  # e.g. ["unauthenticated", "correction"]
    sa.Index("ix_messages_conversation_published", "conversation_id", "published_at"),
)

message_tags = sa.Table(
    # The hashtags of a message (lower case): from its text when written here, from its Hashtag tags when
    # it came from elsewhere.
    "message_tags",
    metadata,
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True),
    sa.Index("ix_message_tags_tag", "tag", "message_id"),
)

followed_tags = sa.Table(
    # Hashtags an actor follows from an app: public posts with them come into its home timeline.
    "followed_tags",
    metadata,
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True),
    _created(),
)

message_versions = sa.Table(
    # What a message said before each edit (its text, its content warning), from when: the history apps
    # show. Erased with the message.
    "message_versions",
    metadata,
    _id(),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("content_html", sa.Text, nullable=False),
    sa.Column("content_text", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("sensitive", sa.Boolean, nullable=False, server_default=sa.false()),
    _created(),  # when this version became the message's text
)

timeline = sa.Table(
    "timeline",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("reason", sa.String(16), nullable=False),  # addressed | follow | announce
    sa.Column("via_actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=True),
    _created(),
    sa.UniqueConstraint("actor_id", "message_id", name="uq_timeline_actor_message"),
)

reactions = sa.Table(
    "reactions",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # like | announce
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("object_uri", sa.String(2048), nullable=False, index=True),
    sa.Column("content", sa.String(255), nullable=True),  # emoji reaction, if any
    _created(),
)

activities = sa.Table(
    "activities",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("actor_uri", sa.String(2048), nullable=False, index=True),
    sa.Column("object_uri", sa.String(2048), nullable=True, index=True),
    sa.Column("local", sa.Boolean, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    _created(),
)

jobs = sa.Table(
    "jobs",
    metadata,
    _id(),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued | running | done | failed | gone
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(2200), nullable=True, unique=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try_at", UTCDateTime(), nullable=False),
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_jobs_ready", "state", "next_try_at"),
)

job_attempts = sa.Table(
    "job_attempts",
    metadata,
    _id(),
    sa.Column("job_id", sa.String(26), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    _created(),
)

inboxes = sa.Table(
    "inboxes",
    metadata,
    sa.Column("uri", sa.String(2048), primary_key=True),
    sa.Column("gone_at", UTCDateTime(), nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

hosts = sa.Table(
    "hosts",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("signature_scheme", sa.String(16), nullable=True),  # rfc9421 | cavage
    sa.Column("software", sa.String(64), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)


# --- bridges -------------------------------------------------------------------------------------

bridges = sa.Table(
    # A connection to a network that does not speak ActivityPub. Its name is
    # the network namespace of its identities and message map.
    "bridges",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # email | webhook | external | fake ...
    sa.Column("owner_actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=True),
    sa.Column("url", sa.String(2048), nullable=True),  # where an out-of-process bridge or a channel receives sends
    sa.Column("secret", sa.Text, nullable=True),  # signs what the hub sends there
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),  # the bridge's own token, hashed
    sa.Column("settings", sa.JSON, nullable=True),
    sa.Column("state", sa.String(32), nullable=False),  # connected | disconnected | bad_credentials | error | stopped
    sa.Column("state_detail", sa.Text, nullable=True),
    sa.Column("state_at", UTCDateTime(), nullable=False),
    _created(),
)

remote_identities = sa.Table(
    # (network, remote id) -> the bridged actor that stands for it, and the
    # customer who claimed it, if any.
    "remote_identities",
    metadata,
    _id(),
    sa.Column("network", sa.String(64), nullable=False),
    sa.Column("remote_id", sa.String(512), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("display_name", sa.Text, nullable=True),
    sa.Column("claimed_actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="SET NULL"), nullable=True, index=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("undeliverable_at", UTCDateTime(), nullable=True),
    sa.Column("undeliverable_reason", sa.Text, nullable=True),
    _created(),
    sa.UniqueConstraint("network", "remote_id", name="uq_identities_remote"),
)

identity_claims = sa.Table(
    "identity_claims",
    metadata,
    _id(),
    sa.Column("identity_id", sa.String(26), sa.ForeignKey("remote_identities.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("confirmed_at", UTCDateTime(), nullable=True),
    _created(),
)

bridge_messages = sa.Table(
    # The message map: (network, remote id, part) <-> message. Persistent: the
    # guard against bridging anything twice and against echo loops.
    "bridge_messages",
    metadata,
    _id(),
    sa.Column("network", sa.String(64), nullable=False),
    sa.Column("remote_id", sa.String(1000), nullable=False),
    sa.Column("part", sa.Integer, nullable=False, default=0),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("direction", sa.String(3), nullable=False),  # in | out
    sa.Column("identity_id", sa.String(26), sa.ForeignKey("remote_identities.id", ondelete="SET NULL"), nullable=True),
    sa.Column("edit_count", sa.Integer, nullable=False, default=0),
    sa.Column("txn_id", sa.String(26), nullable=False, unique=True),
    # how many bridges an inbound message had passed (what is sent on carries one more)
    sa.Column("hops", sa.Integer, nullable=False, server_default="0"),
    _created(),
    sa.UniqueConstraint("network", "remote_id", "part", name="uq_bridge_messages_remote"),
)

conversation_networks = sa.Table(
    # Networks the owner allows a conversation to be mirrored to; the one it
    # came from is allowed implicitly (origin).
    "conversation_networks",
    metadata,
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("network", sa.String(64), primary_key=True),
    sa.Column("origin", sa.Boolean, nullable=False, default=False),
    sa.Column("allowed_by_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="SET NULL"), nullable=True),
    _created(),
)

conversation_channels = sa.Table(
    # The remote identities a conversation is mirrored to.
    "conversation_channels",
    metadata,
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("identity_id", sa.String(26), sa.ForeignKey("remote_identities.id", ondelete="CASCADE"), primary_key=True),
    _created(),
    sa.Index("ix_channels_identity", "identity_id"),
)

reply_tokens = sa.Table(
    # Per-conversation reply addresses (``acme+TOKEN@domain``).
    "reply_tokens",
    metadata,
    sa.Column("token", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(26), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    _created(),
    sa.UniqueConstraint("conversation_id", "actor_id", name="uq_reply_tokens_pair"),
)

bridge_items = sa.Table(
    # Every raw inbound item (an email as received...), kept as it came:
    # placed, or flagged and kept aside (bounces, auto-replies, loops, bad input).
    "bridge_items",
    metadata,
    _id(),
    sa.Column("bridge", sa.String(64), nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sender", sa.String(512), nullable=True),
    sa.Column("recipients", sa.JSON, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # queued | placed | flagged | dropped
    sa.Column("flags", sa.JSON, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_bridge_items_status", "bridge", "status"),
)

attachments = sa.Table(
    "attachments",
    metadata,
    _id(),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("size", sa.Integer, nullable=True),  # unknown for a remote file
    sa.Column("sha256", sa.String(64), nullable=True),  # kept here (media/) when set
    _created(),
    # a file another server keeps (a fediverse note's attachment): linked, never fetched by us
    sa.Column("remote_url", sa.String(2048), nullable=True),
    sa.Column("description", sa.Text, nullable=True),  # alt text
)

web_sessions = sa.Table(
    # A signed-in browser. The cookie holds a random token; only its SHA-256 is here.
    "web_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("user_agent", sa.String(255), nullable=True),
    _created(),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    # the password was right but the second factor is still due: not signed in yet
    sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false()),
)

login_failures = sa.Table(
    # Failed sign-ins by key ("ip:..." or "user:..."), for rate limiting across processes.
    "login_failures",
    metadata,
    _id(),
    sa.Column("key", sa.String(320), nullable=False),
    _created(),
    sa.Index("ix_login_failures_key", "key", "created_at"),
)

invitations = sa.Table(
    # Sign-up by invitation when open sign-up is off. Only the code's hash is kept.
    "invitations",
    metadata,
    _id(),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("used_by_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("used_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    _created(),
)

password_resets = sa.Table(
    # A password reset link sent by email: only the token's hash, valid once, for an hour.
    "password_resets",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
    _created(),
)


email_changes = sa.Table(
    # A new email address waiting for its owner to open the link mailed to it: only the token's hash,
    # valid once, for a day. The address changes only then.
    "email_changes",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
    _created(),
)


# --- instance administration ---------------------------------------------------------------------

domain_blocks = sa.Table(
    # A remote domain (and its subdomains) this instance refuses: no inbound activity is accepted
    # from it and nothing is delivered to it.
    "domain_blocks",
    metadata,
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_by_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    _created(),
)

reports = sa.Table(
    # A Flag received from another server (or made here): who reported what, and why.
    "reports",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=True, unique=True),  # the Flag activity's id
    sa.Column("reporter_uri", sa.String(2048), nullable=True),
    sa.Column("target_uris", sa.JSON, nullable=False),  # the actor and objects reported
    sa.Column("content", sa.Text, nullable=True),
    sa.Column("raw", sa.JSON, nullable=True),
    _created(),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.Column("resolved_by_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Index("ix_reports_open", "resolved_at", "created_at"),
)


# --- the Mastodon-compatible client API (hub/mastodon) --------------------------------------------

oauth_apps = sa.Table(
    # A client application registered through POST /api/v1/apps. Only the secret's SHA-256 is kept.
    "oauth_apps",
    metadata,
    _id(),
    sa.Column("client_id", sa.String(64), nullable=False, unique=True),
    sa.Column("client_secret_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("website", sa.String(2048), nullable=True),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("scopes", sa.String(1024), nullable=False),
    _created(),
)

oauth_codes = sa.Table(
    # An authorization code (RFC 6749 §4.1), valid once for ten minutes; only its hash is kept.
    "oauth_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(26), sa.ForeignKey("oauth_apps.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("redirect_uri", sa.String(2048), nullable=False),
    sa.Column("scopes", sa.String(1024), nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=True),  # PKCE (RFC 7636)
    sa.Column("code_challenge_method", sa.String(8), nullable=True),
    _created(),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
)

oauth_tokens = sa.Table(
    # An access token (and its refresh token), by SHA-256. ``actor_id`` is the actor the token speaks
    # as: the account's own person, or an organization the account may speak for through apps.
    "oauth_tokens",
    metadata,
    _id(),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("refresh_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("app_id", sa.String(26), sa.ForeignKey("oauth_apps.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=True),
    sa.Column("scopes", sa.String(1024), nullable=False),
    _created(),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    # the authorization code it came from (kept by refreshed tokens too): a code used twice revokes them
    sa.Column("code_hash", sa.String(64), nullable=True, index=True),
)

notifications = sa.Table(
    # What a client shows under notifications: a mention, a follow, a favourite... of a local actor.
    "notifications",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),  # mention | follow | follow_request | favourite | reblog
    sa.Column("from_actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
    _created(),
    sa.UniqueConstraint("actor_id", "type", "from_actor_id", "message_id", name="uq_notifications_event"),
    sa.Index("ix_notifications_actor", "actor_id", "id"),
)

media_uploads = sa.Table(
    # A file uploaded through POST /api/v2/media before the status that carries it.
    "media_uploads",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("meta", sa.JSON, nullable=True),
    _created(),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
)

idempotency_keys = sa.Table(
    # POST /api/v1/statuses with an Idempotency-Key: the same key from the same token makes one status.
    "idempotency_keys",
    metadata,
    sa.Column("token_id", sa.String(26), sa.ForeignKey("oauth_tokens.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    _created(),
)

markers = sa.Table(
    # Where a client stopped reading a timeline (GET/POST /api/v1/markers).
    "markers",
    metadata,
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("timeline", sa.String(16), primary_key=True),  # home | notifications
    sa.Column("last_read_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

push_subscriptions = sa.Table(
    # A Web Push subscription (RFC 8030/8291) of one access token.
    "push_subscriptions",
    metadata,
    _id(),
    sa.Column("token_id", sa.String(26), sa.ForeignKey("oauth_tokens.id", ondelete="CASCADE"), nullable=False,
              unique=True),
    sa.Column("endpoint", sa.String(2048), nullable=False),
    sa.Column("p256dh", sa.String(255), nullable=False),
    sa.Column("auth", sa.String(255), nullable=False),
    sa.Column("alerts", sa.JSON, nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),
    _created(),
    # RFC 8291 aes128gcm when the app says it takes it (``standard``), else the older aesgcm Mastodon sends
    sa.Column("standard", sa.Boolean, nullable=False, server_default=sa.false()),
    # the token itself, sealed (hub/sealing.py): Mastodon's push payloads carry it, apps match accounts by it
    sa.Column("sealed_token", sa.Text, nullable=True),
)

bookmarks = sa.Table(
    # Statuses an actor keeps for later (POST /api/v1/statuses/:id/bookmark); private, never federated.
    "bookmarks",
    metadata,
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("message_id", sa.String(26), sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    _created(),
)


# --- consent-based data sharing (hub/consent) ------------------------------------------------------

profile_items = sa.Table(
    # A customer's data items (email, phone, address, customer numbers...): private unless granted.
    "profile_items",
    metadata,
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

consent_grants = sa.Table(
    # A grant of some items for some purposes, as the customer's hub keeps it (side "customer": the data
    # is here) or as the organization's hub keeps it (side "organization": a capability to read it).
    "consent_grants",
    metadata,
    _id(),
    sa.Column("uri", sa.String(2048), nullable=False),
    sa.Column("side", sa.String(16), nullable=False),  # customer | organization
    sa.Column("customer_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("organization_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("purposes", sa.JSON, nullable=False),
    sa.Column("conversation_uri", sa.String(2048), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),  # offered | accepted | rejected | revoked | expired
    sa.Column("offer_uri", sa.String(2048), nullable=True),
    sa.Column("capability_hash", sa.String(64), nullable=True),  # customer side: SHA-256 of the capability
    sa.Column("sealed_capability", sa.Text, nullable=True),  # organization side: the capability, sealed
    sa.Column("data_url", sa.String(2048), nullable=True),  # organization side: where to read
    sa.Column("decided_by_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    _created(),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("uri", "side", name="uq_consent_grants_uri_side"),
    sa.Index("ix_consent_grants_pair", "customer_id", "organization_id"),
)

consent_receipts = sa.Table(
    # A consent receipt (after Kantara CR 1.1 / ISO/IEC TS 27560), signed by the customer's hub; both sides keep it.
    "consent_receipts",
    metadata,
    _id(),
    sa.Column("grant_id", sa.String(26), sa.ForeignKey("consent_grants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("receipt_id", sa.String(2048), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # granted | accepted | rejected | revoked | expired
    sa.Column("document", sa.JSON, nullable=False),
    _created(),
    sa.UniqueConstraint("grant_id", "receipt_id", name="uq_consent_receipts"),
)

consent_reads = sa.Table(
    # Every read of granted data, kept by the customer's hub: the customer's access log.
    "consent_reads",
    metadata,
    _id(),
    sa.Column("grant_id", sa.String(26), sa.ForeignKey("consent_grants.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("customer_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reader_uri", sa.String(2048), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    _created(),
    sa.Index("ix_consent_reads_customer", "customer_id", "id"),
)

exports = sa.Table(
    # An export archive built in the background (export.build): its state, progress and download link.
    "exports",
    metadata,
    _id(),
    sa.Column("actor_id", sa.String(26), sa.ForeignKey("actors.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("account_id", sa.String(26), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("private_key", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued | building | done | failed | expired
    sa.Column("progress", sa.Integer, nullable=False, server_default="0"),  # percent
    sa.Column("token_hash", sa.String(64), nullable=False),  # of the download link's secret
    sa.Column("size", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    _created(),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
)
