"""the hashtags of messages

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 22:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_tags',
    sa.Column('message_id', sa.String(length=26), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', 'tag')
    )
    with op.batch_alter_table('message_tags', schema=None) as batch_op:
        batch_op.create_index('ix_message_tags_tag', ['tag', 'message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_message_tags_tag')

    op.drop_table('message_tags')
