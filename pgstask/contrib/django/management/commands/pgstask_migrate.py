"""``manage.py pgstask_migrate``: ``pgstask migrate`` on the database of a pgstask backend of
``TASKS`` (``--backend``, default ``"default"``), so that a deploy that runs ``manage.py
migrate`` runs this beside it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgstask import migrate
from pgstask.contrib.django import database
from pgstask.contrib.django.management.commands.pgstask_daemon import backend_config
from pgstask.errors import PgstaskError


class Command(BaseCommand):
    """Create or upgrade pgstask's tables."""

    help = "Create or upgrade pgstask's tables in the database of a pgstask task backend."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--backend``: the ``TASKS`` alias whose database to migrate."""
        parser.add_argument(
            "--backend", default="default", help="the TASKS alias whose database to migrate"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run pgstask's migrations to the head revision."""
        try:
            migrate.upgrade(database.dsn_of(backend_config(options["backend"])))
        except PgstaskError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("pgstask's tables are up to date")
