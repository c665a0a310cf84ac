"""Receivers of Django's task signals for tests/test_django.py: each delivery is one JSON line
appended to the file named by SHOP_SIGNALS_FILE (nothing without it), from whichever process
sends it (the test's, a daemon's, a daemon's child process)."""

import json
import os

try:
    from django.tasks.signals import task_enqueued, task_finished, task_started  # Django 6
except ImportError:
    from django_tasks.signals import task_enqueued, task_finished, task_started

from django.dispatch import receiver

LOUD = "shop.edge_tasks.shout"  # the task whose signals make a receiver raise


@receiver(task_enqueued)
@receiver(task_started)
@receiver(task_finished)
def record(sender, task_result, signal, **kwargs):
    path = os.environ.get("SHOP_SIGNALS_FILE")
    if not path:
        return
    names = {task_enqueued: "enqueued", task_started: "started", task_finished: "finished"}
    line = {
        "signal": names[signal],
        "sender": f"{sender.__module__}.{sender.__qualname__}",
        "pid": os.getpid(),
        "id": task_result.id,
        "task": task_result.task.module_path,
        "status": str(task_result.status),
        "attempts": task_result.attempts,
        "enqueued_at": task_result.enqueued_at is not None,
        "finished_at": task_result.finished_at is not None,
        "errors": [e.exception_class_path for e in task_result.errors],
        "final": kwargs.get("final"),
    }
    if task_result.status == "SUCCESSFUL":
        line["return_value"] = task_result.return_value
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


@receiver(task_enqueued)
@receiver(task_started)
@receiver(task_finished)
def explode(sender, task_result, **kwargs):
    if task_result.task.module_path == LOUD:
        raise RuntimeError("the error tracker is down")
