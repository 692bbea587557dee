//! Signing in and out, sessions, and who is calling.

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context, audit};
use crate::auth::policy::{Action, Actor};
use crate::auth::secrets;
use crate::domain::email::EmailAddress;
use crate::domain::team::{Role, TeamSlug, grants_from_groups};
use crate::error::{Error, Result};
use crate::store::{self, users::User};

/// The issuer recorded for people signed in through the development sign-in.
pub const DEV_ISSUER: &str = "dev";
/// The issuer recorded for users created by `switchboard admin create-token`.
pub const LOCAL_ISSUER: &str = "local";

/// Who the identity provider says this person is.
#[derive(Clone, Debug)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub name: String,
    /// `None` when the provider sent no groups claim: memberships stay as they are.
    pub groups: Option<Vec<String>>,
}

/// A new session: the cookie value (shown to the browser only) and the user.
pub struct SignedIn {
    pub session_token: String,
    pub user: User,
    pub return_to: String,
}

/// Signs a person in: creates them on first sign-in, re-syncs their teams from
/// the groups claim, and starts a *new* session (the anonymous one, which
/// carried the sign-in attempt, ends: no session fixation).
pub async fn sign_in(
    ctx: &Context,
    identity: &Identity,
    previous_session: Option<&[u8]>,
    user_agent: Option<&str>,
    return_to: String,
    request_id: Option<&str>,
) -> Result<SignedIn> {
    let mut tx = ctx.pool.begin().await?;
    let (user, created) = store::users::upsert(
        &mut tx,
        &identity.issuer,
        &identity.subject,
        &identity.email,
        &identity.name,
    )
    .await?;
    if created {
        audit::record(
            &mut tx,
            Some(&user_label(&user)),
            Some(user.id),
            request_id,
            "user.created",
            "user",
            &user.id.to_string(),
            json!({ "email": user.email, "issuer": user.issuer }),
        )
        .await?;
    }
    if let Some(groups) = &identity.groups {
        sync_groups(
            &mut tx,
            &user,
            groups,
            &ctx.settings.admin_group,
            request_id,
        )
        .await?;
    }
    let session_token = secrets::random_token();
    let expires_at = Utc::now() + Duration::seconds(ctx.settings.session_max_seconds);
    store::sessions::insert(
        &mut *tx,
        &secrets::hash(&session_token),
        Some(user.id),
        expires_at,
        user_agent,
    )
    .await?;
    if let Some(previous) = previous_session {
        store::sessions::revoke(&mut *tx, previous).await?;
    }
    audit::record(
        &mut tx,
        Some(&user_label(&user)),
        Some(user.id),
        request_id,
        "session.signed_in",
        "user",
        &user.id.to_string(),
        json!({ "issuer": identity.issuer }),
    )
    .await?;
    tx.commit().await?;
    let user = store::users::find(&ctx.pool, user.id)
        .await?
        .unwrap_or(user);
    Ok(SignedIn {
        session_token,
        user,
        return_to: safe_return_to(&return_to),
    })
}

fn user_label(user: &User) -> String {
    format!("{} <{}>", user.name, user.email)
}

/// Team memberships and the admin flag follow the identity provider's groups.
async fn sync_groups(
    conn: &mut PgConnection,
    user: &User,
    groups: &[String],
    admin_group: &str,
    request_id: Option<&str>,
) -> Result<()> {
    let grants = grants_from_groups(groups, admin_group);
    if !grants.ignored.is_empty() {
        tracing::debug!(ignored = ?grants.ignored, "groups that name no team");
    }
    let mut keep = Vec::new();
    let mut changes = Vec::new();
    for (slug, role) in &grants.teams {
        let team = store::teams::ensure(&mut *conn, slug, slug.as_str()).await?;
        store::teams::set_membership(&mut *conn, user.id, team.id, *role, "idp").await?;
        keep.push(team.id);
        changes.push(format!("{slug}:{role}"));
    }
    let removed = store::teams::drop_idp_memberships_except(&mut *conn, user.id, &keep).await?;
    if user.is_admin != grants.admin {
        store::users::set_admin(&mut *conn, user.id, grants.admin).await?;
    }
    audit::record(
        conn,
        Some(&user_label(user)),
        Some(user.id),
        request_id,
        "memberships.synced",
        "user",
        &user.id.to_string(),
        json!({ "teams": changes, "removed": removed, "admin": grants.admin }),
    )
    .await
}

/// Only paths on this portal: an attacker-supplied `//evil.example` is refused,
/// and so is anything with a control character or whitespace, which browsers
/// drop from URLs (`/\t/evil.example` becomes `//evil.example`).
pub fn safe_return_to(path: &str) -> String {
    if path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.contains("://")
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        path.to_owned()
    } else {
        "/me".to_owned()
    }
}

/// The form of the development sign-in.
pub struct DevSignIn {
    pub email: String,
    pub name: String,
    pub team: String,
    pub role: String,
    pub admin: bool,
    /// Sign in as an existing development user, keeping their teams.
    pub keep_teams: bool,
    pub return_to: String,
}

