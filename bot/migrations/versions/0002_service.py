"""The service: claims and retries on candidates, bot states, job runs, the scheduler's lease and job table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_candidates_bot_status", ["bot", "status"])
        batch.create_index("ix_candidates_bot_claimed_at", ["bot", "claimed_at"])
    # Candidates approved before this revision keep their order: by when they were last changed.
    op.execute("UPDATE candidates SET approved_at = updated_at WHERE status = 'approved'")
    op.create_table(
        "bot_states",
        sa.Column("bot", sa.String(length=64), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("post_not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("bot", name=op.f("pk_bot_states")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("bot", sa.String(length=64), nullable=False),
        sa.Column("job", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_bot_job", "job_runs", ["bot", "job", "id"])
    op.create_table(
        "service_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_lease")),
    )
    op.create_table(  # APScheduler 3's SQLAlchemyJobStore table, exactly as it would create it
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index(op.f("ix_apscheduler_jobs_next_run_time"), "apscheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("service_lease")
    op.drop_table("job_runs")
    op.drop_table("bot_states")
    with op.batch_alter_table("candidates") as batch:
        batch.drop_index("ix_candidates_bot_claimed_at")
        batch.drop_index("ix_candidates_bot_status")
        batch.drop_column("retry_at")
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
        batch.drop_column("approved_at")
