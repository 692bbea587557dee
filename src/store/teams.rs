//! Teams and memberships.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::team::{Role, TeamSlug};

#[derive(Debug, Clone, FromRow)]
pub struct Team {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct TeamSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub members: i64,
    pub leads: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct Member {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub source: String,
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<TeamSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.slug, t.name,
                count(m.user_id) AS members,
                count(m.user_id) FILTER (WHERE m.role = 'lead') AS leads
         FROM teams t LEFT JOIN memberships m ON m.team_id = t.id
         GROUP BY t.id ORDER BY t.slug",
    )
    .fetch_all(db)
    .await
}

pub async fn find_by_slug(
    db: impl PgExecutor<'_>,
    slug: &str,
) -> Result<Option<Team>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM teams WHERE slug = $1")
        .bind(slug)
        .fetch_optional(db)
        .await
}

pub async fn members(db: impl PgExecutor<'_>, team_id: Uuid) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id AS user_id, u.name, u.email, m.role, m.source FROM memberships m
         JOIN users u ON u.id = m.user_id WHERE m.team_id = $1
         ORDER BY m.role DESC, lower(u.name)",
    )
    .bind(team_id)
    .fetch_all(db)
    .await
}

/// Creates the team if no team has this slug yet; returns it either way.
pub async fn ensure(
    conn: &mut PgConnection,
    slug: &TeamSlug,
    name: &str,
) -> Result<Team, sqlx::Error> {
    sqlx::query(
        "INSERT INTO teams (id, slug, name) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(slug.as_str())
    .bind(name)
    .execute(&mut *conn)
    .await?;
    find_by_slug(&mut *conn, slug.as_str())
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn insert(
    conn: &mut PgConnection,
    slug: &TeamSlug,
    name: &str,
) -> Result<Option<Team>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO teams (id, slug, name) VALUES ($1, $2, $3)
         ON CONFLICT (slug) DO NOTHING RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(slug.as_str())
    .bind(name)
    .fetch_optional(conn)
    .await
}

pub async fn set_membership(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    team_id: Uuid,
    role: Role,
    source: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO memberships (user_id, team_id, role, source) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, team_id) DO UPDATE SET role = EXCLUDED.role, source = EXCLUDED.source",
    )
    .bind(user_id)
    .bind(team_id)
    .bind(role.as_str())
    .bind(source)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn remove_membership(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    team_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND team_id = $2")
        .bind(user_id)
        .bind(team_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes the identity provider's memberships of a user that are not in `keep`.
pub async fn drop_idp_memberships_except(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    keep: &[Uuid],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM memberships m USING teams t
         WHERE m.team_id = t.id AND m.user_id = $1 AND m.source = 'idp' AND NOT (m.team_id = ANY($2))
         RETURNING t.slug",
    )
    .bind(user_id)
    .bind(keep)
    .fetch_all(db)
    .await
}

/// The slugs of these teams, in the order of `ids`.
pub async fn slugs(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let found: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, slug FROM teams WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.iter().find(|(f, _)| f == id).cloned())
        .collect())
}
