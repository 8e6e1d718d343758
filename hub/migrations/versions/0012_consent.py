"""consent-based data sharing: profile items, grants (both sides), receipts, the access log

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 17:13:40.366354
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_grants',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.String(length=26), nullable=False),
    sa.Column('organization_id', sa.String(length=26), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('conversation_uri', sa.String(length=2048), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('offer_uri', sa.String(length=2048), nullable=True),
    sa.Column('capability_hash', sa.String(length=64), nullable=True),
    sa.Column('sealed_capability', sa.Text(), nullable=True),
    sa.Column('data_url', sa.String(length=2048), nullable=True),
    sa.Column('decided_by_id', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['accounts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri', 'side', name='uq_consent_grants_uri_side')
    )
    with op.batch_alter_table('consent_grants', schema=None) as batch_op:
        batch_op.create_index('ix_consent_grants_pair', ['customer_id', 'organization_id'], unique=False)

    op.create_table('profile_items',
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('actor_id', 'name')
    )
    op.create_table('consent_reads',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('grant_id', sa.String(length=26), nullable=False),
    sa.Column('customer_id', sa.String(length=26), nullable=False),
    sa.Column('reader_uri', sa.String(length=2048), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['actors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_reads', schema=None) as batch_op:
        batch_op.create_index('ix_consent_reads_customer', ['customer_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_reads_grant_id'), ['grant_id'], unique=False)

    op.create_table('consent_receipts',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('grant_id', sa.String(length=26), nullable=False),
    sa.Column('receipt_id', sa.String(length=2048), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id', 'receipt_id', name='uq_consent_receipts')
    )


def downgrade() -> None:
    op.drop_table('consent_receipts')
    with op.batch_alter_table('consent_reads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_reads_grant_id'))
        batch_op.drop_index('ix_consent_reads_customer')

    op.drop_table('consent_reads')
    op.drop_table('profile_items')
    with op.batch_alter_table('consent_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_grants_pair')

    op.drop_table('consent_grants')
