//! The guardrails in force: read by everyone who sees networks, changed by
//! admins (each save a new version, refused while the set's own tests fail or
//! when someone saved in between), and judged on every request: the preview,
//! the request itself and each approval. A saved set is checked against the
//! open connections; those it would now refuse are reported to their owners
//! and the admins, not removed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::connections::{ConnectionRequest, Notice, notify};
use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::domain::connection::{Kind, Status};
use crate::domain::guardrail::{self, Outcome, Proposal, RuleSet, Verdict};
use crate::domain::notification::Topic;
use crate::error::{Error, FieldError, Result};
use crate::notify::messages::{Compose, PlainNotice};
use crate::planner::Plan;
use crate::store::{self, connections::Connection};

/// A version of the guardrails (version 0: none saved yet).
#[derive(Debug, Clone, Serialize)]
pub struct Guardrails {
    pub version: i32,
    pub rule_set: RuleSet,
    pub comment: String,
    pub saved_by: Option<String>,
    pub saved_at: Option<DateTime<Utc>>,
}

impl Guardrails {
    fn of(v: store::guardrails::Version) -> Result<Guardrails> {
        Ok(Guardrails {
            version: v.version,
            rule_set: serde_json::from_value(v.rule_set).map_err(Error::internal)?,
            comment: v.comment,
            saved_by: v.saved_by_name,
            saved_at: Some(v.saved_at),
        })
    }

    fn none() -> Guardrails {
        Guardrails {
            version: 0,
            rule_set: RuleSet::default(),
            comment: String::new(),
            saved_by: None,
            saved_at: None,
        }
    }
}

/// What an admin saves: the whole set, and the version it was edited from.
#[derive(Debug, Clone, Deserialize)]
pub struct SaveGuardrails {
    pub rule_set: RuleSet,
    pub based_on_version: i32,
    pub comment: String,
}

/// An open connection a saved set would now refuse.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub connection_id: Uuid,
    pub verdicts: Vec<Verdict>,
}

async fn in_force(conn: &mut PgConnection) -> Result<Guardrails> {
    match store::guardrails::current(&mut *conn).await? {
        Some(v) => Guardrails::of(v),
        None => Ok(Guardrails::none()),
    }
}

pub async fn current(ctx: &Context, caller: &Caller) -> Result<Guardrails> {
    caller.actor.require(Action::ViewNetworks)?;
    let mut conn = ctx.pool.acquire().await?;
    in_force(&mut conn).await
}

pub async fn history(ctx: &Context, caller: &Caller) -> Result<Vec<Guardrails>> {
    caller.actor.require(Action::ViewNetworks)?;
    store::guardrails::history(&ctx.pool, 100)
        .await?
        .into_iter()
        .map(Guardrails::of)
        .collect()
}

