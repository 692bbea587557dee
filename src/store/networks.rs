//! Networks: owned by a team, in a provider account and region.

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Network {
    pub id: Uuid,
    pub name: String,
    pub team_id: Uuid,
    pub team_slug: String,
    pub provider_account_id: Uuid,
    pub provider_account_name: String,
    pub region: String,
    pub external_id: Option<String>,
    pub tags: serde_json::Value,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resource_key: Option<String>,
    /// `none`, `pending`, `proved` or `confirmed` (see [`Ownership`]).
    pub ownership: String,
    pub ownership_evidence: String,
    pub ownership_decided_by: Option<Uuid>,
    pub ownership_decided_at: Option<DateTime<Utc>>,
    /// See [`crate::domain::network::Status`].
    pub status: String,
    /// What Switchboard builds (a `NetworkPlan`), for networks it builds.
    pub plan: Option<serde_json::Value>,
    pub plan_hash: Option<String>,
    pub failure: Option<String>,
    /// How the built network differs from its plan, as last observed.
    pub differences: serde_json::Value,
    pub drifted_since: Option<DateTime<Utc>>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The worker acting on it, and until when (see [`take_lease`]).
    pub actor: Option<String>,
    pub actor_until: Option<DateTime<Utc>>,
    /// A built namespace's address on its account's underlay bridge: where
    /// its tunnels are reached.
    pub underlay: Option<IpNet>,
}

impl Network {
    pub fn status(&self) -> crate::domain::network::Status {
        crate::domain::network::Status::parse(&self.status)
    }

    /// Whether Switchboard builds it (it has a plan), rather than records it.
    pub fn built_by_switchboard(&self) -> bool {
        self.plan.is_some()
    }
}

impl Ownership {
    /// A network that stands for no provider resource.
    pub fn none() -> Self {
        Self {
            state: "none",
            evidence: String::new(),
            decided_by: None,
        }
    }
    pub fn proved(evidence: String) -> Self {
        Self {
            state: "proved",
            evidence,
            decided_by: None,
        }
    }
    pub fn pending(evidence: String) -> Self {
        Self {
            state: "pending",
            evidence,
            decided_by: None,
        }
    }
}

/// Whether a network's team is known to own its provider resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// `none` (no resource), `pending`, `proved` or `confirmed`.
    pub state: &'static str,
    /// What decided it, in words people read.
    pub evidence: String,
    /// The admin who confirmed it, when one did.
    pub decided_by: Option<Uuid>,
}

const SELECT: &str = "SELECT n.*, t.slug AS team_slug, p.name AS provider_account_name
    FROM networks n JOIN teams t ON t.id = n.team_id JOIN provider_accounts p ON p.id = n.provider_account_id";

pub struct NewNetwork<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub team_id: Uuid,
    pub provider_account_id: Uuid,
    pub region: &'a str,
    pub external_id: Option<&'a str>,
    pub resource_key: Option<&'a str>,
    pub ownership: &'a Ownership,
    pub tags: &'a serde_json::Value,
    pub created_by: Uuid,
}

/// `false` when the team already has a network of this name. A resource
/// another network holds is a unique violation (`networks_one_per_resource`).
pub async fn insert(db: impl PgExecutor<'_>, n: NewNetwork<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO networks (id, name, team_id, provider_account_id, region, external_id, tags, created_by,
                               resource_key, ownership, ownership_evidence, ownership_decided_by, ownership_decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $10 = 'none' THEN NULL ELSE now() END)
         ON CONFLICT (team_id, name) DO NOTHING",
    )
    .bind(n.id)
    .bind(n.name)
    .bind(n.team_id)
    .bind(n.provider_account_id)
    .bind(n.region)
    .bind(n.external_id)
    .bind(n.tags)
    .bind(n.created_by)
    .bind(n.resource_key)
    .bind(n.ownership.state)
    .bind(&n.ownership.evidence)
    .bind(n.ownership.decided_by)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The network that holds this resource of an account, if one does.
pub async fn holding(
    db: impl PgExecutor<'_>,
    provider_account_id: Uuid,
    resource_key: &str,
) -> Result<Option<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE n.provider_account_id = $1 AND n.resource_key = $2"
    )))
    .bind(provider_account_id)
    .bind(resource_key)
    .fetch_optional(db)
    .await
}

