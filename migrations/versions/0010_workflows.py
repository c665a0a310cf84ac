"""Workflows: dependencies between tasks (status 20 waiting, ``s_task_deps``, the release of
children when a parent ends), ``s_tasks.awaited`` for ``Client.wait``, ``s_tasks.notify``, and
``pgstask_enqueue(…, depends_on, on_parent_failure, notify)``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from pgstask.migrate import run_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "up")


def downgrade() -> None:
    run_sql_file(__file__, "down")
