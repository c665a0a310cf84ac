"""Schedules: ``s_schedules`` (cron expressions in a time zone) and ``s_schedule_runs`` (one row
per fired slot, its primary key the guarantee of one task per slot).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from pgstask.migrate import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "up")


def downgrade() -> None:
    run_sql_file(__file__, "down")
