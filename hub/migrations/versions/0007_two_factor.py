"""two-factor sign-in: an account's TOTP secret, and sessions waiting for the code

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
    with op.batch_alter_table('web_sessions') as batch:
        batch.add_column(sa.Column('pending', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('web_sessions') as batch:
        batch.drop_column('pending')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('totp_secret')
