"""Yearly records and audit: flags of the three-month rule, evaluation policies, year-end
reviews and host comments; the audit log becomes hash-chained (existing entries are chained
in id order); indexes for the auditors' roll-ups; notices that are not about a meeting.

Revision ID: 0006
Revises: 0005

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from meetings.foundation.audit import GENESIS, entry_hash
from meetings.foundation.base import JSONType, UTCDateTime
from migrations.triggers import create_append_only, drop_append_only

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_chain',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain'))
    )
    op.create_table('member_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('cell_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=10), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('months', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cell_id'], ['organisations.id'], name=op.f('fk_member_flags_cell_id_organisations')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_flags_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_flags')),
    sa.UniqueConstraint('member_id', 'year', 'rule', name=op.f('uq_member_flags_member_id_year_rule'))
    )
    with op.batch_alter_table('member_flags', schema=None) as batch_op:
        batch_op.create_index('ix_member_flags_cell_id_year', ['cell_id', 'year'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_flags_member_id'), ['member_id'], unique=False)

    op.create_table('evaluation_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('count_thematic', sa.Boolean(), nullable=False),
    sa.Column('review_month', sa.Integer(), nullable=False),
    sa.Column('review_day', sa.Integer(), nullable=False),
    sa.Column('basis', sa.Text(), nullable=True),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_evaluation_policies_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['set_by_id'], ['accounts.id'], name=op.f('fk_evaluation_policies_set_by_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_policies')),
    sa.UniqueConstraint('organisation_id', name=op.f('uq_evaluation_policies_organisation_id'))
    )
    op.create_table('host_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('host_name', sa.String(length=300), nullable=False),
    sa.Column('host_cell_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('file_kind', sa.String(length=10), nullable=True),
    sa.Column('file_stored', sa.String(length=100), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['accounts.id'], name=op.f('fk_host_comments_author_id_accounts')),
    sa.ForeignKeyConstraint(['host_cell_id'], ['organisations.id'], name=op.f('fk_host_comments_host_cell_id_organisations')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_host_comments_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_host_comments'))
    )
    with op.batch_alter_table('host_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_host_comments_member_id'), ['member_id'], unique=False)

    op.create_table('year_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('cell_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'submitted', 'proposed', 'confirmed', name='reviewstatus', native_enum=False, length=20), nullable=False),
    sa.Column('self_form', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('self_grade', sa.Enum('htxsnv', 'httnv', 'htnv', 'khtnv', name='grade', native_enum=False, length=20), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('file_kind', sa.String(length=10), nullable=True),
    sa.Column('file_size', sa.Integer(), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('file_stored', sa.String(length=100), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('proposed_grade', sa.Enum('htxsnv', 'httnv', 'htnv', 'khtnv', name='grade', native_enum=False, length=20), nullable=True),
    sa.Column('proposal_reason', sa.Text(), nullable=True),
    sa.Column('proposal_justification', sa.Text(), nullable=True),
    sa.Column('proposal_figures', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('proposed_by_id', sa.Integer(), nullable=True),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_grade', sa.Enum('htxsnv', 'httnv', 'htnv', 'khtnv', name='grade', native_enum=False, length=20), nullable=True),
    sa.Column('confirmation_note', sa.Text(), nullable=True),
    sa.Column('confirmation_justification', sa.Text(), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirming_org_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cell_id'], ['organisations.id'], name=op.f('fk_year_reviews_cell_id_organisations')),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['accounts.id'], name=op.f('fk_year_reviews_confirmed_by_id_accounts')),
    sa.ForeignKeyConstraint(['confirming_org_id'], ['organisations.id'], name=op.f('fk_year_reviews_confirming_org_id_organisations')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_year_reviews_member_id_members')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['accounts.id'], name=op.f('fk_year_reviews_proposed_by_id_accounts')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['accounts.id'], name=op.f('fk_year_reviews_submitted_by_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_year_reviews')),
    sa.UniqueConstraint('member_id', 'year', name=op.f('uq_year_reviews_member_id_year'))
    )
    with op.batch_alter_table('year_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_year_reviews_cell_id'), ['cell_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_year_reviews_member_id'), ['member_id'], unique=False)

    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.create_index('ix_attendance_figures', ['meeting_id', 'expected', 'status', 'mode', 'excused', 'away'], unique=False)

    # The chain: triggers off while the existing entries get their numbers and hashes.
    drop_append_only("audit_log")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
    seq, head = _chain_existing_entries()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_log_seq"), ["seq"])
    create_append_only("audit_log")
    op.get_bind().execute(sa.text("INSERT INTO audit_chain (id, seq, head_hash) VALUES (1, :seq, :head)"),
                          {"seq": seq, "head": head})

    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.create_index('ix_meetings_cell_id_starts_at', ['cell_id', 'starts_at'], unique=False)

    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('url', sa.String(length=300), nullable=True))
        batch_op.alter_column('meeting_id',
               existing_type=sa.INTEGER(),
               nullable=True)



def downgrade() -> None:
    op.execute("DELETE FROM notices WHERE meeting_id IS NULL")
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.alter_column('meeting_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('url')

    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_index('ix_meetings_cell_id_starts_at')

    drop_append_only("audit_log")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_log_seq'), type_='unique')
        batch_op.drop_column('entry_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
    create_append_only("audit_log")

    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_index('ix_attendance_figures')

    with op.batch_alter_table('year_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_year_reviews_member_id'))
        batch_op.drop_index(batch_op.f('ix_year_reviews_cell_id'))

    op.drop_table('year_reviews')
    with op.batch_alter_table('host_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_host_comments_member_id'))

    op.drop_table('host_comments')
    op.drop_table('evaluation_policies')
    with op.batch_alter_table('member_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_flags_member_id'))
        batch_op.drop_index('ix_member_flags_cell_id_year')

    op.drop_table('member_flags')
    op.drop_table('audit_chain')


def _chain_existing_entries(batch: int = 1000) -> tuple[int, str]:
    """Number the entries written before the chain in id order and hash them exactly as
    meetings.audit does for new ones. Returns the head (last number, last hash)."""
    conn = op.get_bind()
    log = sa.table(
        "audit_log", sa.column("id", sa.Integer()), sa.column("at", UTCDateTime()),
        sa.column("actor_account_id", sa.Integer()), sa.column("actor_label", sa.String()),
        sa.column("actor_address", sa.String()), sa.column("action", sa.String()),
        sa.column("entity_type", sa.String()), sa.column("entity_id", sa.String()),
        sa.column("organisation_id", sa.Integer()), sa.column("before", JSONType), sa.column("after", JSONType),
        sa.column("note", sa.Text()), sa.column("seq", sa.Integer()), sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    update = log.update().where(log.c.id == sa.bindparam("b_id")).values(
        seq=sa.bindparam("b_seq"), prev_hash=sa.bindparam("b_prev"), entry_hash=sa.bindparam("b_hash"))
    seq, prev, last_id = 0, GENESIS, 0
    while True:
        rows = conn.execute(sa.select(log).where(log.c.id > last_id).order_by(log.c.id).limit(batch)).all()
        if not rows:
            return seq, prev
        changes = []
        for row in rows:
            seq += 1
            digest = entry_hash(prev, seq, row.at, row.actor_account_id, row.actor_label, row.actor_address,
                                row.action, row.entity_type, row.entity_id, row.organisation_id, row.before,
                                row.after, row.note)
            changes.append({"b_id": row.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
            prev, last_id = digest, row.id
        conn.execute(update, changes)
