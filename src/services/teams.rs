//! Teams and their members.

use serde_json::json;
use uuid::Uuid;

use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::domain::email::EmailAddress;
use crate::domain::team::{Role, TeamSlug};
use crate::error::{Error, FieldError, Result};
use crate::store::{
    self,
    teams::{Member, Team, TeamSummary},
};

pub async fn list(ctx: &Context, caller: &Caller) -> Result<Vec<TeamSummary>> {
    caller.actor.require(Action::ViewTeams)?;
    Ok(store::teams::list(&ctx.pool).await?)
}

pub struct TeamDetail {
    pub team: Team,
    pub members: Vec<Member>,
    /// May the caller change the members?
    pub can_manage: bool,
}

pub async fn get(ctx: &Context, caller: &Caller, slug: &str) -> Result<TeamDetail> {
    caller.actor.require(Action::ViewTeams)?;
    let team = store::teams::find_by_slug(&ctx.pool, slug)
        .await?
        .ok_or_else(|| Error::NotFound(format!("the team {slug:?}")))?;
    let members = store::teams::members(&ctx.pool, team.id).await?;
    let can_manage = caller.actor.can(Action::ManageMembers { team_id: team.id });
    Ok(TeamDetail {
        team,
        members,
        can_manage,
    })
}

pub async fn create(ctx: &Context, caller: &Caller, slug: &str, name: &str) -> Result<Team> {
    caller.actor.require(Action::ManageTeams)?;
    let mut errors = Vec::new();
    let slug = TeamSlug::parse(slug)
        .map_err(|reason| errors.push(FieldError::new("slug", reason)))
        .ok();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let (Some(slug), true) = (slug, errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let mut tx = ctx.pool.begin().await?;
    let team = store::teams::insert(&mut tx, &slug, name)
        .await?
        .ok_or_else(|| Error::Conflict(format!("a team named {slug} already exists")))?;
    audit::by(
        &mut tx,
        caller,
        "team.created",
        "team",
        slug.as_str(),
        json!({ "name": name }),
    )
    .await?;
    tx.commit().await?;
    Ok(team)
}

/// Adds a person (by email, who must have signed in once) or changes their role.
pub async fn set_member(
    ctx: &Context,
    caller: &Caller,
    slug: &str,
    email: &str,
    role: &str,
) -> Result<()> {
    put_member(ctx, caller, slug, email, role).await.map(|_| ())
}

/// What [`put_member`] did.
pub struct MemberSet {
    /// The membership as it now is.
    pub member: Member,
    /// Whether the person was not a member before (else their role was set).
    pub added: bool,
}

/// [`set_member`], saying what the membership now is and whether it is new.
pub async fn put_member(
    ctx: &Context,
    caller: &Caller,
    slug: &str,
    email: &str,
    role: &str,
) -> Result<MemberSet> {
    let team = store::teams::find_by_slug(&ctx.pool, slug)
        .await?
        .ok_or_else(|| Error::NotFound(format!("the team {slug:?}")))?;
    caller
        .actor
        .require(Action::ManageMembers { team_id: team.id })?;
    let mut errors = Vec::new();
    let email = EmailAddress::parse(email)
        .map_err(|reason| errors.push(FieldError::new("email", reason)))
        .ok();
    let role = Role::parse(role)
        .map_err(|reason| errors.push(FieldError::new("role", reason)))
        .ok();
    let (Some(email), Some(role)) = (email, role) else {
        return Err(Error::Invalid(errors));
    };
    let mut tx = ctx.pool.begin().await?;
    let user = store::users::find_by_email(&mut *tx, email.as_str())
        .await?
        .ok_or_else(|| Error::invalid("email", "nobody with this email has signed in yet"))?;
    let added = !store::teams::members(&mut *tx, team.id)
        .await?
        .iter()
        .any(|m| m.user_id == user.id);
    store::teams::set_membership(&mut *tx, user.id, team.id, role, "manual").await?;
    audit::by(
        &mut tx,
        caller,
        "membership.set",
        "team",
        &team.slug,
        json!({ "user": user.email, "role": role }),
    )
    .await?;
    tx.commit().await?;
    Ok(MemberSet {
        member: Member {
            user_id: user.id,
            name: user.name,
            email: user.email,
            role: role.as_str().to_owned(),
            source: "manual".into(),
        },
        added,
    })
}

pub async fn remove_member(
    ctx: &Context,
    caller: &Caller,
    slug: &str,
    user_id: Uuid,
) -> Result<()> {
    let team = store::teams::find_by_slug(&ctx.pool, slug)
        .await?
        .ok_or_else(|| Error::NotFound(format!("the team {slug:?}")))?;
    caller
        .actor
        .require(Action::ManageMembers { team_id: team.id })?;
    let mut tx = ctx.pool.begin().await?;
    if !store::teams::remove_membership(&mut *tx, user_id, team.id).await? {
        return Err(Error::NotFound("that member".into()));
    }
    audit::by(
        &mut tx,
        caller,
        "membership.removed",
        "team",
        &team.slug,
        json!({ "user_id": user_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