/// Development sign-in: only under `up` without an identity provider, or when
/// explicitly switched on (`SWITCHBOARD_DEV_SIGN_IN=1`).
pub async fn dev_sign_in(
    ctx: &Context,
    form: &DevSignIn,
    previous_session: Option<&[u8]>,
    user_agent: Option<&str>,
    request_id: Option<&str>,
) -> Result<SignedIn> {
    if !ctx.settings.dev_sign_in {
        return Err(Error::NotFound(
            "the development sign-in (it is off: people sign in through the identity provider)"
                .into(),
        ));
    }
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&form.email)
        .map_err(|reason| errors.push(crate::error::FieldError::new("email", reason)))
        .ok();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(crate::error::FieldError::new(
            "name",
            "must be 1 to 100 characters",
        ));
    }
    let team = form.team.trim();
    let team = if team.is_empty() {
        None
    } else {
        TeamSlug::parse(team)
            .map_err(|reason| errors.push(crate::error::FieldError::new("team", reason)))
            .ok()
    };
    let role = Role::parse(&form.role)
        .map_err(|reason| errors.push(crate::error::FieldError::new("role", reason)))
        .ok();
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let mut groups = Vec::new();
    if let Some(team) = team {
        groups.push(match role {
            Role::Lead => format!("{team}:lead"),
            Role::Member => team.to_string(),
        });
    }
    if form.admin {
        groups.push(ctx.settings.admin_group.clone());
    }
    let identity = Identity {
        issuer: DEV_ISSUER.into(),
        subject: email.as_str().to_lowercase(),
        email: email.to_string(),
        name: name.to_owned(),
        groups: (!form.keep_teams).then_some(groups),
    };
    sign_in(
        ctx,
        &identity,
        previous_session,
        user_agent,
        form.return_to.clone(),
        request_id,
    )
    .await
}

/// Ends this session.
pub async fn sign_out(ctx: &Context, caller: &Caller, session_hash: &[u8]) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    store::sessions::revoke(&mut *tx, session_hash).await?;
    audit::by(
        &mut tx,
        caller,
        "session.signed_out",
        "user",
        &caller.actor.user_id.to_string(),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of a user (an admin's "sign out everywhere").
pub async fn revoke_sessions(ctx: &Context, caller: &Caller, user_id: Uuid) -> Result<u64> {
    caller.actor.require(Action::RevokeSessions { user_id })?;
    let mut tx = ctx.pool.begin().await?;
    if store::users::find(&mut *tx, user_id).await?.is_none() {
        return Err(Error::NotFound("that user".into()));
    }
    let ended = store::sessions::revoke_all_for_user(&mut *tx, user_id).await?;
    audit::by(
        &mut tx,
        caller,
        "sessions.revoked",
        "user",
        &user_id.to_string(),
        json!({ "sessions": ended }),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

pub struct UserRow {
    pub user: User,
    pub live_sessions: i64,
}

pub async fn list_users(ctx: &Context, caller: &Caller) -> Result<Vec<UserRow>> {
    caller.actor.require(Action::ViewUsers)?;
    let counts = store::sessions::live_counts(&ctx.pool).await?;
    let users = store::users::list(&ctx.pool).await?;
    Ok(users
        .into_iter()
        .map(|user| UserRow {
            live_sessions: counts.get(&user.id).copied().unwrap_or(0),
            user,
        })
        .collect())
}

/// The actor behind a browser session, if the session is live.
pub async fn actor_for_session(
    ctx: &Context,
    session_hash: &[u8],
) -> Result<Option<(Option<Actor>, store::sessions::Session)>> {
    let Some(session) =
        store::sessions::find_live(&ctx.pool, session_hash, ctx.settings.session_idle_seconds)
            .await?
    else {
        return Ok(None);
    };
    store::sessions::touch(&ctx.pool, session_hash).await?;
    let actor = match session.user_id {
        Some(user_id) => store::users::actor(&mut *ctx.pool.acquire().await?, user_id).await?,
        None => None,
    };
    Ok(Some((actor, session)))
}

/// A new anonymous session, to carry a sign-in attempt and the CSRF token.
pub async fn start_anonymous_session(
    ctx: &Context,
    user_agent: Option<&str>,
) -> Result<(String, Vec<u8>)> {
    let token = secrets::random_token();
    let hash = secrets::hash(&token);
    let expires_at = Utc::now() + Duration::hours(1);
    store::sessions::insert(&ctx.pool, &hash, None, expires_at, user_agent).await?;
    Ok((token, hash))
}

/// The actor behind an API token, if it is usable.
pub async fn actor_for_token(ctx: &Context, token: &str) -> Result<Option<Actor>> {
    let Some((_, user_id)) = store::tokens::authenticate(&ctx.pool, &secrets::hash(token)).await?
    else {
        return Ok(None);
    };
    Ok(store::users::actor(&mut *ctx.pool.acquire().await?, user_id).await?)
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_on_this_portal() {
        assert_eq!(safe_return_to("/teams/payments"), "/teams/payments");
        for bad in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{85}/evil.example",
            "/\u{2028}/evil.example",
            "me",
            "",
        ] {
            assert_eq!(safe_return_to(bad), "/me", "{bad}");
        }
    }
}
