-- Revision 0008: how many times a task snoozed.
--
-- snoozes: the runs of a task that ended with Snooze (back to pending later, the attempt not
-- counted). Written by task_snooze_many, reset to 0 by task_retry with the attempts; the worker
-- setting max_snoozes fails a task that would snooze once more than it allows. A constant
-- default: no table rewrite.
ALTER TABLE s_tasks ADD COLUMN snoozes integer NOT NULL DEFAULT 0;
