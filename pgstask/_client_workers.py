"""The ``Client``'s workers: listing and reading the registered ones, activating and
deactivating them, their live settings (checked by ``retry`` and ``limits`` before they are
stored), registering the installed classes (``workers.registry``), and the running daemons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from psycopg.types.json import Jsonb

from pgstask import limits, notify, queries
from pgstask._client_base import ClientBase
from pgstask.errors import ConfigurationError, WorkerNotFoundError
from pgstask.retry import RetryPolicy
from pgstask.settings import Settings
from pgstask.workers import registry
from pgstask.workers.base import BaseWorker

Rows = list[dict[str, Any]]
Names = list[str]


class ClientWorkers(ClientBase):
    """The worker and daemon methods of ``Client``."""

    def workers(self, *, active_only: bool = False) -> Rows:
        """The registered workers (``s_workers`` rows), by position; only active ones if asked."""
        with self.connection() as c:
            return queries.worker_list(c, active_only=active_only)

    def worker(self, identifier: str) -> dict[str, Any]:
        """One registered worker's row; ``WorkerNotFoundError`` if there is none."""
        with self.connection() as c:
            row = queries.worker_get(c, identifier=identifier)
        if row is None:
            raise WorkerNotFoundError(identifier)
        return row

    def activate_worker(self, identifier: str) -> dict[str, Any]:
        """Let daemons claim the worker's tasks again (they are told at once)."""
        return self._set_active(identifier, True)

    def deactivate_worker(self, identifier: str) -> dict[str, Any]:
        """Stop daemons claiming the worker's tasks; running ones finish."""
        return self._set_active(identifier, False)

    def _set_active(self, identifier: str, active: bool) -> dict[str, Any]:
        with self.connection() as c:
            row = queries.worker_set_active(c, identifier=identifier, active=active)
        if row is None:
            raise WorkerNotFoundError(identifier)
        return row

    def update_worker_settings(
        self, identifier: str, settings: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge ``settings`` into the worker's stored settings (running daemons reload them).
        A retry setting of ``pgstask.retry`` that no daemon could use is refused
        (``ConfigurationError``), judged with this client's global retry settings, and so is a
        flow-control setting of ``pgstask.limits`` the claim could not enforce, and a ``notify``
        setting that ``pgstask.notify`` refuses or that names a webhook that does not exist."""
        targets = check_settings(self.settings, identifier, settings)
        with self.connection() as c:
            check_webhooks_found(
                identifier, queries.webhook_names(c, names=notify.webhook_names(targets))
            )
            row = queries.worker_update_settings(
                c, identifier=identifier, settings=Jsonb(dict(settings))
            )
        if row is None:
            raise WorkerNotFoundError(identifier)
        return row

    def reload_workers(self, identifier: str | None = None) -> None:
        """Make running daemons reload worker settings and activity now (``identifier`` or all);
        they also do on every heartbeat."""
        with self.connection() as c:
            queries.worker_notify(c, identifier=identifier or "")

    def discover_workers(self, modules: Iterable[str] | None = None) -> Names:
        """Register the installed worker classes; returns the identifiers that were new."""
        classes = registry.discover(self.settings.worker_modules if modules is None else modules)
        rows = self._register(classes)
        return sorted(r["identifier"] for r in rows if r["inserted"])

    def rescan_workers(self, modules: Iterable[str] | None = None) -> Names:
        """Refresh class path and metadata of registered workers; returns those that changed."""
        classes = registry.discover(self.settings.worker_modules if modules is None else modules)
        with self.connection() as c:
            known = {r["identifier"] for r in queries.worker_list(c)}
        rows = self._register({k: v for k, v in classes.items() if k in known})
        return sorted(r["identifier"] for r in rows if not r["inserted"])

    def clean_orphaned_workers(self) -> Names:
        """Delete worker rows whose class can no longer be imported; returns their identifiers.
        Their pending tasks stay pending (and visible in ``stats``)."""
        with self.connection() as c:
            orphans = [
                r["identifier"]
                for r in queries.worker_list(c)
                if registry.load_class(r["class"]) is None
            ]
            return queries.worker_delete_many(c, identifiers=orphans) if orphans else []

    def _register(self, classes: Mapping[str, type[BaseWorker]]) -> Rows:
        with self.connection() as c:
            return registry.register_workers(
                c, classes.values(), active=self.settings.auto_activate
            )

    def daemons(self) -> Rows:
        """The daemons' rows, each with ``alive`` (heartbeat fresher than ``stale_after``)."""
        with self.connection() as c:
            return queries.daemon_list(c, stale_after=self.settings.stale_after)


def check_settings(client: Settings, identifier: str, settings: Any) -> dict[str, list[str]] | None:
    """``update_worker_settings``'s checks without I/O (``client``: the client's settings, whose
    global retry settings judge the worker's); the webhooks its ``notify`` names."""
    if not isinstance(settings, Mapping):
        raise ConfigurationError("worker settings are a JSON object")
    try:
        RetryPolicy(client.retry_base_delay, client.retry_max_delay).for_worker(
            identifier, settings
        )
        limits.check(settings)
        return notify.check_setting(settings, identifier)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def check_webhooks_found(identifier: str, missing: Names) -> None:
    """``ConfigurationError`` naming the first webhook of the worker's ``notify`` that is
    ``missing``."""
    if missing:
        raise ConfigurationError(
            f"worker {identifier!r} setting notify names no webhook {missing[0]!r}: add "
            "it first (`pgstask webhooks add`)"
        )
