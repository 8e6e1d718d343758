"""conversations and the inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

FTS_UP = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content_text, content='messages', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO messages_fts(rowid, content_text) SELECT rowid, content_text FROM messages",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content_text) VALUES (new.rowid, new.content_text); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content_text) VALUES ('delete', old.rowid, old.content_text); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content_text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content_text) VALUES ('delete', old.rowid, old.content_text); "
    "INSERT INTO messages_fts(rowid, content_text) VALUES (new.rowid, new.content_text); END",
]
FTS_DOWN = [
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TABLE IF EXISTS messages_fts",
]


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('account_id', sa.String(length=26), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_api_tokens_account_id'), 'api_tokens', ['account_id'], unique=False)

    op.create_table('canned_responses',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('actor_id', 'name', name='uq_canned_name')
    )
    op.create_table('webhooks',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_webhooks_actor_id'), 'webhooks', ['actor_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('account_id', sa.String(length=26), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_actor', 'audit_log', ['actor_id', 'id'], unique=False)

    op.create_table('conversation_aliases',
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('uri')
    )
    op.create_index(op.f('ix_conversation_aliases_conversation_id'), 'conversation_aliases', ['conversation_id'], unique=False)

    op.create_table('conversation_participants',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('added_by_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['added_by_id'], ['actors.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'actor_id', name='uq_participants_pair')
    )
    op.create_index(op.f('ix_conversation_participants_actor_id'), 'conversation_participants', ['actor_id'], unique=False)

    op.create_table('conversation_states',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('snoozed_until', sa.DateTime(), nullable=True),
    sa.Column('assignee_id', sa.String(length=26), nullable=True),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('waiting_since', sa.DateTime(), nullable=True),
    sa.Column('first_response_at', sa.DateTime(), nullable=True),
    sa.Column('last_message_at', sa.DateTime(), nullable=False),
    sa.Column('last_message_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['assignee_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'actor_id', name='uq_states_pair')
    )
    op.create_index('ix_states_inbox', 'conversation_states', ['actor_id', 'last_message_at', 'id'], unique=False)
    op.create_index('ix_states_status', 'conversation_states', ['actor_id', 'status', 'last_message_at'], unique=False)
    op.create_index('ix_states_snoozed', 'conversation_states', ['snoozed_until'], unique=False)

    op.create_table('private_notes',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('account_id', sa.String(length=26), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_notes_conversation', 'private_notes', ['conversation_id', 'actor_id'], unique=False)

    op.create_table('conversation_labels',
    sa.Column('state_id', sa.String(length=26), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['state_id'], ['conversation_states.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_id', 'label')
    )
    op.create_index('ix_labels_label', 'conversation_labels', ['label'], unique=False)

    op.create_table('conversation_reads',
    sa.Column('state_id', sa.String(length=26), nullable=False),
    sa.Column('account_id', sa.String(length=26), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['state_id'], ['conversation_states.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_id', 'account_id')
    )
    op.add_column('actors', sa.Column('settings', sa.JSON(), nullable=True))
    op.add_column('actors', sa.Column('implements', sa.JSON(), nullable=True))

    op.add_column('conversations', sa.Column('subject', sa.Text(), nullable=True))
    op.add_column('conversations', sa.Column('visibility', sa.String(length=16), nullable=True))
    op.add_column('conversations', sa.Column('closed_at', sa.DateTime(), nullable=True))
    op.add_column('conversations', sa.Column('last_message_at', sa.DateTime(), nullable=True))

    op.add_column('messages', sa.Column('removed_at', sa.DateTime(), nullable=True))
    op.add_column('messages', sa.Column('account_id', sa.String(length=26), nullable=True))
    op.create_index('ix_messages_conversation_published', 'messages', ['conversation_id', 'published_at'], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        # Full-text search of message text (SQLite FTS5, kept in step by triggers).
        # PostgreSQL gets its own full-text index in a later migration.
        for statement in FTS_UP:
            op.execute(statement)



def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS_DOWN:
            op.execute(statement)
    op.drop_index('ix_messages_conversation_published', table_name='messages')
    op.drop_column('messages', 'account_id')
    op.drop_column('messages', 'removed_at')

    op.drop_column('conversations', 'last_message_at')
    op.drop_column('conversations', 'closed_at')
    op.drop_column('conversations', 'visibility')
    op.drop_column('conversations', 'subject')

    op.drop_column('actors', 'implements')
    op.drop_column('actors', 'settings')

    op.drop_table('conversation_reads')
    op.drop_index('ix_labels_label', table_name='conversation_labels')

    op.drop_table('conversation_labels')
    op.drop_index('ix_notes_conversation', table_name='private_notes')

    op.drop_table('private_notes')
    op.drop_index('ix_states_snoozed', table_name='conversation_states')
    op.drop_index('ix_states_status', table_name='conversation_states')
    op.drop_index('ix_states_inbox', table_name='conversation_states')

    op.drop_table('conversation_states')
    op.drop_index(op.f('ix_conversation_participants_actor_id'), table_name='conversation_participants')

    op.drop_table('conversation_participants')
    op.drop_index(op.f('ix_conversation_aliases_conversation_id'), table_name='conversation_aliases')

    op.drop_table('conversation_aliases')
    op.drop_index('ix_audit_actor', table_name='audit_log')

    op.drop_table('audit_log')
    op.drop_index(op.f('ix_webhooks_actor_id'), table_name='webhooks')

    op.drop_table('webhooks')
    op.drop_table('canned_responses')
    op.drop_index(op.f('ix_api_tokens_account_id'), table_name='api_tokens')

    op.drop_table('api_tokens')
