"""Meeting room: presence intervals and events, chat messages.

Revision ID: 0004
Revises: 0002

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "presence_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "join",
                "reconnect",
                "leave",
                "timeout",
                "removed",
                name="presenceeventkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_presence_events_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_presence_events_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_events")),
    )
    with op.batch_alter_table("presence_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_presence_events_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("participant", sa.String(length=64), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_chat_messages_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"], ["accounts.id"], name=op.f("fk_chat_messages_deleted_by_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_chat_messages_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_chat_messages_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chat_messages_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "presence_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_presence_intervals_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_presence_intervals_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_presence_intervals_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_intervals")),
    )
    with op.batch_alter_table("presence_intervals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_presence_intervals_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_presence_intervals_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("presence_intervals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_presence_intervals_member_id"))
        batch_op.drop_index(batch_op.f("ix_presence_intervals_meeting_id"))

    op.drop_table("presence_intervals")
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_messages_meeting_id"))

    op.drop_table("chat_messages")
    with op.batch_alter_table("presence_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_presence_events_meeting_id"))

    op.drop_table("presence_events")
