//! Provider accounts: where networks live (a cloud account, an on-prem site…).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct ProviderAccount {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub regions: Vec<String>,
    pub settings: serde_json::Value,
    pub credentials_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ProviderAccount {
    /// A text setting, trimmed; an empty one counts as unset.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

pub struct NewAccount<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub regions: &'a [String],
    pub settings: &'a serde_json::Value,
    pub credentials_ref: Option<&'a str>,
}

/// `None` when the name is taken.
pub async fn insert(
    db: impl PgExecutor<'_>,
    a: NewAccount<'_>,
) -> Result<Option<ProviderAccount>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO provider_accounts (id, kind, name, regions, settings, credentials_ref)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(a.kind)
    .bind(a.name)
    .bind(a.regions)
    .bind(a.settings)
    .bind(a.credentials_ref)
    .fetch_optional(db)
    .await
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<ProviderAccount>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM provider_accounts ORDER BY name")
        .fetch_all(db)
        .await
}

pub async fn find(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<ProviderAccount>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM provider_accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A `sandbox` account named "sandbox", unless any provider account exists.
pub async fn insert_sandbox_if_none(
    db: impl PgExecutor<'_>,
) -> Result<Option<ProviderAccount>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO provider_accounts (id, kind, name, regions, settings)
         SELECT $1, 'sandbox', 'sandbox', ARRAY['local'], '{}'::jsonb
          WHERE NOT EXISTS (SELECT 1 FROM provider_accounts)
         ON CONFLICT (name) DO NOTHING RETURNING *",
    )
    .bind(Uuid::new_v4())
    .fetch_optional(db)
    .await
}
