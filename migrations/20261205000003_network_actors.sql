-- Who acts on a network Switchboard builds (a build or a removal), until when:
-- a lease renewed while held and lapsing by itself when its worker dies, so
-- no two workers act on one network and none holds a database connection
-- while it waits on a provider.
ALTER TABLE networks
    ADD COLUMN IF NOT EXISTS actor text,
    ADD COLUMN IF NOT EXISTS actor_until timestamptz;
