"""Flow control: ``s_tasks.concurrency_key``, the limits of ``s_workers`` (class defaults and
settings, validated in the table), ``s_task_starts`` (the window of a rate limit) and
``pgstask_claim_limited``, the claim of the workers that have a limit.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from pgstask.migrate import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "up")


def downgrade() -> None:
    run_sql_file(__file__, "down")
