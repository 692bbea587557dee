-- A namespace Switchboard builds in a linux account with an underlay gets an
-- address on the account's underlay bridge: where its tunnels are reached.
ALTER TABLE networks ADD COLUMN underlay inet;
-- Two namespaces of one account never share an underlay address.
CREATE UNIQUE INDEX networks_underlay ON networks (provider_account_id, host(underlay))
    WHERE underlay IS NOT NULL;
