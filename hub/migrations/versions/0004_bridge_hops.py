"""bridge hops: how many bridges an inbound message had passed, so that what the
hub sends on carries one more and a loop between bridges ends

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bridge_messages') as batch:
        batch.add_column(sa.Column('hops', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('bridge_messages') as batch:
        batch.drop_column('hops')
