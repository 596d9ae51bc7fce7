"""Migrations and models agree, and migrating twice changes nothing."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.migrate import current_revision, migrate
from meetings.models import Base


def test_models_match_migrations(database):
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_migrate_again_is_a_no_op(database):
    head = current_revision(database.engine)
    migrate(database.engine)
    assert current_revision(database.engine) == head
