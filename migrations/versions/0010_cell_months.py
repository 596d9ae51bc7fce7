"""Per-cell monthly figures for the committees' audit (issue 18): what each cell held in each
month, who attended and how soon minutes were adopted, kept up to date in the transaction of
the facts they summarise (``meetings.evaluation.monthly``). Backfilled here from the
meetings, rosters and minutes already stored.

Revision ID: 0010
Revises: 0009a

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meetings.evaluation import monthly
from meetings.foundation.base import UTCDateTime

revision = "0010"
down_revision = "0009a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counts = ["held", "no_roster", "expected", "present", "present_online", "excused", "unexcused", "away_expected",
              "away_online", "minutes_adopted", "minutes_prompt", "minutes_days"]
    columns = [sa.Column("cell_id", sa.Integer(), nullable=False), sa.Column("month", sa.Date(), nullable=False)]
    columns += [sa.Column(name, sa.Integer(), nullable=False) for name in counts]
    for part in ("regular", "thematic"):
        columns += [sa.Column(f"{part}_id", sa.Integer(), nullable=True),
                    sa.Column(f"{part}_on", sa.Date(), nullable=True)]
        if part == "regular":
            columns += [sa.Column("regular_planned_on", sa.Date(), nullable=True),
                        sa.Column("regular_late_days", sa.Integer(), nullable=True)]
        columns.append(sa.Column(f"{part}_minutes", sa.Integer(), nullable=True))
        if part == "regular":
            columns.append(sa.Column("regular_combined", sa.Boolean(), nullable=False))
        columns += [sa.Column(f"{part}_pending_id", sa.Integer(), nullable=True),
                    sa.Column(f"{part}_pending_on", sa.Date(), nullable=True),
                    sa.Column(f"{part}_last_id", sa.Integer(), nullable=True),
                    sa.Column(f"{part}_last_on", sa.Date(), nullable=True),
                    sa.Column(f"{part}_last_at", UTCDateTime(), nullable=True),
                    sa.Column(f"{part}_open", sa.Boolean(), nullable=False)]
    op.create_table(
        "cell_months", *columns,
        sa.ForeignKeyConstraint(["cell_id"], ["organisations.id"], name=op.f("fk_cell_months_cell_id_organisations")),
        sa.PrimaryKeyConstraint("cell_id", "month", name=op.f("pk_cell_months")),
    )
    # The backfill is the rebuild of this revision's code (Core statements on the tables as
    # they stand at 0009), so that the figures start equal to a recomputation.
    monthly.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("cell_months")
