"""Web Push: the legacy aesgcm encoding unless the app takes aes128gcm, and the sealed token payloads carry;
bookmarks

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 16:23:29.368522
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bookmarks',
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('message_id', sa.String(length=26), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('actor_id', 'message_id')
    )
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('standard', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('sealed_token', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('sealed_token')
        batch_op.drop_column('standard')

    op.drop_table('bookmarks')
