"""what a message said before each edit: the history apps show

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 22:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_versions',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('message_id', sa.String(length=26), nullable=False),
    sa.Column('content_html', sa.Text(), nullable=False),
    sa.Column('content_text', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('sensitive', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('message_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_versions_message_id'), ['message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_versions_message_id'))

    op.drop_table('message_versions')
