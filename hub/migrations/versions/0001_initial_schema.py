"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('username')
    )
    op.create_table('activities',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('actor_uri', sa.String(length=2048), nullable=False),
    sa.Column('object_uri', sa.String(length=2048), nullable=True),
    sa.Column('local', sa.Boolean(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index(op.f('ix_activities_actor_uri'), 'activities', ['actor_uri'], unique=False)
    op.create_index(op.f('ix_activities_object_uri'), 'activities', ['object_uri'], unique=False)

    op.create_table('actors',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('local', sa.Boolean(), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('icon_url', sa.String(length=2048), nullable=True),
    sa.Column('manually_approves_followers', sa.Boolean(), nullable=False),
    sa.Column('discoverable', sa.Boolean(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=True),
    sa.Column('also_known_as', sa.JSON(), nullable=True),
    sa.Column('moved_to', sa.String(length=2048), nullable=True),
    sa.Column('inbox_uri', sa.String(length=2048), nullable=True),
    sa.Column('outbox_uri', sa.String(length=2048), nullable=True),
    sa.Column('shared_inbox_uri', sa.String(length=2048), nullable=True),
    sa.Column('followers_uri', sa.String(length=2048), nullable=True),
    sa.Column('following_uri', sa.String(length=2048), nullable=True),
    sa.Column('featured_uri', sa.String(length=2048), nullable=True),
    sa.Column('private_key_pem', sa.Text(), nullable=True),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('fetched_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index('ix_actors_domain_username', 'actors', ['domain', 'username'], unique=False)
    op.create_index('ux_actors_local_username', 'actors', ['username'], unique=True, sqlite_where=sa.text('local = 1'), postgresql_where=sa.text('local'))

    op.create_table('hosts',
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('signature_scheme', sa.String(length=16), nullable=True),
    sa.Column('software', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('host')
    )
    op.create_table('inboxes',
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('gone_at', sa.DateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('uri')
    )
    op.create_table('jobs',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=2200), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    op.create_index('ix_jobs_ready', 'jobs', ['state', 'next_try_at'], unique=False)

    op.create_table('blocks',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('blocker_id', sa.String(length=26), nullable=False),
    sa.Column('blocked_id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['blocked_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['blocker_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('blocker_id', 'blocked_id', name='uq_blocks_pair')
    )
    op.create_index(op.f('ix_blocks_blocked_id'), 'blocks', ['blocked_id'], unique=False)
    op.create_index(op.f('ix_blocks_uri'), 'blocks', ['uri'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('owner_id', sa.String(length=26), nullable=True),
    sa.Column('local', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['actors.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_table('follows',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('follower_id', sa.String(length=26), nullable=False),
    sa.Column('followee_id', sa.String(length=26), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['followee_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['follower_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('follower_id', 'followee_id', name='uq_follows_pair')
    )
    op.create_index(op.f('ix_follows_followee_id'), 'follows', ['followee_id'], unique=False)
    op.create_index(op.f('ix_follows_uri'), 'follows', ['uri'], unique=False)

    op.create_table('job_attempts',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('job_id', sa.String(length=26), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_job_attempts_job_id'), 'job_attempts', ['job_id'], unique=False)

    op.create_table('keys',
    sa.Column('key_id', sa.String(length=2048), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_index(op.f('ix_keys_actor_id'), 'keys', ['actor_id'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('account_id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'actor_id', name='uq_memberships_account_actor')
    )
    op.create_index(op.f('ix_memberships_actor_id'), 'memberships', ['actor_id'], unique=False)

    op.create_table('reactions',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('object_uri', sa.String(length=2048), nullable=False),
    sa.Column('content', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index(op.f('ix_reactions_object_uri'), 'reactions', ['object_uri'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('conversation_id', sa.String(length=26), nullable=True),
    sa.Column('in_reply_to_uri', sa.String(length=2048), nullable=True),
    sa.Column('content_html', sa.Text(), nullable=False),
    sa.Column('content_text', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('to_uris', sa.JSON(), nullable=False),
    sa.Column('cc_uris', sa.JSON(), nullable=False),
    sa.Column('mention_uris', sa.JSON(), nullable=False),
    sa.Column('local', sa.Boolean(), nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('remote_id', sa.String(length=2048), nullable=True),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('edited_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index(op.f('ix_messages_actor_id'), 'messages', ['actor_id'], unique=False)
    op.create_index(op.f('ix_messages_conversation_id'), 'messages', ['conversation_id'], unique=False)
    op.create_index(op.f('ix_messages_in_reply_to_uri'), 'messages', ['in_reply_to_uri'], unique=False)

    op.create_table('timeline',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('message_id', sa.String(length=26), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('via_actor_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['via_actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('actor_id', 'message_id', name='uq_timeline_actor_message')
    )
    op.create_index(op.f('ix_timeline_message_id'), 'timeline', ['message_id'], unique=False)



def downgrade() -> None:
    op.drop_index(op.f('ix_timeline_message_id'), table_name='timeline')

    op.drop_table('timeline')
    op.drop_index(op.f('ix_messages_in_reply_to_uri'), table_name='messages')
    op.drop_index(op.f('ix_messages_conversation_id'), table_name='messages')
    op.drop_index(op.f('ix_messages_actor_id'), table_name='messages')

    op.drop_table('messages')
    op.drop_index(op.f('ix_reactions_object_uri'), table_name='reactions')

    op.drop_table('reactions')
    op.drop_index(op.f('ix_memberships_actor_id'), table_name='memberships')

    op.drop_table('memberships')
    op.drop_index(op.f('ix_keys_actor_id'), table_name='keys')

    op.drop_table('keys')
    op.drop_index(op.f('ix_job_attempts_job_id'), table_name='job_attempts')

    op.drop_table('job_attempts')
    op.drop_index(op.f('ix_follows_uri'), table_name='follows')
    op.drop_index(op.f('ix_follows_followee_id'), table_name='follows')

    op.drop_table('follows')
    op.drop_table('conversations')
    op.drop_index(op.f('ix_blocks_uri'), table_name='blocks')
    op.drop_index(op.f('ix_blocks_blocked_id'), table_name='blocks')

    op.drop_table('blocks')
    op.drop_index('ix_jobs_ready', table_name='jobs')

    op.drop_table('jobs')
    op.drop_table('inboxes')
    op.drop_table('hosts')
    op.drop_index('ux_actors_local_username', table_name='actors')
    op.drop_index('ix_actors_domain_username', table_name='actors')

    op.drop_table('actors')
    op.drop_index(op.f('ix_activities_object_uri'), table_name='activities')
    op.drop_index(op.f('ix_activities_actor_uri'), table_name='activities')

    op.drop_table('activities')
    op.drop_table('accounts')
