"""Alembic migrations of the local store; the only way its schema is made or changed.

They run programmatically (no ini file) when the store opens: see
:func:`pathloop.client.store.db.ensure_schema`. To write the next revision, change the models,
then let Alembic compare them with a database at head and review what it wrote::

    from alembic import command
    from pathloop.client.store import db

    engine = db.create_store_engine("sqlite:////tmp/pathloop-rev/pathloop.db")
    db.upgrade(engine)
    with engine.begin() as connection:
        command.revision(db.alembic_config(connection), "what changed", autogenerate=True)

Name revisions ``NNNN`` in order (``revision = "0002"``), keep SQLite in mind (batch mode is
on for ALTERs), and extend tests/store/test_store_migrations.py.
"""
