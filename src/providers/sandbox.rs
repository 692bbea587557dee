//! The `sandbox` provider: a simulated cloud kept in the database, so the whole
//! flow (plan, approve, provision, observe) works with nothing else installed.
//! Settings: `latency_ms` (per item, default 0) and `failure_rate` (0 to 1, the
//! share of calls that fail transiently, default 0).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Item, Provider, ProviderError, Removal, Seen, Step, Wanted};
use crate::store::provider_accounts::ProviderAccount;

pub struct Sandbox {
    pool: PgPool,
    account_id: Uuid,
    latency: Duration,
    failure_rate: f64,
}

impl Sandbox {
    pub fn new(pool: PgPool, account: &ProviderAccount) -> Result<Self, String> {
        let setting = |key: &str| account.settings.get(key).and_then(|v| v.as_str());
        let latency = match setting("latency_ms") {
            None => 0,
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                format!(
                    "sandbox account {}: latency_ms must be a whole number of milliseconds",
                    account.name
                )
            })?,
        };
        let failure_rate = match setting("failure_rate") {
            None => 0.0,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!(
                        "sandbox account {}: failure_rate must be from 0 to 1",
                        account.name
                    )
                })?,
        };
        Ok(Sandbox {
            pool,
            account_id: account.id,
            latency: Duration::from_millis(latency),
            failure_rate,
        })
    }

    /// Waits like a real API, and fails like one as often as configured.
    async fn call(&self) -> Result<(), ProviderError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let roll = f64::from(Uuid::new_v4().as_bytes()[0]) / 256.0;
        if roll < self.failure_rate {
            return Err(ProviderError::Transient(
                "the sandbox simulated an API failure".into(),
            ));
        }
        Ok(())
    }
}

fn db(e: sqlx::Error) -> ProviderError {
    ProviderError::Transient(format!("the sandbox's database: {e}"))
}

#[async_trait]
impl Provider for Sandbox {
    fn kind(&self) -> &'static str {
        "sandbox"
    }

    fn shares(&self) -> bool {
        false
    }

    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        self.call().await?;
        let id = format!("sbx-{}", &Uuid::new_v4().simple().to_string()[..12]);
        // Look before creating: the unique key finds what an earlier attempt
        // built; one changed since is put back as approved.
        let (existing, action): (String, String) = sqlx::query_as(
            "WITH old AS (
                 SELECT id, detail FROM sandbox_resources
                  WHERE account_id = $2 AND connection_id = $3 AND kind = $4 AND name = $5),
             made AS (
                 INSERT INTO sandbox_resources (id, account_id, connection_id, kind, name, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (account_id, connection_id, kind, name)
                 DO UPDATE SET detail = EXCLUDED.detail
                 RETURNING id)
             SELECT made.id, CASE WHEN old.id IS NULL THEN 'created'
                                  WHEN old.detail <> $6 THEN 'repaired'
                                  ELSE 'found' END
               FROM made LEFT JOIN old ON true",
        )
        .bind(&id)
        .bind(self.account_id)
        .bind(connection_id)
        .bind(&item.label)
        .bind(&item.name)
        .bind(&item.detail)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let action = match action.as_str() {
            "created" => "created",
            "repaired" => "repaired",
            _ => "found",
        };
        Ok(Step::new(action, item, Some(existing)))
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        self.call().await?;
        let ids: Vec<Uuid> = wanted.iter().map(|w| w.connection_id).collect();
        // One query for the whole account.
        let rows: Vec<(Uuid, String, String, String)> = sqlx::query_as(
            "SELECT connection_id, kind, name, detail FROM sandbox_resources
              WHERE account_id = $1 AND connection_id = ANY($2)",
        )
        .bind(self.account_id)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut found: HashMap<(Uuid, &str, &str), &str> = HashMap::with_capacity(rows.len());
        for (c, kind, name, detail) in &rows {
            found.insert((*c, kind.as_str(), name.as_str()), detail.as_str());
        }
        Ok(wanted
            .iter()
            .map(|w| Seen {
                connection_id: w.connection_id,
                differences: w
                    .items
                    .iter()
                    .filter_map(|item| {
                        match found.get(&(w.connection_id, item.label.as_str(), item.name.as_str()))
                        {
                            None => Some(format!("{} {} is missing", item.label, item.name)),
                            Some(detail) if *detail != item.detail => Some(format!(
                                "{} {} is \u{201c}{detail}\u{201d}, expected \u{201c}{}\u{201d}",
                                item.label, item.name, item.detail
                            )),
                            Some(_) => None,
                        }
                    })
                    .collect(),
                verified: Vec::new(),
                unreachable: false,
            })
            .collect())
    }

    async fn destroy(
        &self,
        connection_id: Uuid,
        _removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        // Each connection has its own copy of what it needs here, tagged with
        // the connection, so all of it is found and none of it is shared.
        let built: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, kind, name FROM sandbox_resources
             WHERE account_id = $1 AND connection_id = $2 ORDER BY created_at DESC, id DESC",
        )
        .bind(self.account_id)
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut steps = Vec::new();
        for (id, kind, name) in built {
            self.call().await?;
            sqlx::query("DELETE FROM sandbox_resources WHERE id = $1")
                .bind(&id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
            steps.push(Step::named("deleted", &kind, &name, Some(id)));
        }
        Ok(steps)
    }
}

/// A resource of the simulated cloud, as its admin page shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Resource {
    pub id: String,
    pub account: String,
    pub connection_id: Uuid,
    /// What the connection is, in words (none once its record is gone).
    pub connection_summary: Option<String>,
    /// The network it stands for, when it is a network Switchboard built.
    pub network_name: Option<String>,
    pub kind: String,
    pub name: String,
    pub detail: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const RESOURCE: &str = "SELECT r.id, a.name AS account, r.connection_id,
            c.plan->>'summary' AS connection_summary, n.name AS network_name,
            r.kind, r.name, r.detail, r.created_at
       FROM sandbox_resources r JOIN provider_accounts a ON a.id = r.account_id
       LEFT JOIN connections c ON c.id = r.connection_id
       LEFT JOIN networks n ON n.id = r.connection_id";

/// The newest resources (at most `limit`), of one connection or of all.
pub async fn resources(
    db: impl sqlx::PgExecutor<'_>,
    connection: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Resource>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RESOURCE} WHERE ($1::uuid IS NULL OR r.connection_id = $1)
          ORDER BY r.created_at DESC, r.id LIMIT $2"
    )))
    .bind(connection)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn resource(
    db: impl sqlx::PgExecutor<'_>,
    id: &str,
) -> Result<Option<Resource>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RESOURCE} WHERE r.id = $1 FOR UPDATE OF r"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Deletes a resource behind Switchboard's back, as someone with console access would.
pub async fn delete_behind_the_back(
    db: impl sqlx::PgExecutor<'_>,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sandbox_resources WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(drop)
}

/// Changes a resource behind Switchboard's back.
pub async fn change_behind_the_back(
    db: impl sqlx::PgExecutor<'_>,
    id: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sandbox_resources SET detail = $2 WHERE id = $1")
        .bind(id)
        .bind(detail)
        .execute(db)
        .await
        .map(drop)
}
