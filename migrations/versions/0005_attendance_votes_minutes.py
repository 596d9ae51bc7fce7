"""Attendance roster, amendments and dues; votes (open and secret); minutes and their versions.

Revision ID: 0005
Revises: 0004

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.triggers import create_frozen_rows, drop_frozen_rows

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column(
            "standing",
            sa.Enum(
                "official",
                "probationary",
                "attached",
                "exempt",
                "transferred_out",
                "suspended",
                name="standing",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "member_status",
            sa.Enum("official", "probationary", name="memberstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("expected", sa.Boolean(), nullable=False),
        sa.Column("may_vote", sa.Boolean(), nullable=False),
        sa.Column("in_roll", sa.Boolean(), nullable=False),
        sa.Column("away", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "unmarked",
                "present",
                "absent",
                "not_expected",
                name="attendancestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "mode",
            sa.Enum("in_person", "online", name="attendancemode", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column("excused", sa.Boolean(), nullable=True),
        sa.Column(
            "reason_category",
            sa.Enum(
                "illness",
                "work",
                "family",
                "away",
                "other",
                name="reasoncategory",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("online_minutes", sa.Integer(), nullable=True),
        sa.Column("first_join", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_leave", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suggestion", sa.String(length=10), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["accounts.id"], name=op.f("fk_attendance_decided_by_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_attendance_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_attendance_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance")),
        sa.UniqueConstraint(
            "meeting_id", "member_id", name=op.f("uq_attendance_meeting_id_member_id")
        ),
    )
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attendance_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attendance_member_id"), ["member_id"], unique=False)

    op.create_table(
        "dues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "paid_at_meeting",
                "paid_transfer",
                "unpaid",
                name="duesstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["organisations.id"], name=op.f("fk_dues_cell_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_dues_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_dues_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["accounts.id"], name=op.f("fk_dues_recorded_by_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dues")),
        sa.UniqueConstraint("member_id", "month", name=op.f("uq_dues_member_id_month")),
    )
    with op.batch_alter_table("dues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dues_cell_id"), ["cell_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dues_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dues_month"), ["month"], unique=False)

    op.create_table(
        "minutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("chair_name", sa.String(length=200), nullable=True),
        sa.Column("taker_name", sa.String(length=200), nullable=True),
        sa.Column("chair_member_id", sa.Integer(), nullable=True),
        sa.Column("taker_member_id", sa.Integer(), nullable=True),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column("guests", sa.Text(), nullable=True),
        sa.Column(
            "items",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("other", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("taker_confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("taker_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taker_confirmed_revision", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["chair_member_id"], ["members.id"], name=op.f("fk_minutes_chair_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_minutes_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["taker_confirmed_by_id"],
            ["accounts.id"],
            name=op.f("fk_minutes_taker_confirmed_by_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["taker_member_id"], ["members.id"], name=op.f("fk_minutes_taker_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["accounts.id"], name=op.f("fk_minutes_updated_by_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minutes")),
        sa.UniqueConstraint("meeting_id", name=op.f("uq_minutes_meeting_id")),
    )
    op.create_table(
        "minutes_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chair_confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("taker_confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("taker_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["chair_confirmed_by_id"],
            ["accounts.id"],
            name=op.f("fk_minutes_versions_chair_confirmed_by_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_minutes_versions_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["taker_confirmed_by_id"],
            ["accounts.id"],
            name=op.f("fk_minutes_versions_taker_confirmed_by_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minutes_versions")),
        sa.UniqueConstraint(
            "meeting_id", "version", name=op.f("uq_minutes_versions_meeting_id_version")
        ),
    )
    with op.batch_alter_table("minutes_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_minutes_versions_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "motions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("open", "secret", name="votekind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("open", "closed", name="motionstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("in_person_agree", sa.Integer(), nullable=False),
        sa.Column("in_person_disagree", sa.Integer(), nullable=False),
        sa.Column("in_person_abstain", sa.Integer(), nullable=False),
        sa.Column("in_person_voters", sa.Integer(), nullable=False),
        sa.Column("denominator", sa.Integer(), nullable=True),
        sa.Column("agree", sa.Integer(), nullable=True),
        sa.Column("disagree", sa.Integer(), nullable=True),
        sa.Column("abstain", sa.Integer(), nullable=True),
        sa.Column("voters_present", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_motions_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_id"], ["accounts.id"], name=op.f("fk_motions_opened_by_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_motions")),
    )
    with op.batch_alter_table("motions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_motions_meeting_id"), ["meeting_id"], unique=False)

    op.create_table(
        "attendance_amendments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column(
            "before",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "after",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["by_id"], ["accounts.id"], name=op.f("fk_attendance_amendments_by_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_attendance_amendments_meeting_id_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["attendance.id"],
            name=op.f("fk_attendance_amendments_record_id_attendance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_amendments")),
    )
    with op.batch_alter_table("attendance_amendments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attendance_amendments_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attendance_amendments_record_id"), ["record_id"], unique=False
        )

    op.create_table(
        "ballots_cast",
        sa.Column("motion_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_ballots_cast_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["motion_id"], ["motions.id"], name=op.f("fk_ballots_cast_motion_id_motions")
        ),
        sa.PrimaryKeyConstraint("motion_id", "member_id", name=op.f("pk_ballots_cast")),
    )
    op.create_table(
        "open_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("motion_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column(
            "choice",
            sa.Enum("agree", "disagree", "abstain", name="choice", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_open_votes_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["motion_id"], ["motions.id"], name=op.f("fk_open_votes_motion_id_motions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_votes")),
        sa.UniqueConstraint(
            "motion_id", "member_id", name=op.f("uq_open_votes_motion_id_member_id")
        ),
    )
    with op.batch_alter_table("open_votes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_open_votes_motion_id"), ["motion_id"], unique=False)

    op.create_table(
        "secret_tallies",
        sa.Column("motion_id", sa.Integer(), nullable=False),
        sa.Column(
            "choice",
            sa.Enum("agree", "disagree", "abstain", name="choice", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["motion_id"], ["motions.id"], name=op.f("fk_secret_tallies_motion_id_motions")
        ),
        sa.PrimaryKeyConstraint("motion_id", "choice", name=op.f("pk_secret_tallies")),
    )

    # Adopted minutes and closed votes are never edited in place (ARCHITECTURE.md).
    create_frozen_rows("minutes_versions")
    create_frozen_rows("motions", "OLD.status = 'closed'")
    create_frozen_rows(
        "secret_tallies",
        "EXISTS (SELECT 1 FROM motions WHERE motions.id = OLD.motion_id AND motions.status = 'closed')",
    )


def downgrade() -> None:
    drop_frozen_rows("secret_tallies")
    drop_frozen_rows("motions")
    drop_frozen_rows("minutes_versions")

    op.drop_table("secret_tallies")
    with op.batch_alter_table("open_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_open_votes_motion_id"))

    op.drop_table("open_votes")
    op.drop_table("ballots_cast")
    with op.batch_alter_table("attendance_amendments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_amendments_record_id"))
        batch_op.drop_index(batch_op.f("ix_attendance_amendments_meeting_id"))

    op.drop_table("attendance_amendments")
    with op.batch_alter_table("motions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_motions_meeting_id"))

    op.drop_table("motions")
    with op.batch_alter_table("minutes_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_minutes_versions_meeting_id"))

    op.drop_table("minutes_versions")
    op.drop_table("minutes")
    with op.batch_alter_table("dues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dues_month"))
        batch_op.drop_index(batch_op.f("ix_dues_member_id"))
        batch_op.drop_index(batch_op.f("ix_dues_cell_id"))

    op.drop_table("dues")
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_member_id"))
        batch_op.drop_index(batch_op.f("ix_attendance_meeting_id"))

    op.drop_table("attendance")
