"""Alembic environment: migrations always run on a connection the hub hands in
(``hub.db.migrate``), never on a URL read here, so there is one source of
configuration."""

from alembic import context

from hub.migrations.env_names import include_name
from hub.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` run by hand
    raise SystemExit("run migrations with `roundtable migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
