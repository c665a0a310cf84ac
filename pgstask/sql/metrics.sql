-- Figures of the HTTP API's /metrics and performance endpoints.

-- name: metrics_queue
-- Incomplete tasks per worker and status (pending, preparing and running served by the partial
-- indexes, waiting by the status index), with the age of the oldest due pending task.
SELECT identifier, status, count(*) AS count,
       extract(epoch FROM now() - min(start_at) FILTER (WHERE status = 10 AND start_at <= now()))
           AS oldest_due_seconds
  FROM s_tasks
 WHERE status IN (10, 20, 30, 50)
 GROUP BY identifier, status
 ORDER BY identifier, status;

-- name: metrics_finished
-- Tasks finished in the last window_seconds per worker and status, with durations from
-- started_at to finished_at.
SELECT identifier, status, count(*) AS count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           AS p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           AS p95_seconds,
       max(extract(epoch FROM finished_at - started_at)) AS max_seconds
  FROM s_tasks
 WHERE status IN (80, 90, 100)
   AND finished_at >= now() - %(window_seconds)s::float8 * interval '1 second'
 GROUP BY identifier, status
 ORDER BY identifier, status;

-- name: metrics_summary
-- Tasks created and finished in the last `hours`; rates and durations over finished tasks only.
SELECT (SELECT count(*) FROM s_tasks
         WHERE created_at >= now() - %(hours)s::float8 * interval '1 hour') AS created,
       count(*) AS finished,
       count(*) FILTER (WHERE status = 80) AS completed,
       count(*) FILTER (WHERE status = 100) AS failed,
       count(*) FILTER (WHERE status = 90) AS cancelled,
       avg(extract(epoch FROM finished_at - started_at)) AS average_duration,
       coalesce(sum(extract(epoch FROM finished_at - started_at)), 0) AS total_execution_time,
       avg(peak_memory) AS average_memory,
       max(peak_memory) AS max_memory
  FROM s_tasks
 WHERE status IN (80, 90, 100)
   AND finished_at >= now() - %(hours)s::float8 * interval '1 hour';

-- name: metrics_workers
-- The same per worker (all, or one identifier).
SELECT identifier,
       count(*) AS finished,
       count(*) FILTER (WHERE status = 80) AS completed,
       count(*) FILTER (WHERE status = 100) AS failed,
       count(*) FILTER (WHERE status = 90) AS cancelled,
       avg(extract(epoch FROM finished_at - started_at)) AS average_duration,
       max(extract(epoch FROM finished_at - started_at)) AS max_duration,
       coalesce(sum(extract(epoch FROM finished_at - started_at)), 0) AS total_execution_time,
       avg(peak_memory) AS average_memory,
       max(peak_memory) AS max_memory,
       max(finished_at) AS last_execution
  FROM s_tasks
 WHERE status IN (80, 90, 100)
   AND finished_at >= now() - %(hours)s::float8 * interval '1 hour'
   AND (%(identifier)s::text IS NULL OR identifier = %(identifier)s::text)
 GROUP BY identifier
 ORDER BY identifier;

-- name: metrics_errors
-- The most frequent messages of tasks that failed in the last `hours`.
SELECT coalesce(message, '') AS message, count(*) AS count
  FROM s_tasks
 WHERE status = 100 AND finished_at >= now() - %(hours)s::float8 * interval '1 hour'
 GROUP BY coalesce(message, '')
 ORDER BY count DESC, message
 LIMIT %(limit)s;

-- name: metrics_unserved
-- Due pending tasks per worker that no live daemon runs (unknown, inactive, or only on daemons
-- whose heartbeat is stale).
SELECT t.identifier, count(*) AS count,
       extract(epoch FROM now() - min(t.start_at)) AS oldest_seconds
  FROM s_tasks t
 WHERE t.status = 10 AND t.start_at <= now()
   AND NOT EXISTS (
       SELECT 1
         FROM s_daemons d
         JOIN s_workers w ON w.identifier = t.identifier AND w.active
        WHERE t.identifier = ANY(d.identifiers)
          AND d.heartbeat_at > now() - make_interval(secs => %(stale_after)s))
 GROUP BY t.identifier
 ORDER BY t.identifier;

-- name: metrics_stuck
-- Tasks running for longer than `seconds`.
SELECT id, identifier, action, daemon_id, extract(epoch FROM now() - started_at) AS running_seconds
  FROM s_tasks
 WHERE status IN (30, 50) AND started_at < now() - %(seconds)s::float8 * interval '1 second'
 ORDER BY started_at
 LIMIT %(limit)s;

-- name: metrics_timeline
-- Tasks finished per time bucket (bucket_seconds wide) over the last `hours`: the dashboard's
-- throughput and duration chart.
SELECT to_timestamp(floor(extract(epoch FROM finished_at) / %(bucket_seconds)s)
                    * %(bucket_seconds)s) AS bucket,
       count(*) FILTER (WHERE status = 80) AS completed,
       count(*) FILTER (WHERE status = 100) AS failed,
       count(*) FILTER (WHERE status = 90) AS cancelled,
       avg(extract(epoch FROM finished_at - started_at)) AS average_duration
  FROM s_tasks
 WHERE status IN (80, 90, 100)
   AND finished_at >= now() - %(hours)s::float8 * interval '1 hour'
 GROUP BY 1
 ORDER BY 1;
