"""``AsyncClient``'s reading of stored files, as ``_client_files`` is ``Client``'s: a task's
newest result file, a file by id, and its bytes chunk by chunk (an async iterator a web
handler hands to a streaming response; one 1 MiB chunk in memory at a time). Storing files
stays with ``Client``: a worker stores its results, and the HTTP API takes uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pgstask._async_base import AsyncClientBase
from pgstask._client_base import _task_id
from pgstask._client_files import complete_file, result_file_of
from pgstask.files import FileInfo, check_read_whole
from pgstask.queries import aio
from pgstask.task import Task


class AsyncClientFiles(AsyncClientBase):
    """The file methods of ``AsyncClient``."""

    async def result_file(self, task: Task | int) -> FileInfo:
        """The newest result file of a task: ``Client.result_file`` (``TaskFileNotFoundError``
        if it has none)."""
        task_id = _task_id(task)
        async with self.connection() as c:
            return result_file_of(task_id, await aio.file_latest(c, task_id=task_id, kind="result"))

    async def file(self, file_id: int) -> FileInfo:
        """A complete stored file by id: ``Client.file`` (``TaskFileNotFoundError`` if there is
        none)."""
        async with self.connection() as c:
            return complete_file(file_id, await aio.file_get(c, id=file_id))

    async def read_file(self, file: FileInfo | int) -> AsyncIterator[bytes]:
        """The bytes of a stored file, chunk by chunk, as ``Client.read_file``: one query per
        chunk on a pooled connection given back in between, so a slow reader holds none.
        ``TaskFileNotFoundError`` for an unknown file id, before the first chunk, or for a file
        deleted while it is read, instead of its last chunks."""
        info = file if isinstance(file, FileInfo) else await self.file(file)
        return self._chunks(info)

    async def _chunks(self, info: FileInfo) -> AsyncIterator[bytes]:
        seq = read = 0
        while True:
            async with self.connection() as c:
                data = await aio.file_chunk(c, file_id=info.id, seq=seq)
            if data is None:
                check_read_whole(info, read)
                return
            yield data
            read += len(data)
            seq += 1
