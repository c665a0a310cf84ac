-- Figures of the HTTP API's /metrics and performance endpoints.

-- name: metrics_queue
-- Incomplete tasks per worker and status (served by the partial indexes), with the age of the
-- oldest due pending task.
SELECT identifier, status, count(*) AS count,
       extract(epoch FROM now() - min(start_at) FILTER (WHERE status = 10 AND start_at <= now()))
           AS oldest_due_seconds
  FROM s_tasks
 WHERE status IN (10, 30, 50)
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