/// Sets what is known of the network's ownership, if it is still in `expected`.
pub async fn set_ownership(
    db: impl PgExecutor<'_>,
    id: Uuid,
    expected: &str,
    ownership: &Ownership,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET ownership = $3, ownership_evidence = $4, ownership_decided_by = $5,
                ownership_decided_at = now(), updated_at = now()
         WHERE id = $1 AND ownership = $2",
    )
    .bind(id)
    .bind(expected)
    .bind(ownership.state)
    .bind(&ownership.evidence)
    .bind(ownership.decided_by)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Networks whose ownership waits for proof or an admin, oldest first.
pub async fn pending(db: impl PgExecutor<'_>) -> Result<Vec<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE n.ownership = 'pending' ORDER BY n.created_at, n.id"
    )))
    .fetch_all(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE n.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Networks matching every filter that is set, by team and name.
pub struct ListQuery<'a> {
    pub team: Option<&'a str>,
    pub provider_account: Option<&'a str>,
    pub region: Option<&'a str>,
    /// Only networks with a prefix holding this address or prefix.
    pub contains: Option<IpNet>,
    /// The last one of the page before: (team slug, name, id).
    pub after: Option<(String, String, Uuid)>,
    /// At most this many; `None` for all (the pages' pickers).
    pub fetch: Option<i64>,
}

pub async fn list(db: impl PgExecutor<'_>, q: &ListQuery<'_>) -> Result<Vec<Network>, sqlx::Error> {
    let after = match &q.after {
        Some((slug, name, id)) => (Some(slug.as_str()), Some(name.as_str()), Some(*id)),
        None => (None, None, None),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text IS NULL OR t.slug = $1) AND ($2::text IS NULL OR p.name = $2)
           AND ($3::text IS NULL OR n.region = $3)
           AND ($4::cidr IS NULL OR EXISTS (
               SELECT 1 FROM allocations a WHERE a.network_id = n.id AND a.cidr >>= $4))
           AND ($5::text IS NULL OR (t.slug, n.name, n.id) > ($5, $6, $7))
         ORDER BY t.slug, n.name, n.id LIMIT $8"
    )))
    .bind(q.team)
    .bind(q.provider_account)
    .bind(q.region)
    .bind(q.contains)
    .bind(after.0)
    .bind(after.1)
    .bind(after.2)
    .bind(q.fetch)
    .fetch_all(db)
    .await
}

/// Renames, retags, and points the network at a resource with what is known
/// of its ownership.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    name: &str,
    (external_id, resource_key, ownership): (Option<&str>, Option<&str>, &Ownership),
    tags: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET name = $2, external_id = $3, tags = $4, updated_at = now(),
                resource_key = $5,
                ownership_decided_at = CASE WHEN ownership = $6 AND ownership_evidence = $7
                                            THEN ownership_decided_at ELSE now() END,
                ownership = $6, ownership_evidence = $7, ownership_decided_by = $8
         WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(external_id)
    .bind(tags)
    .bind(resource_key)
    .bind(ownership.state)
    .bind(&ownership.evidence)
    .bind(ownership.decided_by)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The names of these networks, by id (for pages that list what holds a prefix).
pub async fn names(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name FROM networks WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}

/// Deletes the network; its prefixes go back to their pools (ON DELETE CASCADE).
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM networks WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A network to build: its plan, hash and first status, set in the
/// transaction that created it.
pub async fn set_plan(
    db: impl PgExecutor<'_>,
    id: Uuid,
    plan: &serde_json::Value,
    plan_hash: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE networks SET plan = $2, plan_hash = $3, status = $4 WHERE id = $1")
        .bind(id)
        .bind(plan)
        .bind(plan_hash)
        .bind(status)
        .execute(db)
        .await?;
    Ok(())
}

