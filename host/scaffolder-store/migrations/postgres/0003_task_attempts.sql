-- The number of claims of a task: a fencing token. Each claim increments it and the run
-- that holds the claim names it in every write (heartbeat, events, state, checkpoints,
-- secrets, completion), so a worker that lost the task (recovered by another replica
-- after a pause, or ended) has its next write refused instead of running beside the
-- new holder.
ALTER TABLE tasks ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
