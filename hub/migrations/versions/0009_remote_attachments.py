"""attachments another server keeps: a link and a description, no local copy

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attachments') as batch:
        batch.alter_column('size', existing_type=sa.Integer(), nullable=True)
        batch.alter_column('sha256', existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column('remote_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('description', sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM attachments WHERE sha256 IS NULL")
    with op.batch_alter_table('attachments') as batch:
        batch.drop_column('description')
        batch.drop_column('remote_url')
        batch.alter_column('sha256', existing_type=sa.String(length=64), nullable=False)
        batch.alter_column('size', existing_type=sa.Integer(), nullable=False)
