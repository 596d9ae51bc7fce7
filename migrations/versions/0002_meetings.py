"""Meetings, online-pilot approvals and remote invitations.

Revision ID: 0002
Revises: 0001

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "regular",
                "thematic",
                "extraordinary",
                "committee",
                name="meetingkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("combined_thematic", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_minutes", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "open",
                "closed",
                "cancelled",
                name="meetingstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_reason", sa.Text(), nullable=True),
        sa.Column("remote_open", sa.Boolean(), nullable=False),
        sa.Column("lobby", sa.Boolean(), nullable=False),
        sa.Column("uid", sa.String(length=80), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["organisations.id"], name=op.f("fk_meetings_cell_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["supervisor_id"],
            ["organisations.id"],
            name=op.f("fk_meetings_supervisor_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
        sa.UniqueConstraint("uid", name=op.f("uq_meetings_uid")),
    )
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meetings_cell_id"), ["cell_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_meetings_starts_at"), ["starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_meetings_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_meetings_supervisor_id"), ["supervisor_id"], unique=False
        )

    op.create_table(
        "pilot_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("decision_number", sa.String(length=100), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("approving_org_id", sa.Integer(), nullable=True),
        sa.Column("approving_body", sa.String(length=300), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approving_org_id"],
            ["organisations.id"],
            name=op.f("fk_pilot_approvals_approving_org_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["organisations.id"], name=op.f("fk_pilot_approvals_cell_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_approvals")),
    )
    with op.batch_alter_table("pilot_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pilot_approvals_cell_id"), ["cell_id"], unique=False)

    op.create_table(
        "meeting_remote_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_remote_invites_meeting_id_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_meeting_remote_invites_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_remote_invites")),
        sa.UniqueConstraint(
            "meeting_id", "member_id", name=op.f("uq_meeting_remote_invites_meeting_id_member_id")
        ),
    )
    with op.batch_alter_table("meeting_remote_invites", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_remote_invites_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_meeting_remote_invites_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("meeting_remote_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_remote_invites_member_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_remote_invites_meeting_id"))

    op.drop_table("meeting_remote_invites")
    with op.batch_alter_table("pilot_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pilot_approvals_cell_id"))

    op.drop_table("pilot_approvals")
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meetings_supervisor_id"))
        batch_op.drop_index(batch_op.f("ix_meetings_status"))
        batch_op.drop_index(batch_op.f("ix_meetings_starts_at"))
        batch_op.drop_index(batch_op.f("ix_meetings_cell_id"))

    op.drop_table("meetings")
