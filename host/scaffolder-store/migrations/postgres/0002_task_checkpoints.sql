-- Checkpoints, one row each, so a step writing one rewrites only that one (they used to
-- live in tasks.state, rewritten whole on every write). Keys are Backstage's
-- `v1.task.checkpoint.<step id>.<key>`; values are JSON text.
CREATE TABLE task_checkpoints (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (task_id, key)
);
