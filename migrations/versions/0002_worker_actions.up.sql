-- The canonical action names of each worker (snake_case, as BaseWorker.actions() gives them),
-- written by the daemon or client that registers it. Empty until a registration with this
-- revision runs; an API host treats an empty list as "cannot check here".
ALTER TABLE s_workers ADD COLUMN actions text[] NOT NULL DEFAULT '{}';
