"""Moving an account: aliases (``alsoKnownAs``) now; ``Move`` itself comes next."""

from __future__ import annotations

import sqlalchemy as sa

from hub.context import Hub
from hub.errors import UsageError
from hub.ids import new_id
from hub.inbox.access import Acting, audit
from hub.store import actors as actor_store
from hub.store.jobs import job_row, put_jobs

MAX_ALIASES = 10


async def add_alias(hub: Hub, acting: Acting, old: sa.Row) -> list[str]:
    """Name another account (usually the one moved from) as this actor's ``alsoKnownAs``; followers hear it."""
    acting.require("owner")
    if old.id == acting.actor.id:
        raise UsageError("an account is not its own alias")
    aliases = list(acting.actor.also_known_as or [])
    if old.uri not in aliases:
        if len(aliases) >= MAX_ALIASES:
            raise UsageError(f"at most {MAX_ALIASES} aliases")
        aliases.append(old.uri)
    async with hub.db.write() as conn:
        await actor_store.update_actor(conn, acting.actor.id, {"also_known_as": aliases})
        await put_jobs(conn, [job_row("outbox.publish", {"verb": "update_actor", "actor_id": acting.actor.id,
                                                         "activity_id": new_id()})])
        await audit(conn, acting, "actor.alias", alias=old.uri)
    hub.wake()
    return aliases
