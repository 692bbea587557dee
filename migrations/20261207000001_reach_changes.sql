-- The reachability model (who can reach what) is kept by each process between
-- changes. Every change to what it is made of notes its transaction here: a
-- connection that opens, closes or changes its request (with its id: the
-- model reads that connection again), a network's name or an allocation
-- (without: the model is read again whole). A kept model is used only while no
-- note committed since the snapshot it was read in. Housekeeping removes notes
-- older than a day.
CREATE TABLE reach_changes (
    xid           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    connection_id uuid,
    noted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reach_changes_xid ON reach_changes (xid);
CREATE INDEX reach_changes_noted_at ON reach_changes (noted_at);

CREATE FUNCTION note_connection_reach_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reach_changes (connection_id)
        VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
    RETURN NULL;
END
$$;

CREATE FUNCTION note_reach_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reach_changes DEFAULT VALUES;
    RETURN NULL;
END
$$;

-- Only what the model reads: open connections (active, drifted), their requests.
CREATE TRIGGER connections_reach_opened
    AFTER INSERT ON connections FOR EACH ROW
    WHEN (NEW.status IN ('active', 'drifted'))
    EXECUTE FUNCTION note_connection_reach_changed();
CREATE TRIGGER connections_reach_changed
    AFTER UPDATE ON connections FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.spec IS DISTINCT FROM NEW.spec
          OR OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION note_connection_reach_changed();
CREATE TRIGGER connections_reach_deleted
    AFTER DELETE ON connections FOR EACH ROW
    WHEN (OLD.status IN ('active', 'drifted'))
    EXECUTE FUNCTION note_connection_reach_changed();
CREATE TRIGGER networks_reach_changed
    AFTER INSERT OR DELETE OR UPDATE OF name ON networks
    FOR EACH STATEMENT EXECUTE FUNCTION note_reach_changed();
CREATE TRIGGER allocations_reach_changed
    AFTER INSERT OR DELETE OR UPDATE OF cidr, network_id ON allocations
    FOR EACH STATEMENT EXECUTE FUNCTION note_reach_changed();
