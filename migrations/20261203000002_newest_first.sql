-- Lists page newest first by (created_at, id): the cursor is the last one shown.
CREATE INDEX IF NOT EXISTS connections_newest ON connections (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_events_newest ON audit_events (at DESC, id DESC);
