-- A connection's kind and status are one of the values the portal knows; rows
-- read back decode into their types and fail loudly otherwise. NOT VALID: rows
-- written before are checked when read, not here.
ALTER TABLE connections
    ADD CONSTRAINT connections_kind_known CHECK (kind IN (
        'network-to-network', 'service-exposure', 'firewall-opening', 'dns-record')) NOT VALID,
    ADD CONSTRAINT connections_status_known CHECK (status IN (
        'pending_approval', 'approved', 'provisioning', 'active', 'drifted', 'deprovisioning',
        'deleted', 'rejected', 'cancelled', 'failed', 'expired')) NOT VALID;
