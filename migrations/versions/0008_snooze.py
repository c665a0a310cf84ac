"""Snoozes: ``s_tasks.snoozes`` counts the times an action raised ``Snooze`` (the attempt given
back each time), so that a worker can limit them (``max_snoozes``) and an action can read them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from pgstask.migrate import run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "up")


def downgrade() -> None:
    run_sql_file(__file__, "down")
