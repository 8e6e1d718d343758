"""the authorization code an OAuth token came from, so that a code used twice revokes its tokens

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 21:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_oauth_tokens_code_hash'), ['code_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_code_hash'))
        batch_op.drop_column('code_hash')
