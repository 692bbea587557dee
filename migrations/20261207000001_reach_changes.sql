-- The reachability model (who can reach what) is kept by each process between
-- changes. Every statement that changes what it is made of (a connection's
-- status or request, a network's name, an allocation) notes its transaction
-- here; a kept model is used only while no change committed since the
-- snapshot it was read in. Housekeeping removes notes older than a day.
CREATE TABLE reach_changes (
    xid      xid8        NOT NULL DEFAULT pg_current_xact_id(),
    noted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reach_changes_xid ON reach_changes (xid);
CREATE INDEX reach_changes_noted_at ON reach_changes (noted_at);

CREATE FUNCTION note_reach_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reach_changes DEFAULT VALUES;
    RETURN NULL;
END
$$;

CREATE TRIGGER connections_reach_changed
    AFTER INSERT OR DELETE OR UPDATE OF status, spec, kind ON connections
    FOR EACH STATEMENT EXECUTE FUNCTION note_reach_changed();
CREATE TRIGGER networks_reach_changed
    AFTER INSERT OR DELETE OR UPDATE OF name ON networks
    FOR EACH STATEMENT EXECUTE FUNCTION note_reach_changed();
CREATE TRIGGER allocations_reach_changed
    AFTER INSERT OR DELETE OR UPDATE OF cidr, network_id ON allocations
    FOR EACH STATEMENT EXECUTE FUNCTION note_reach_changed();
