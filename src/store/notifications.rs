//! Email preferences and team webhooks.

use sqlx::PgExecutor;
use uuid::Uuid;

/// Whether the person with this address wants email about `topic` (yes unless
/// they said no; addresses of no user get it).
pub async fn wants_email(
    db: impl PgExecutor<'_>,
    email: &str,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (
             SELECT 1 FROM notification_preferences p JOIN users u ON u.id = p.user_id
              WHERE lower(u.email) = lower($1) AND p.kind = $2 AND NOT p.email)",
    )
    .bind(email)
    .bind(topic)
    .fetch_one(db)
    .await
}

/// The topics this person turned email off for.
pub async fn turned_off(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT kind FROM notification_preferences WHERE user_id = $1 AND NOT email ORDER BY kind",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

pub async fn set(
    db: impl PgExecutor<'_>,
    user: Uuid,
    topic: &str,
    email: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notification_preferences (user_id, kind, email) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, kind) DO UPDATE SET email = $3",
    )
    .bind(user)
    .bind(topic)
    .bind(email)
    .execute(db)
    .await
    .map(drop)
}

/// A team's webhook: where to post, and where the signing secret is.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Webhook {
    pub team_id: Uuid,
    pub url: String,
    pub secret_ref: String,
}

pub async fn webhook(db: impl PgExecutor<'_>, team: Uuid) -> Result<Option<Webhook>, sqlx::Error> {
    sqlx::query_as("SELECT team_id, url, secret_ref FROM team_webhooks WHERE team_id = $1")
        .bind(team)
        .fetch_optional(db)
        .await
}

pub async fn set_webhook(
    db: impl PgExecutor<'_>,
    team: Uuid,
    url: &str,
    secret_ref: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO team_webhooks (team_id, url, secret_ref) VALUES ($1, $2, $3)
         ON CONFLICT (team_id) DO UPDATE SET url = $2, secret_ref = $3",
    )
    .bind(team)
    .bind(url)
    .bind(secret_ref)
    .execute(db)
    .await
    .map(drop)
}

pub async fn delete_webhook(db: impl PgExecutor<'_>, team: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM team_webhooks WHERE team_id = $1")
        .bind(team)
        .execute(db)
        .await
        .map(|r| r.rows_affected() > 0)
}

/// The webhooks of the teams on each side of these connections: (connection, hook).
pub async fn webhooks_of(
    db: impl PgExecutor<'_>,
    connections: &[Uuid],
) -> Result<Vec<(Uuid, String, Webhook)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, Uuid, String, String)> = sqlx::query_as(
        "SELECT s.connection_id, t.slug, w.team_id, w.url, w.secret_ref
           FROM connection_sides s JOIN team_webhooks w ON w.team_id = s.team_id
           JOIN teams t ON t.id = s.team_id
          WHERE s.connection_id = ANY($1)",
    )
    .bind(connections)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, slug, team_id, url, secret_ref)| {
            (
                c,
                slug,
                Webhook {
                    team_id,
                    url,
                    secret_ref,
                },
            )
        })
        .collect())
}
