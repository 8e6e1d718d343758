"""hashtags an actor follows from an app

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 22:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('followed_tags',
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('actor_id', 'tag')
    )


def downgrade() -> None:
    op.drop_table('followed_tags')
