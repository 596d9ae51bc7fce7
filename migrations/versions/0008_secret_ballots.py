"""Secret ballots that stay secret from whoever holds the database: a running ballot's online
choices live only in the room's ballot box; the motion keeps which box holds them and how
many ballots it took. Voided ballots are frozen like closed ones.

Revision ID: 0008
Revises: 0006

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.triggers import create_frozen_rows, drop_frozen_rows

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    drop_frozen_rows("motions")
    with op.batch_alter_table("motions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ballot_box", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("ballots_in_box", sa.Integer(), server_default="0", nullable=False))
    # A secret ballot running while the server is upgraded was counted the old way: its
    # ballots are in no box the new code holds, so the room voids it and runs it again.
    op.execute("UPDATE motions SET ballot_box = 'before-0008', "
               "ballots_in_box = (SELECT COUNT(*) FROM ballots_cast WHERE ballots_cast.motion_id = motions.id) "
               "WHERE status = 'open' AND kind = 'secret'")
    create_frozen_rows("motions", "OLD.status <> 'open'")


def downgrade() -> None:
    drop_frozen_rows("motions")
    # The earlier code knows no void motions: they become closed ones without a result.
    op.execute("UPDATE motions SET status = 'closed' WHERE status = 'void'")
    # Dropped in place (SQLite 3.35+ can): rebuilding the table, as batch mode would, breaks
    # on the triggers of secret_tallies that name it and on the rows that refer to it.
    for column in ("ballots_in_box", "ballot_box"):
        op.execute(f"ALTER TABLE motions DROP COLUMN {column}")
    create_frozen_rows("motions", "OLD.status = 'closed'")
