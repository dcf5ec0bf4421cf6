-- Wake-ups and fan-out between replicas. PostgreSQL delivers a notification when the
-- transaction that sent it commits, so a listener that reads the store after one sees
-- what it announced.
--
-- `scaffolder_tasks`, payload the task id: a task became `open` (created, retried, or
-- recovered after its worker stopped); idle workers try to claim it.
CREATE FUNCTION scaffolder_notify_task_opened() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('scaffolder_tasks', NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_notify_created
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'open')
    EXECUTE FUNCTION scaffolder_notify_task_opened();

CREATE TRIGGER tasks_notify_reopened
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'open' AND OLD.status <> 'open')
    EXECUTE FUNCTION scaffolder_notify_task_opened();

-- `scaffolder_events`, payload `<greatest event id>:<task id>`: a statement inserted
-- events of the task (one notification per task and statement, however many log lines
-- it inserted); streams that have not sent that event read the store. A retry deletes
-- events and inserts a `recovered` one in the same transaction, so this notification
-- also makes streams read again after a deletion.
CREATE FUNCTION scaffolder_notify_events_added() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('scaffolder_events', max(id) || ':' || task_id)
        FROM inserted GROUP BY task_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER task_events_notify_added
    AFTER INSERT ON task_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
    EXECUTE FUNCTION scaffolder_notify_events_added();
