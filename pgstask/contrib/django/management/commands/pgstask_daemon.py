"""``manage.py pgstask_daemon``: ``pgstask daemon`` for this Django project.

It runs the workers of ``pgstask.contrib.django.worker`` (the queues of ``--queue``, else every
queue of the pgstask backends in ``TASKS``) besides any others installed or named in
``PGSTASK_WORKERS``, on pgstask's database of the backend ``--backend`` (default
``"default"``) unless ``PGSTASK_DSN`` or ``--dsn`` names one. Every option after ``--`` goes to
``pgstask daemon`` as it is (``--concurrency 4``, …). SIGTERM/SIGINT stop it as they stop
``pgstask daemon``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from pgstask.cli import main
from pgstask.contrib.django import database
from pgstask.contrib.django.backend import PgstaskBackend
from pgstask.contrib.django.config import BackendConfig
from pgstask.errors import ConfigurationError

WORKERS = "pgstask.contrib.django.worker"
QUEUES_VARIABLE = "PGSTASK_DJANGO_QUEUES"  # read by that module


def backend_config(alias: str) -> BackendConfig:
    """The settings of the pgstask backend ``alias`` of ``TASKS``."""
    tasks: dict[str, Any] = getattr(settings, "TASKS", {}) or {}
    params = tasks.get(alias) or {}
    backend = import_string(params.get("BACKEND", "builtins.object"))
    if not (isinstance(backend, type) and issubclass(backend, PgstaskBackend)):
        raise CommandError(
            f"TASKS has no backend {alias!r} whose BACKEND is "
            "'pgstask.contrib.django.PgstaskBackend'; name one with --backend"
        )
    try:
        return BackendConfig.from_params(alias, params)
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    """Run pgstask's daemon with the workers of this project's task functions."""

    help = "Run Django's tasks (and pgstask's other workers) until SIGTERM/SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--queue`` (repeatable), ``--backend``, then ``pgstask daemon``'s own options."""
        parser.add_argument(
            "--queue",
            action="append",
            default=[],
            help="serve this queue (repeatable; default: every queue of the pgstask backends)",
        )
        parser.add_argument(
            "--backend", default="default", help="the TASKS alias whose database to use"
        )
        parser.add_argument(
            "pgstask_args", nargs=argparse.REMAINDER, help="options of `pgstask daemon`"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Set the environment ``pgstask daemon`` reads, then run it."""
        backend = backend_config(options["backend"])
        queues = options["queue"]
        if queues:
            os.environ[QUEUES_VARIABLE] = ",".join(queues)
        try:
            if not os.environ.get("PGSTASK_DSN"):
                os.environ["PGSTASK_DSN"] = database.dsn_of(backend)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        modules = [m for m in os.environ.get("PGSTASK_WORKERS", "").split(",") if m.strip()]
        os.environ["PGSTASK_WORKERS"] = ",".join([*modules, WORKERS])
        extra = [a for a in options["pgstask_args"] if a != "--"]
        status = main(["daemon", *extra])
        if status:
            raise SystemExit(status)
