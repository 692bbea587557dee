-- Removing a connection keeps what another connection's plan still needs
-- (`plan @> entry`), and removes only what Switchboard recorded making.
CREATE INDEX connections_plan ON connections USING gin (plan jsonb_path_ops);
CREATE INDEX connection_steps_made ON connection_steps (resource) WHERE action = 'created';
