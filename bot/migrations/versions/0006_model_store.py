"""Models travel through the database: finished model versions, packed and content-addressed, and the one that serves.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model", "sha256", name=op.f("uq_model_versions_model")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The content is a tar of already-compressed or incompressible files: TOAST's compression would only cost
        # time, and uncompressed out-of-line storage lets substr() read a slice without reading the whole value.
        op.execute("ALTER TABLE model_versions ALTER COLUMN content SET STORAGE EXTERNAL")
    op.create_table(
        "serving_models",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["model", "sha256"], ["model_versions.model", "model_versions.sha256"],
                                name=op.f("fk_serving_models_model_model_versions")),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_serving_models")),
    )


def downgrade() -> None:
    op.drop_table("serving_models")
    op.drop_table("model_versions")
