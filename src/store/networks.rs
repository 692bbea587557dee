//! Networks: owned by a team, in a provider account and region.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
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
    pub tags: &'a serde_json::Value,
    pub created_by: Uuid,
}

/// `false` when the team already has a network of this name.
pub async fn insert(db: impl PgExecutor<'_>, n: NewNetwork<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO networks (id, name, team_id, provider_account_id, region, external_id, tags, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (team_id, name) DO NOTHING",
    )
    .bind(n.id)
    .bind(n.name)
    .bind(n.team_id)
    .bind(n.provider_account_id)
    .bind(n.region)
    .bind(n.external_id)
    .bind(n.tags)
    .bind(n.created_by)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE n.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Networks matching every filter that is set.
pub async fn list(
    db: impl PgExecutor<'_>,
    team: Option<&str>,
    provider_account: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<Network>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text IS NULL OR t.slug = $1) AND ($2::text IS NULL OR p.name = $2)
           AND ($3::text IS NULL OR n.region = $3) ORDER BY t.slug, n.name"
    )))
    .bind(team)
    .bind(provider_account)
    .bind(region)
    .fetch_all(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    name: &str,
    external_id: Option<&str>,
    tags: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE networks SET name = $2, external_id = $3, tags = $4, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(external_id)
    .bind(tags)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the network; its prefixes go back to their pools (ON DELETE CASCADE).
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM networks WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
