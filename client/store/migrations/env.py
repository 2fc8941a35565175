"""Alembic environment of the local store.

Run only through :mod:`pathloop.client.store.db`, which passes an open connection (inside a
transaction it owns) in ``config.attributes["connection"]``; there is no ini file, no
logging set-up and no offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from pathloop.client.store.models import Base


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run the store's migrations through pathloop.client.store.db")
_run_online(_connection)
