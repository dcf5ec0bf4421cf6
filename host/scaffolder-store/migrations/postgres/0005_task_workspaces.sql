-- Workspaces that travel between replicas (scaffolder.workspaceStore): the manifest of a
-- task's last saved workspace, written only by the run holding the task, and, for the
-- database blob backend, the saved files' contents.
CREATE TABLE task_workspaces (
    task_id    TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    -- The manifest as JSON; NULL while the first save is uploading its files.
    manifest   TEXT,
    -- The sum of the saved files' sizes.
    bytes      BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
CREATE INDEX task_workspaces_updated_at_idx ON task_workspaces (updated_at);

-- File contents by SHA-256 digest (hex), zlib-compressed, in chunks of 4 MiB before
-- compression so that no value is huge. Immutable once written.
CREATE TABLE workspace_blobs (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    digest  TEXT NOT NULL,
    chunk   INTEGER NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (task_id, digest, chunk)
);