/// The underlay addresses the networks of an account hold, after waiting for
/// any other transaction handing one out in that account (so two never get
/// the same one; the unique index would refuse it anyway).
pub async fn underlays_taken(
    conn: &mut PgConnection,
    provider_account_id: Uuid,
) -> Result<Vec<IpNet>, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('underlay:' || $1::text, 0))")
        .bind(provider_account_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "SELECT underlay FROM networks WHERE provider_account_id = $1 AND underlay IS NOT NULL",
    )
    .bind(provider_account_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn set_underlay(
    db: impl PgExecutor<'_>,
    id: Uuid,
    underlay: IpNet,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE networks SET underlay = $2 WHERE id = $1")
        .bind(id)
        .bind(underlay)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves the network from `from` to `to`; `false` when it was no longer in `from`.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &str,
    to: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET status = $3, updated_at = now() WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a lead's approval of the network's plan, if it is still the one
/// waiting (same hash).
pub async fn approve(
    db: impl PgExecutor<'_>,
    id: Uuid,
    plan_hash: &str,
    by: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET status = 'building', approved_by = $3, approved_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'awaiting_approval' AND plan_hash = $2",
    )
    .bind(id)
    .bind(plan_hash)
    .bind(by)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The build is done: the network stands for the resource built, owned by
/// construction.
pub async fn built(
    db: impl PgExecutor<'_>,
    id: Uuid,
    external_id: &str,
    resource_key: &str,
    evidence: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET status = 'ready', external_id = $2, resource_key = $3,
                ownership = 'proved', ownership_evidence = $4, ownership_decided_at = now(),
                failure = NULL, differences = '[]'::jsonb, drifted_since = NULL, updated_at = now()
         WHERE id = $1 AND status = 'building'",
    )
    .bind(id)
    .bind(external_id)
    .bind(resource_key)
    .bind(evidence)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The build or removal failed, with why; from `from` only.
pub async fn failed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &str,
    why: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET status = 'failed', failure = $3, updated_at = now()
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(why)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What the monitor saw: `ready` when it matches, `drifted` with the
/// differences when not; from `from` only (a network being removed is left alone).
pub async fn observed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &str,
    differences: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET
            status = CASE WHEN jsonb_array_length($3) = 0 THEN 'ready' ELSE 'drifted' END,
            drifted_since = CASE WHEN jsonb_array_length($3) = 0 THEN NULL
                                 ELSE coalesce(drifted_since, now()) END,
            differences = $3, updated_at = now()
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(differences)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Built networks the monitor compares with their plan.
pub async fn watched(db: impl PgExecutor<'_>) -> Result<Vec<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE n.status IN ('ready', 'drifted') AND n.plan IS NOT NULL ORDER BY n.id"
    )))
    .fetch_all(db)
    .await
}

/// Networks waiting for a lead of one of these teams (all teams when `None`).
pub async fn awaiting_approval(
    db: impl PgExecutor<'_>,
    teams: Option<&[Uuid]>,
) -> Result<Vec<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE n.status = 'awaiting_approval' AND ($1::uuid[] IS NULL OR n.team_id = ANY($1))
         ORDER BY n.created_at, n.id"
    )))
    .bind(teams)
    .fetch_all(db)
    .await
}

/// Locks the network's row for a change of status.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE n.id = $1 FOR UPDATE OF n"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Connections that still use the network (not ended), newest first: (id, reason, status).
pub async fn used_by(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, reason, status FROM connections
          WHERE (spec->>'source_network_id' = $1::text OR spec->>'destination_network_id' = $1::text)
            AND status NOT IN ('deleted', 'rejected', 'cancelled', 'expired')
          ORDER BY created_at DESC LIMIT 20",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// One step of a build or removal, shown on the network's page.
pub async fn add_step(
    db: impl PgExecutor<'_>,
    id: Uuid,
    action: &str,
    resource: &str,
    provider_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO network_steps (network_id, action, resource, provider_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(action)
    .bind(resource)
    .bind(provider_id)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct NetworkStep {
    pub at: DateTime<Utc>,
    pub action: String,
    pub resource: String,
    pub provider_id: Option<String>,
}

/// The network's steps, oldest first (the last 200).
pub async fn steps(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<NetworkStep>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, action, resource, provider_id FROM (
            SELECT * FROM network_steps WHERE network_id = $1 ORDER BY id DESC LIMIT 200) s
         ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Networks building or being removed that have not moved for `quiet_seconds`.
pub async fn in_work(
    db: impl PgExecutor<'_>,
    quiet_seconds: f64,
    limit: i64,
) -> Result<Vec<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE n.status IN ('building', 'removing')
           AND n.updated_at < now() - make_interval(secs => $1)
         ORDER BY n.updated_at LIMIT $2"
    )))
    .bind(quiet_seconds)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Takes (or renews) the lease on acting on a network for `seconds`; `false`
/// while another holder's lease runs. Leaves `updated_at` alone.
pub async fn take_lease(
    db: impl PgExecutor<'_>,
    id: Uuid,
    holder: &str,
    seconds: f64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET actor = $2, actor_until = now() + make_interval(secs => $3)
          WHERE id = $1 AND (actor IS NULL OR actor = $2 OR actor_until < now())",
    )
    .bind(id)
    .bind(holder)
    .bind(seconds)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease back, if `holder` still has it.
pub async fn release_lease(
    db: impl PgExecutor<'_>,
    id: Uuid,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE networks SET actor = NULL, actor_until = NULL WHERE id = $1 AND actor = $2",
    )
    .bind(id)
    .bind(holder)
    .execute(db)
    .await?;
    Ok(())
}
