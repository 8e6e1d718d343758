"""Every URI of an object we own is minted here, and only here.

``uri`` is an absolute ActivityPub IRI. Layout (DESIGN.md):
``/users/{name}`` actor (HTML for browsers), ``/users/{name}/inbox|outbox|
followers|following|featured``, ``/inbox`` shared inbox, ``/actor`` instance
actor, ``/c/{id}`` conversation (the ``context`` of its messages), ``/m/{id}``
message object, ``/a/{id}`` activity.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

_LOCAL_PATH = re.compile(
    r"^/(?:(?P<kind>users)/(?P<name>[a-z0-9_]+)(?:/(?P<sub>inbox|outbox|followers|following|featured))?"
    r"|(?P<okind>[mac])/(?P<id>[0-9a-z]{26})(?:/(?P<osub>replies))?|(?P<instance>actor))/?$"
)


@dataclasses.dataclass(frozen=True, slots=True)
class LocalRef:
    """What a local URI points at."""

    kind: str  # actor, actor_collection, message, activity, conversation, replies, instance
    name: str | None = None
    id: str | None = None
    collection: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Uris:
    base_url: str

    @property
    def origin(self) -> str:
        return self.base_url

    def actor(self, username: str) -> str:
        return f"{self.base_url}/users/{username}"

    def key_id(self, username: str) -> str:
        return f"{self.actor(username)}#main-key"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def featured(self, username: str) -> str:
        return f"{self.actor(username)}/featured"

    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    def instance_actor(self) -> str:
        return f"{self.base_url}/actor"

    def instance_key_id(self) -> str:
        return f"{self.instance_actor()}#main-key"

    def message(self, id: str) -> str:
        return f"{self.base_url}/m/{id}"

    def replies(self, id: str) -> str:
        return f"{self.message(id)}/replies"

    def activity(self, id: str) -> str:
        return f"{self.base_url}/a/{id}"

    def create_of(self, message_uri: str) -> str:
        """The id shown for a note's Create when its stored activity is not
        there yet (an outbox read before the publish job ran)."""
        return f"{message_uri}#create"

    def container_item(self, conversation_id: str, message_id: str) -> str:
        """The id of a container item we hold no stored Add for."""
        return f"{self.conversation(conversation_id)}#{message_id}"

    def conversation(self, id: str) -> str:
        return f"{self.base_url}/c/{id}"

    def avatar(self) -> str:
        return f"{self.base_url}/static/avatar.png"

    def is_local(self, uri: str | None) -> bool:
        if not uri:
            return False
        return uri == self.base_url or uri.startswith(self.base_url + "/") or uri.startswith(
            self.base_url + "#"
        ) or uri.startswith(self.base_url + "?")

    def parse(self, uri: str) -> LocalRef | None:
        """Return what a URI of ours points at, or None for a foreign or unknown URI."""
        if not self.is_local(uri):
            return None
        path = urlsplit(uri).path
        m = _LOCAL_PATH.match(path)
        if not m:
            return None
        if m["instance"]:
            return LocalRef("instance")
        if m["kind"]:
            if m["sub"]:
                return LocalRef("actor_collection", name=m["name"], collection=m["sub"])
            return LocalRef("actor", name=m["name"])
        kind = {"m": "message", "a": "activity", "c": "conversation"}[m["okind"]]
        if m["osub"]:
            if kind != "message":
                return None
            return LocalRef("replies", id=m["id"])
        return LocalRef(kind, id=m["id"])
