"""Schedules: meeting rules, agenda, documents, notices, calendar feeds, absence requests.

Adds the schedule columns of ``meetings`` (rule, occurrence, touched, move reason, actual
times, announcement state) and ``organisations.email`` (where a committee gets notices).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:20:54.338021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cell_schedule_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("min_regular_minutes", sa.Integer(), nullable=True),
        sa.Column("min_combined_minutes", sa.Integer(), nullable=True),
        sa.Column("basis", sa.String(length=300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"],
            ["organisations.id"],
            name=op.f("fk_cell_schedule_settings_cell_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_schedule_settings")),
        sa.UniqueConstraint("cell_id", name=op.f("uq_cell_schedule_settings_cell_id")),
    )
    op.create_table(
        "meeting_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
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
        sa.Column("rrule", sa.String(length=300), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("combined", sa.Boolean(), nullable=False),
        sa.Column("committee_days_before", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["organisations.id"], name=op.f("fk_meeting_rules_cell_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_rules")),
    )
    with op.batch_alter_table("meeting_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_rules_cell_id"), ["cell_id"], unique=False)

    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_calendar_feeds_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_calendar_feeds_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "absence_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="absencestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["accounts.id"],
            name=op.f("fk_absence_requests_decided_by_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_absence_requests_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_absence_requests_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_absence_requests")),
        sa.UniqueConstraint(
            "meeting_id", "member_id", name=op.f("uq_absence_requests_meeting_id_member_id")
        ),
    )
    with op.batch_alter_table("absence_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_absence_requests_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_absence_requests_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "agenda_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("in_person_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_agenda_items_meeting_id_meetings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_items")),
    )
    with op.batch_alter_table("agenda_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agenda_items_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_status", sa.String(length=12), nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_notices_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_notices_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_notices_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("key", name=op.f("uq_notices_key")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_email_status"), ["email_status"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notices_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "meeting_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("agenda_item_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_name", sa.String(length=100), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agenda_item_id"],
            ["agenda_items.id"],
            name=op.f("fk_meeting_documents_agenda_item_id_agenda_items"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_meeting_documents_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["accounts.id"],
            name=op.f("fk_meeting_documents_uploaded_by_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_documents")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_meeting_documents_stored_name")),
    )
    with op.batch_alter_table("meeting_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_documents_agenda_item_id"), ["agenda_item_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_meeting_documents_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "document_accesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_document_accesses_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["meeting_documents.id"],
            name=op.f("fk_document_accesses_document_id_meeting_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_document_accesses_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_accesses")),
    )
    with op.batch_alter_table("document_accesses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_document_accesses_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_document_accesses_document_id"), ["document_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_document_accesses_member_id"), ["member_id"], unique=False
        )

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("occurrence_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("touched", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("moved_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("actual_start_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("actual_end_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("announced_sequence", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_meetings_rule_id"), ["rule_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_meetings_rule_id_meeting_rules"), "meeting_rules", ["rule_id"], ["id"]
        )

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("email")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_meetings_rule_id_meeting_rules"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_meetings_rule_id"))
        batch_op.drop_column("announced_at")
        batch_op.drop_column("announced_sequence")
        batch_op.drop_column("actual_end_at")
        batch_op.drop_column("actual_start_at")
        batch_op.drop_column("moved_reason")
        batch_op.drop_column("touched")
        batch_op.drop_column("occurrence_on")
        batch_op.drop_column("rule_id")

    with op.batch_alter_table("document_accesses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_accesses_member_id"))
        batch_op.drop_index(batch_op.f("ix_document_accesses_document_id"))
        batch_op.drop_index(batch_op.f("ix_document_accesses_account_id"))

    op.drop_table("document_accesses")
    with op.batch_alter_table("meeting_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_documents_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_documents_agenda_item_id"))

    op.drop_table("meeting_documents")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_notices_member_id"))
        batch_op.drop_index(batch_op.f("ix_notices_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_notices_email_status"))

    op.drop_table("notices")
    with op.batch_alter_table("agenda_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agenda_items_meeting_id"))

    op.drop_table("agenda_items")
    with op.batch_alter_table("absence_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_absence_requests_member_id"))
        batch_op.drop_index(batch_op.f("ix_absence_requests_meeting_id"))

    op.drop_table("absence_requests")
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_feeds_member_id"))

    op.drop_table("calendar_feeds")
    with op.batch_alter_table("meeting_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_rules_cell_id"))

    op.drop_table("meeting_rules")
    op.drop_table("cell_schedule_settings")
