"""The access epoch (issue 18): one counter that moves with every change a meeting room's access
decision depends on, so that the join path may keep decisions while it stands still.

Revision ID: 0009a
Revises: 0008

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009a"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "access_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_epoch")),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("access_epoch")
