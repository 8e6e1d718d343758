"""bridges: bridged identities and their claims, the message map, allowed networks
and channels of conversations, reply addresses, raw inbound items, attachments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bridges',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('owner_actor_id', sa.String(length=26), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('secret', sa.Text(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('state_detail', sa.Text(), nullable=True),
    sa.Column('state_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('remote_identities',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=False),
    sa.Column('remote_id', sa.String(length=512), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('claimed_actor_id', sa.String(length=26), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('undeliverable_at', sa.DateTime(), nullable=True),
    sa.Column('undeliverable_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['claimed_actor_id'], ['actors.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network', 'remote_id', name='uq_identities_remote')
    )
    op.create_index(op.f('ix_remote_identities_actor_id'), 'remote_identities', ['actor_id'], unique=False)
    op.create_index(op.f('ix_remote_identities_claimed_actor_id'), 'remote_identities', ['claimed_actor_id'], unique=False)
    op.create_table('conversation_channels',
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('identity_id', sa.String(length=26), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['identity_id'], ['remote_identities.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'identity_id')
    )
    op.create_index('ix_channels_identity', 'conversation_channels', ['identity_id'], unique=False)
    op.create_table('conversation_networks',
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=False),
    sa.Column('origin', sa.Boolean(), nullable=False),
    sa.Column('allowed_by_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['allowed_by_id'], ['actors.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'network')
    )
    op.create_table('identity_claims',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('identity_id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['identity_id'], ['remote_identities.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_identity_claims_identity_id'), 'identity_claims', ['identity_id'], unique=False)
    op.create_table('reply_tokens',
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token'),
    sa.UniqueConstraint('conversation_id', 'actor_id', name='uq_reply_tokens_pair')
    )
    op.create_table('attachments',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('message_id', sa.String(length=26), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_attachments_message_id'), 'attachments', ['message_id'], unique=False)
    op.create_table('bridge_items',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('bridge', sa.String(length=64), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=512), nullable=True),
    sa.Column('recipients', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_bridge_items_status', 'bridge_items', ['bridge', 'status'], unique=False)
    op.create_table('bridge_messages',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=False),
    sa.Column('remote_id', sa.String(length=1000), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=26), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('identity_id', sa.String(length=26), nullable=True),
    sa.Column('edit_count', sa.Integer(), nullable=False),
    sa.Column('txn_id', sa.String(length=26), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['remote_identities.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network', 'remote_id', 'part', name='uq_bridge_messages_remote'),
    sa.UniqueConstraint('txn_id')
    )
    op.create_index(op.f('ix_bridge_messages_message_id'), 'bridge_messages', ['message_id'], unique=False)
    op.add_column('actors', sa.Column('bridge_network', sa.String(length=64), nullable=True))
    op.add_column('messages', sa.Column('flags', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('flags')
    with op.batch_alter_table('actors') as batch:
        batch.drop_column('bridge_network')
    op.drop_index(op.f('ix_bridge_messages_message_id'), table_name='bridge_messages')
    op.drop_table('bridge_messages')
    op.drop_index('ix_bridge_items_status', table_name='bridge_items')
    op.drop_table('bridge_items')
    op.drop_index(op.f('ix_attachments_message_id'), table_name='attachments')
    op.drop_table('attachments')
    op.drop_table('reply_tokens')
    op.drop_index(op.f('ix_identity_claims_identity_id'), table_name='identity_claims')
    op.drop_table('identity_claims')
    op.drop_table('conversation_networks')
    op.drop_index('ix_channels_identity', table_name='conversation_channels')
    op.drop_table('conversation_channels')
    op.drop_index(op.f('ix_remote_identities_claimed_actor_id'), table_name='remote_identities')
    op.drop_index(op.f('ix_remote_identities_actor_id'), table_name='remote_identities')
    op.drop_table('remote_identities')
    op.drop_table('bridges')
