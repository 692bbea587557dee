//! People and their team memberships.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::auth::policy::{Actor, TeamRole};
use crate::domain::team::{Role, TeamSlug};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// Creates the user on first sign-in, else refreshes name and email.
pub async fn upsert(
    conn: &mut PgConnection,
    issuer: &str,
    subject: &str,
    email: &str,
    name: &str,
) -> Result<(User, bool), sqlx::Error> {
    let row: (Uuid, bool) = sqlx::query_as(
        "INSERT INTO users (id, issuer, subject, email, name, last_sign_in_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (issuer, subject) DO UPDATE
           SET email = EXCLUDED.email, name = EXCLUDED.name, last_sign_in_at = now()
         RETURNING id, (xmax = 0) AS created",
    )
    .bind(Uuid::new_v4())
    .bind(issuer)
    .bind(subject)
    .bind(email)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    let user = find(&mut *conn, row.0)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok((user, row.1))
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn find_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM users WHERE lower(email) = lower($1) ORDER BY created_at LIMIT 1")
        .bind(email)
        .fetch_optional(db)
        .await
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM users ORDER BY lower(name), email")
        .fetch_all(db)
        .await
}

pub async fn set_admin(
    db: impl PgExecutor<'_>,
    id: Uuid,
    is_admin: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET is_admin = $2 WHERE id = $1")
        .bind(id)
        .bind(is_admin)
        .execute(db)
        .await?;
    Ok(())
}

#[derive(FromRow)]
struct ActorRow {
    id: Uuid,
    email: String,
    name: String,
    is_admin: bool,
    team_id: Option<Uuid>,
    slug: Option<String>,
    role: Option<String>,
}

/// The user as the policy sees them: admin flag and team roles. One query: it
/// runs for every authenticated request.
pub async fn actor(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Actor>, sqlx::Error> {
    let rows: Vec<ActorRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.is_admin, t.id AS team_id, t.slug, m.role
         FROM users u LEFT JOIN memberships m ON m.user_id = u.id
         LEFT JOIN teams t ON t.id = m.team_id
         WHERE u.id = $1 ORDER BY t.slug",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let Some(user) = rows.first() else {
        return Ok(None);
    };
    let teams = rows
        .iter()
        .filter_map(|r| {
            Some(TeamRole {
                team_id: r.team_id?,
                slug: TeamSlug::parse(r.slug.as_deref()?).ok()?,
                role: Role::parse(r.role.as_deref()?).ok()?,
            })
        })
        .collect();
    Ok(Some(Actor {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        is_admin: user.is_admin,
        teams,
    }))
}
