-- Who owns a network's provider resource is proved, never merely asserted.
-- `resource_key` is the resource written one way (see providers::resource_key):
-- one provider resource belongs to at most one network.
ALTER TABLE networks
    ADD COLUMN resource_key text,
    -- none: no provider resource; pending: waits for proof or an admin;
    -- proved: the resource's own tag or the account's owner map names the team;
    -- confirmed: an admin confirmed it.
    ADD COLUMN ownership text NOT NULL DEFAULT 'none'
        CHECK (ownership IN ('none', 'pending', 'proved', 'confirmed')),
    -- What decided it, in words people read ("its tag switchboard:team=payments").
    ADD COLUMN ownership_evidence text NOT NULL DEFAULT '',
    ADD COLUMN ownership_decided_by uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN ownership_decided_at timestamptz;

-- Networks registered before ownership was checked: an admin confirms each one
-- (fail closed). Where several claim one resource, the oldest keeps the claim.
UPDATE networks n SET
    ownership = 'pending',
    resource_key = CASE WHEN first.id = n.id THEN lower(btrim(n.external_id)) END,
    ownership_evidence = CASE WHEN first.id = n.id
        THEN 'registered before ownership was checked: an admin must confirm it'
        ELSE 'another network registered the same resource first: an admin must decide'
    END
FROM (
    SELECT DISTINCT ON (provider_account_id, lower(btrim(external_id))) id, provider_account_id,
           lower(btrim(external_id)) AS key
    FROM networks WHERE external_id IS NOT NULL AND btrim(external_id) <> ''
    ORDER BY provider_account_id, lower(btrim(external_id)), created_at, id
) first
WHERE n.external_id IS NOT NULL AND btrim(n.external_id) <> ''
  AND first.provider_account_id = n.provider_account_id
  AND first.key = lower(btrim(n.external_id));

CREATE UNIQUE INDEX networks_one_per_resource
    ON networks (provider_account_id, resource_key) WHERE resource_key IS NOT NULL;
CREATE INDEX networks_pending ON networks (created_at) WHERE ownership = 'pending';
