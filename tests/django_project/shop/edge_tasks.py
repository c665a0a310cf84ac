"""Task functions tests/test_django.py uses beyond the example of docs/django.md."""

try:
    from django.tasks import task  # Django 6
except ImportError:
    from django_tasks import task  # Django 5.2 with the django-tasks backport

from asgiref.sync import sync_to_async
from django.db import connection

from shop.models import Order


def _backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@task
def backend_pid():
    """The PostgreSQL backend of the function's Django connection."""
    Order.objects.count()
    return _backend_pid()


@task
async def async_backend_pid():
    """The same through the async ORM."""
    await Order.objects.acount()
    return await sync_to_async(_backend_pid)()


@task
def shout(text):
    """A task whose signals make a receiver raise (shop.receivers)."""
    return text.upper()
