-- PostgreSQL's 0004 adds triggers that notify other replicas (LISTEN/NOTIFY). SQLite has
-- no notifications and one process per file: the engine's in-process event bus wakes
-- workers and streams. This file keeps the two folders' numbers the same.
SELECT 1;
