"""Initial schema: tasks, workers, progress, logs, daemons, wake-up trigger, enqueue function.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from pgstask.migrate import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "up")


def downgrade() -> None:
    run_sql_file(__file__, "down")
