"""The Django app ``pgstask.contrib.django`` (in ``INSTALLED_APPS``): its management commands
``pgstask_daemon`` and ``pgstask_migrate``. It defines no models: pgstask's tables are made by
pgstask's own migrations (``manage.py pgstask_migrate``)."""

from __future__ import annotations

from django.apps import AppConfig


class PgstaskConfig(AppConfig):
    """pgstask's Django app; its label is ``pgstask``."""

    name = "pgstask.contrib.django"
    label = "pgstask"
    verbose_name = "pgstask"
