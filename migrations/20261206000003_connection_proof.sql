-- The last time the monitor proved a connection's approved traffic passes
-- (a probe that got an answer), and what it tried.
ALTER TABLE connections ADD COLUMN verified_at timestamptz;
ALTER TABLE connections ADD COLUMN verified text;
