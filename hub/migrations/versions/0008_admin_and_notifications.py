"""instance administration (operators, domain blocks, reports) and members' email notifications

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('is_admin', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('memberships') as batch:
        batch.add_column(sa.Column('notify_conversations', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('notify_messages', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('notify_assignments', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table('domain_blocks',
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('domain')
    )
    op.create_table('reports',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=True),
    sa.Column('reporter_uri', sa.String(length=2048), nullable=True),
    sa.Column('target_uris', sa.JSON(), nullable=False),
    sa.Column('content', sa.Text(), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by_id', sa.String(length=26), nullable=True),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index('ix_reports_open', 'reports', ['resolved_at', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_reports_open', table_name='reports')
    op.drop_table('reports')
    op.drop_table('domain_blocks')
    with op.batch_alter_table('memberships') as batch:
        batch.drop_column('notify_assignments')
        batch.drop_column('notify_messages')
        batch.drop_column('notify_conversations')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('is_admin')
