-- A connection configured as approved whose traffic a probe shows not passing.
ALTER TABLE connections DROP CONSTRAINT connections_observed_state_check;
ALTER TABLE connections ADD CONSTRAINT connections_observed_state_check
    CHECK (observed_state IN ('matches', 'differs', 'unreachable', 'unknown'));
