"""A stored model version carries its summary (corpus, held-out perplexity, when trained), so that a host that has not
fetched it (the scheduler's, while workers train) can still say what serves.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("summary", sa.JSON(), nullable=True))  # ALTER TABLE: no copy


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("summary")
