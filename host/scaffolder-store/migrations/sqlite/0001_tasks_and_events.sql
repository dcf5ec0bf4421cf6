-- Tasks and their events. Timestamps are milliseconds since the Unix epoch; JSON is text.
CREATE TABLE tasks (
    id                TEXT PRIMARY KEY NOT NULL,
    spec              TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_heartbeat_at BIGINT,
    created_by        TEXT,
    -- Task secrets as a JSON object; NULL once the task has ended or was cancelled.
    secrets           TEXT,
    -- {"steps": {"<id>": {"status": "completed", "output": {}}}, "checkpoints": {"<key>": {}}}
    state             TEXT
);
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX tasks_created_at_idx ON tasks (created_at);

CREATE TABLE task_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX task_events_task_id_idx ON task_events (task_id, id);