/// Saves a new version, then reports the open connections it would refuse.
pub async fn save(
    ctx: &Context,
    caller: &Caller,
    save: SaveGuardrails,
) -> Result<(Guardrails, Vec<Violation>)> {
    caller.actor.require(Action::ManageGuardrails)?;
    let mut problems: Vec<FieldError> = save
        .rule_set
        .problems()
        .into_iter()
        .map(|p| FieldError::new("rule_set", p))
        .collect();
    if save.comment.chars().count() > 500 {
        problems.push(FieldError::new("comment", "must be at most 500 characters"));
    }
    let mut tx = ctx.pool.begin().await?;
    for rule in &save.rule_set.rules {
        if let guardrail::Then::ApprovalFrom(team) = &rule.then
            && !team.trim().is_empty()
            && store::teams::find_by_slug(&mut *tx, team).await?.is_none()
        {
            problems.push(FieldError::new(
                "rule_set",
                format!("rule {}: there is no team {team} to approve", rule.name),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let stored = serde_json::to_value(&save.rule_set).map_err(Error::internal)?;
    let Some(version) = store::guardrails::save(
        &mut tx,
        save.based_on_version,
        &stored,
        save.comment.trim(),
        caller.actor.user_id,
    )
    .await?
    else {
        return Err(Error::Conflict(format!(
            "the guardrails changed since version {}: reload them and make your change again",
            save.based_on_version
        )));
    };
    audit::by(
        &mut tx,
        caller,
        "guardrails.saved",
        "guardrails",
        &version.to_string(),
        json!({ "after": { "version": version, "rules": save.rule_set.rules.len(), "tests": save.rule_set.tests.len() } }),
    )
    .await?;
    let saved = in_force(&mut tx).await?;
    let (violations, waiting) = check_open(&mut tx, &saved.rule_set).await?;
    report(ctx, &mut tx, &saved, &violations).await?;
    for (id, verdicts) in waiting {
        let Some(c) = store::connections::find(&mut *tx, id).await? else {
            continue;
        };
        let mut plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
        if plan.guardrails != verdicts {
            plan.guardrails = verdicts;
            let shown = serde_json::to_value(&plan.guardrails).map_err(Error::internal)?;
            store::connections::set_guardrail_verdicts(&mut *tx, id, &shown).await?;
        }
        ask_approvers(ctx, caller, &mut tx, &c, &plan).await?;
    }
    tx.commit().await?;
    Ok((saved, violations))
}

/// The verdicts of the rules in force on a request (`except`: the connection
/// itself, when it already exists and is counted among the open ones).
pub(in crate::services) async fn judge(
    conn: &mut PgConnection,
    req: &ConnectionRequest,
    expires_at: Option<DateTime<Utc>>,
    except: Option<Uuid>,
) -> Result<Vec<Verdict>> {
    let rules = in_force(conn).await?.rule_set;
    if rules.rules.is_empty() {
        return Ok(Vec::new());
    }
    match proposal(conn, req, expires_at, except).await? {
        Some(p) => Ok(rules.judge(&p)),
        None => Ok(Vec::new()),
    }
}

/// The verdicts that refuse the request.
pub(in crate::services) fn denials(verdicts: &[Verdict]) -> impl Iterator<Item = &Verdict> {
    verdicts.iter().filter(|v| v.outcome == Outcome::Deny)
}

/// The refusals among `verdicts`, as field errors naming each rule.
pub(in crate::services) fn refused(verdicts: &[Verdict]) -> Result<()> {
    let refusals: Vec<FieldError> = denials(verdicts)
        .map(|v| FieldError::new(v.field.clone(), v.reason.clone()))
        .collect();
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(refusals))
    }
}

/// Refuses with 409 what the rules in force refuse now (an approval, a
/// build): `what`, then each refusing rule's reason.
pub(in crate::services) fn refused_now(verdicts: &[Verdict], what: &str) -> Result<()> {
    let why: Vec<&str> = denials(verdicts).map(|v| v.reason.as_str()).collect();
    if why.is_empty() {
        Ok(())
    } else {
        Err(Error::Conflict(format!("{what}: {}", why.join("; "))))
    }
}

/// The teams (slugs) the rules ask to approve too.
pub(in crate::services) fn approving_teams(verdicts: &[Verdict]) -> Vec<String> {
    let mut teams: Vec<String> = verdicts
        .iter()
        .filter_map(|v| match &v.outcome {
            Outcome::Approval(team) => Some(team.clone()),
            _ => None,
        })
        .collect();
    teams.sort();
    teams.dedup();
    teams
}

/// A request as the rules see it: its ends' teams and labels (the networks'
/// tags), its ports, source range, expiry and how many are open already.
async fn proposal(
    conn: &mut PgConnection,
    req: &ConnectionRequest,
    expires_at: Option<DateTime<Utc>>,
    except: Option<Uuid>,
) -> Result<Option<Proposal>> {
    let Some(kind) = Kind::parse(&req.kind) else {
        return Ok(None);
    };
    let from = end(conn, req.source_network_id).await?;
    let to = end(conn, req.destination_network_id).await?;
    let source_cidr = req
        .source_cidr
        .as_deref()
        .and_then(|c| crate::ipam::parse_cidr(c.trim()).ok());
    let team = from
        .as_ref()
        .or(to.as_ref())
        .map(|e| e.team.clone())
        .or_else(|| req.team.clone())
        .unwrap_or_default();
    let open_for_team = store::guardrails::open_for_team(&mut *conn, &team, except).await?;
    let open_into_network = match req.destination_network_id {
        Some(id) => store::guardrails::open_into_network(&mut *conn, id, except).await?,
        None => 0,
    };
    let hours = match expires_at {
        Some(at) => Some((at - Utc::now()).num_hours().max(0)),
        None => req.expires_in_hours,
    };
    Ok(Some(Proposal {
        kind,
        from,
        source_cidr,
        to,
        ports: req.ports.clone().unwrap_or_default(),
        expires_in_days: hours.map(|h| u32::try_from((h + 23) / 24).unwrap_or(u32::MAX)),
        open_for_team: u32::try_from(open_for_team).unwrap_or(u32::MAX),
        open_into_network: u32::try_from(open_into_network).unwrap_or(u32::MAX),
    }))
}

async fn end(conn: &mut PgConnection, id: Option<Uuid>) -> Result<Option<guardrail::End>> {
    let Some(id) = id else { return Ok(None) };
    let Some(n) = store::networks::find(&mut *conn, id).await? else {
        return Ok(None);
    };
    // The pools' labels (e.g. `environment=prod`), then the network's own tags.
    let mut labels = std::collections::BTreeMap::new();
    let pools = store::guardrails::pool_labels(&mut *conn, id).await?;
    for set in pools.iter().chain([&n.tags]) {
        for (k, v) in set.as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                labels.insert(k.clone(), v.to_owned());
            }
        }
    }
    let labels = labels.into_iter().collect();
    Ok(Some(guardrail::End {
        team: n.team_slug,
        labels,
    }))
}

