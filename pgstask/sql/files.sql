-- Files of tasks (results and uploads), stored as 1 MiB bytea chunks.

-- name: file_create
INSERT INTO s_task_files (task_id, identifier, kind, filename, content_type, session_id,
                          total_chunks)
VALUES (%(task_id)s, %(identifier)s, %(kind)s, %(filename)s, %(content_type)s, %(session_id)s,
        %(total_chunks)s)
RETURNING *;

-- name: file_get
SELECT * FROM s_task_files WHERE id = %(id)s;

-- name: file_get_session
-- The file a chunked upload session builds, locked while a chunk is added.
SELECT * FROM s_task_files
 WHERE identifier = %(identifier)s AND session_id = %(session_id)s
   FOR UPDATE;

-- name: file_latest
-- The newest complete file of a kind attached to a task.
SELECT * FROM s_task_files
 WHERE task_id = %(task_id)s AND kind = %(kind)s AND complete
 ORDER BY id DESC
 LIMIT 1;

-- name: file_put_chunk
-- A chunk sent again replaces the first copy (a retried request). The file's updated_at becomes
-- the time of its newest chunk: an upload still under way is never taken for abandoned.
WITH chunk AS (
    INSERT INTO s_task_file_chunks (file_id, seq, data)
    VALUES (%(file_id)s, %(seq)s, %(data)s)
    ON CONFLICT (file_id, seq) DO UPDATE SET data = excluded.data
    RETURNING file_id
)
UPDATE s_task_files f SET updated_at = now() FROM chunk WHERE f.id = chunk.file_id;

-- name: file_chunk_summary
SELECT count(*) AS chunks, coalesce(sum(length(data)), 0) AS size,
       coalesce(max(seq), -1) AS last_seq
  FROM s_task_file_chunks
 WHERE file_id = %(file_id)s;

-- name: file_chunk
SELECT data FROM s_task_file_chunks WHERE file_id = %(file_id)s AND seq = %(seq)s;

-- name: file_finish
UPDATE s_task_files
   SET complete = true, size = %(size)s, sha256 = %(sha256)s, updated_at = now()
 WHERE id = %(id)s AND NOT complete
RETURNING *;

-- name: file_usage
-- What the upload quotas look at: the bytes of every stored file (results and uploads, finished
-- or not), the chunked uploads still open, and whether this one is among them. octet_length of
-- a chunk stored EXTERNAL reads its TOAST pointer, not its bytes: one row per MiB stored.
SELECT (SELECT coalesce(sum(octet_length(data)), 0) FROM s_task_file_chunks)::bigint AS bytes,
       (SELECT count(*) FROM s_task_files
         WHERE NOT complete AND session_id IS NOT NULL) AS open_uploads,
       EXISTS (SELECT 1 FROM s_task_files
                WHERE identifier = %(identifier)s AND session_id = %(session_id)s) AS session_exists;

-- name: file_delete_abandoned
-- Uploads never completed (a chunked upload whose client went away): max_age seconds after
-- their last chunk (or their start, before any chunk).
DELETE FROM s_task_files
 WHERE NOT complete AND updated_at < now() - %(max_age)s::float8 * interval '1 second'
RETURNING id;

-- name: file_delete_unattached
-- Uploads that no task ever took (uploaded for a worker, never used) after max_age seconds.
DELETE FROM s_task_files
 WHERE task_id IS NULL AND created_at < now() - %(max_age)s::float8 * interval '1 second'
RETURNING id;
