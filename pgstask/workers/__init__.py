"""Workers: ``BaseWorker``, action resolution, discovery and the example workers."""

from pgstask.workers.base import BaseWorker

__all__ = ["BaseWorker"]
