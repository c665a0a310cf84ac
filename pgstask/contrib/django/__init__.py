"""pgstask as Django's task backend (docs/django.md): ``@task`` functions of ``django.tasks``
(Django 6) or of the ``django-tasks`` backport (Django 5.2) enqueued as pgstask tasks, run by
``pgstask daemon`` or ``manage.py pgstask_daemon``, their results read back as Django's
``TaskResult``.

- ``backend.PgstaskBackend``: the backend named in ``TASKS`` (enqueue, get_result);
- ``config``: its ``OPTIONS`` and the mapping of Django's task fields onto pgstask's;
- ``results``: a pgstask row as a Django ``TaskResult``;
- ``worker``: the pgstask workers that run the functions (one per queue, ``django:<queue>``);
- ``signals``: Django's task signals, sent by the backend and the workers;
- ``apps`` and ``management``: the Django app with ``pgstask_daemon`` and ``pgstask_migrate``.

Needs the ``django`` extra (``pip install "pgstask[django]"``).
"""

from __future__ import annotations

from pgstask.contrib.django.backend import PgstaskBackend

__all__ = ["PgstaskBackend"]
