"""Settings of the example project of docs/django.md (tests/test_django.py runs it)."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-the-example")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "testserver"]
ROOT_URLCONF = "mysite.urls"
USE_TZ = True
TIME_ZONE = "Europe/Paris"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# pgstask's tables live in this database, beside the project's own: an enqueue joins the
# view's transaction. (psycopg 3: pip install "psycopg[binary]".)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DB_NAME", "shop"),
        "USER": os.environ.get("DB_USER", "shop"),
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
        "HOST": os.environ.get("DB_HOST", "localhost"),
        "PORT": os.environ.get("DB_PORT", "5432"),
    }
}

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "pgstask.contrib.django",  # manage.py pgstask_daemon and pgstask_migrate
    "shop",
]

TASKS = {
    "default": {
        "BACKEND": "pgstask.contrib.django.PgstaskBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"MAX_ATTEMPTS": 3},
    }
}

try:
    import django.tasks  # noqa: F401  (Django 6 and later)
except ImportError:
    INSTALLED_APPS.append("django_tasks")  # the django-tasks backport, for Django 5.2
