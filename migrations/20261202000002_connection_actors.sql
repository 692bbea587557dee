-- One actor per connection: a worker builds, repairs or removes a connection only
-- while it holds this lease, renewed as it works. A worker that dies simply lets
-- it lapse; no database session has to stay open across provider calls.
CREATE TABLE connection_actors (
    connection_id uuid PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    holder        text        NOT NULL,
    what          text        NOT NULL,
    until         timestamptz NOT NULL
);