/// The open connections `rules` would refuse, and the waiting requests with
/// every verdict of `rules` on them.
async fn check_open(
    conn: &mut PgConnection,
    rules: &RuleSet,
) -> Result<(Vec<Violation>, Vec<(Uuid, Vec<Verdict>)>)> {
    let (mut refused, mut waiting) = (Vec::new(), Vec::new());
    for open in store::guardrails::open_connections(&mut *conn).await? {
        let Ok(req) = serde_json::from_value::<ConnectionRequest>(open.spec) else {
            continue;
        };
        let Some(p) = proposal(conn, &req, open.expires_at, Some(open.id)).await? else {
            continue;
        };
        let verdicts = rules.judge(&p);
        let denied: Vec<Verdict> = denials(&verdicts).cloned().collect();
        if !denied.is_empty() {
            refused.push(Violation {
                connection_id: open.id,
                verdicts: denied,
            });
        }
        if open.status == Status::PendingApproval.as_str() {
            waiting.push((open.id, verdicts));
        }
    }
    Ok((refused, waiting))
}

/// Asks the teams the plan's verdicts name to approve a waiting request too
/// (none is ever taken away), and emails their leads; `caller` made the
/// rules or the decision that asks it.
pub(in crate::services) async fn ask_approvers(
    ctx: &Context,
    caller: &Caller,
    tx: &mut PgConnection,
    c: &Connection,
    plan: &Plan,
) -> Result<()> {
    for slug in approving_teams(&plan.guardrails) {
        let Some(team) = store::teams::find_by_slug(&mut *tx, &slug).await? else {
            continue;
        };
        if !store::connections::add_side(&mut *tx, c.id, team.id).await? {
            continue;
        }
        audit::by(
            &mut *tx,
            caller,
            "connection.approver_added",
            "connection",
            &c.id.to_string(),
            json!({ "after": { "team": slug, "why": "guardrails" } }),
        )
        .await?;
        for (_, email, name) in store::connections::leads_of(&mut *tx, &[team.id]).await? {
            notify(ctx, tx, &email, &name, Notice::ApprovalNeeded, c, plan).await?;
        }
    }
    Ok(())
}

/// Tells each violating connection's requester and its sides' leads, and
/// every admin once with the whole list.
async fn report(
    ctx: &Context,
    tx: &mut PgConnection,
    saved: &Guardrails,
    violations: &[Violation],
) -> Result<()> {
    if violations.is_empty() {
        return Ok(());
    }
    let notice = |name: String, about: String, lines: Vec<String>, url: String| PlainNotice {
        name,
        about,
        subject: format!("breaks the guardrails of version {}", saved.version),
        headline: format!(
            "The guardrails saved as version {} would refuse this today. Nothing was removed.",
            saved.version
        ),
        lines,
        footer: "Change or remove the connection, or ask an admin about the rule.".into(),
        url,
    };
    let mut all = Vec::new();
    for v in violations {
        let Some(c) = store::connections::find(&mut *tx, v.connection_id).await? else {
            continue;
        };
        let lines: Vec<String> = v
            .verdicts
            .iter()
            .map(|v| format!("{}.", v.reason))
            .collect();
        let about = format!("Connection {}", c.reason);
        all.push(format!("{about}: {}", lines.join(" ")));
        let url = ctx
            .settings
            .absolute_url(&format!("/connections/{}", v.connection_id));
        let mut people = vec![(c.requester_email.clone(), c.requester_name.clone())];
        let sides: Vec<Uuid> = store::connections::sides(&mut *tx, c.id)
            .await?
            .into_iter()
            .map(|s| s.team_id)
            .collect();
        for (_, email, name) in store::connections::leads_of(&mut *tx, &sides).await? {
            if !people.iter().any(|(e, _)| *e == email) {
                people.push((email, name));
            }
        }
        for (email, name) in people {
            let message = notice(name, about.clone(), lines.clone(), url.clone()).compose();
            super::monitor::send(tx, Some(Topic::Drift), &email, message).await?;
        }
    }
    for (email, name) in store::monitoring::admins(&mut *tx).await? {
        let message = notice(
            name,
            format!("{} open connections", violations.len()),
            all.clone(),
            ctx.settings.absolute_url("/guardrails"),
        )
        .compose();
        super::monitor::send(tx, None, &email, message).await?;
    }
    Ok(())
}
