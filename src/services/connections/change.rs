//! Changing an active connection: other ports or protocol, or another reason.
//! The planner makes the new plan; the difference (items added, removed,
//! kept) is what the leads see. A change that lets something new through
//! waits for a lead of every side to approve the new plan's hash; one that
//! lets less through (or only rewords the reason) is applied at once for
//! anyone who may change the connection. The workers build only the
//! difference, in place (`provisioning::apply_change`).

use super::*;
use crate::domain::change::{Scope, Traffic, scope};
use crate::notify::messages::PlainNotice;
use crate::services::guardrails;
use crate::services::provisioning::queue_change;
use crate::store::changes::{Change, ChangeSide, NewChange};

/// What may change, as typed; absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub protocol: Option<String>,
    pub ports: Option<String>,
    pub reason: Option<String>,
}

/// Items of the plan in words, by what happens to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

/// A change with its sides' decisions.
#[derive(Debug)]
pub struct ChangeView {
    pub change: Change,
    pub sides: Vec<ChangeSide>,
    pub difference: Difference,
    /// The plan the change builds.
    pub plan: Plan,
    /// What a waiting change would let through that the connection does not
    /// (with any open connection that already allows it), and what it would
    /// no longer let through; shown when the change is looked at alone.
    pub reach: Option<(
        Vec<crate::services::reach::Added>,
        Vec<crate::domain::reach::Flow>,
    )>,
}

/// What each item of `old` and `new` becomes, in the words steps use.
pub fn difference(old: &Plan, new: &Plan) -> Result<Difference> {
    let mut d = Difference::default();
    let items = |p: &Plan| -> Result<Vec<(serde_json::Value, String)>> {
        let mut all = Vec::new();
        for account in providers::accounts_of(p) {
            for planned in providers::planned_in(p, &account)
                .map_err(|e| Error::because("reading a plan", e))?
            {
                all.push((planned.probe, planned.item.resource(&account)));
            }
        }
        Ok(all)
    };
    let (before, after) = (items(old)?, items(new)?);
    for (probe, words) in &after {
        if before.iter().any(|(p, _)| p == probe) {
            d.kept.push(words.clone());
        } else {
            d.added.push(words.clone());
        }
    }
    d.removed = before
        .iter()
        .filter(|(p, _)| !after.iter().any(|(q, _)| q == p))
        .map(|(_, words)| words.clone())
        .collect();
    Ok(d)
}

/// The traffic a stored request lets through; a field that does not parse is named.
fn traffic(spec: &ConnectionRequest) -> Result<Traffic> {
    let protocol = Protocol::parse(spec.protocol.as_deref().unwrap_or_default())
        .map_err(|why| Error::invalid("protocol", why))?;
    let ports = connection::parse_ports(spec.ports.as_deref().unwrap_or_default())
        .map_err(|why| Error::invalid("ports", why))?;
    Ok(Traffic { protocol, ports })
}

/// Asks for a change of an active connection (its requester, a lead of a
/// side, an admin).
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn propose_change(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    req: ChangeRequest,
) -> Result<ChangeView> {
    let mut tx = ctx.pool.begin().await?;
    let (c, sides, _, _permit) = locked(&mut tx, caller, id, ConnectionAction::Change).await?;
    let before: ConnectionRequest =
        serde_json::from_value(c.spec.clone()).map_err(Error::internal)?;
    let mut after = before.clone();
    let opens = c.kind.has_ports();
    if !opens && (req.protocol.is_some() || req.ports.is_some()) {
        return Err(Error::invalid(
            "ports",
            format!(
                "a {} has no ports to change: only its reason can change",
                c.kind.label()
            ),
        ));
    }
    if let Some(reason) = &req.reason {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(Error::invalid("reason", "must be 1 to 2000 characters"));
        }
        after.reason = reason.to_owned();
    }
    if let Some(protocol) = &req.protocol {
        after.protocol = Some(protocol.trim().to_owned());
    }
    if let Some(ports) = &req.ports {
        after.ports = Some(ports.trim().to_owned());
    }
    let reach = if opens {
        scope(&traffic(&before)?, &traffic(&after)?)
    } else {
        Scope::Same
    };
    let old: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    let mut new = super::request::plan_for(&mut tx, &after).await?;
    // The rules in force judge the connection as it would be after the change.
    new.guardrails = guardrails::judge(&mut tx, &after, c.expires_at, Some(id)).await?;
    guardrails::refused(&new.guardrails)?;
    if reach == Scope::Same && new.hash() == c.plan_hash && after.reason == before.reason {
        return Err(Error::invalid(
            if opens { "ports" } else { "reason" },
            "is what the connection already has: change the ports, the protocol or the reason",
        ));
    }
    let difference = difference(&old, &new)?;
    let change_id = Uuid::new_v4();
    let (scope_word, status) = match reach {
        Scope::Wider => ("wider", "pending"),
        Scope::Narrower => ("narrower", "approved"),
        Scope::Same => ("same", "approved"),
    };
    let inserted = store::changes::insert(
        &mut *tx,
        NewChange {
            id: change_id,
            connection_id: id,
            requested_by: caller.actor.user_id,
            spec: &serde_json::to_value(&after).map_err(Error::internal)?,
            plan: &serde_json::to_value(&new).map_err(Error::internal)?,
            plan_hash: &new.hash(),
            previous_plan_hash: &c.plan_hash,
            difference: &serde_json::to_value(&difference).map_err(Error::internal)?,
            scope: scope_word,
            status,
        },
    )
    .await?;
    if !inserted {
        return Err(Error::Conflict(
            "another change of this connection waits: it must be decided or applied first".into(),
        ));
    }
    audit::by(
        &mut tx,
        caller,
        "connection.change_asked",
        "connection",
        &id.to_string(),
        json!({ "change": change_id, "scope": scope_word, "difference": difference,
                "before": { "protocol": before.protocol, "ports": before.ports, "reason": before.reason },
                "after": { "protocol": after.protocol, "ports": after.ports, "reason": after.reason } }),
    )
    .await?;
    let change = store::changes::find(&mut *tx, change_id)
        .await?
        .ok_or_else(|| Error::internal("a change vanished"))?;
    if reach == Scope::Wider {
        let mut teams: Vec<Uuid> = sides.iter().map(|s| s.team_id).collect();
        // A guardrail may ask one more team to consent to what opens more.
        for slug in guardrails::approving_teams(&new.guardrails) {
            if let Some(team) = store::teams::find_by_slug(&mut *tx, &slug).await?
                && !teams.contains(&team.id)
            {
                teams.push(team.id);
            }
        }
        store::changes::add_sides(&mut *tx, change_id, &teams).await?;
        for (_, email, name) in store::connections::leads_of(&mut *tx, &teams).await? {
            if email != caller.actor.email {
                let asked = (Topic::Approvals, "waiting for your approval");
                tell(ctx, &mut tx, &change, &new, (&email, &name), asked).await?;
            }
        }
    } else {
        queue_change(&mut tx, change_id).await?;
    }
    tx.commit().await?;
    change_view(ctx, change_id).await
}

/// A lead decides a change that lets more through, for their sides: approve
/// the plan they saw (its hash), or reject with a reason. The last approval
/// queues its application; a rejection ends it.
#[tracing::instrument(skip_all, fields(change = %change_id))]
pub async fn decide_change(
    ctx: &Context,
    caller: &Caller,
    change_id: Uuid,
    approve: bool,
    seen_plan_hash: &str,
    comment: &str,
) -> Result<ChangeView> {
    let mut tx = ctx.pool.begin().await?;
    let change = store::changes::lock(&mut *tx, change_id)
        .await?
        .ok_or_else(|| Error::NotFound("that change".into()))?;
    let (c, _, _, permit) = locked(
        &mut tx,
        caller,
        change.connection_id,
        ConnectionAction::DecideChange,
    )
    .await?;
    if change.requested_by == caller.actor.user_id {
        return Err(Error::Forbidden(
            "you asked for this change, so you cannot decide it: a lead of each side must".into(),
        ));
    }
    if change.status != "pending" {
        return Err(Error::Conflict(format!(
            "the change is {}: there is nothing to decide",
            change.status
        )));
    }
    let comment = comment.trim();
    if approve && seen_plan_hash.trim() != change.plan_hash {
        return Err(Error::Conflict(
            "the change's plan is not the one you saw: reload the connection and look again".into(),
        ));
    }
    if !approve && comment.is_empty() {
        return Err(Error::invalid("reason", "is required: say why"));
    }
    if approve {
        // The rules in force now decide, not those of the day it was asked.
        let after: ConnectionRequest =
            serde_json::from_value(change.spec.clone()).map_err(Error::internal)?;
        let verdicts = guardrails::judge(&mut tx, &after, c.expires_at, Some(c.id)).await?;
        guardrails::refused_now(&verdicts, "this change cannot be approved")?;
    }
    let decision = if approve { "approved" } else { "rejected" };
    let decided = store::changes::decide(
        &mut *tx,
        change_id,
        permit.teams(),
        decision,
        caller.actor.user_id,
    )
    .await?;
    if decided == 0 {
        return Err(Error::Conflict(
            "your side already decided this change".into(),
        ));
    }
    let plan: Plan = serde_json::from_value(change.plan.clone()).map_err(Error::internal)?;
    let undecided = store::changes::sides(&mut *tx, &[change_id])
        .await?
        .iter()
        .filter(|s| s.decision.is_none())
        .count();
    if !approve {
        store::changes::set_status(&mut *tx, change_id, "pending", "rejected", Some(comment))
            .await?;
        change_told(
            ctx,
            &mut tx,
            &change,
            &plan,
            (
                Topic::Decisions,
                &format!("rejected by {}: {comment}", caller.label()),
            ),
        )
        .await?;
    } else if undecided == 0 {
        store::changes::set_status(&mut *tx, change_id, "pending", "approved", None).await?;
        queue_change(&mut tx, change_id).await?;
    }
    audit::by(
        &mut tx,
        caller,
        if approve {
            "connection.change_approved"
        } else {
            "connection.change_rejected"
        },
        "connection",
        &change.connection_id.to_string(),
        json!({ "change": change_id, "plan_hash": change.plan_hash, "comment": comment }),
    )
    .await?;
    tx.commit().await?;
    change_view(ctx, change_id).await
}

/// A connection's changes, newest first (anyone who may see it).
pub async fn changes(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Vec<ChangeView>> {
    get(ctx, caller, id).await?;
    let found = store::changes::of_connection(&ctx.pool, id).await?;
    let ids: Vec<Uuid> = found.iter().map(|c| c.id).collect();
    let mut sides = store::changes::sides(&ctx.pool, &ids).await?;
    found
        .into_iter()
        .map(|change| {
            let (mine, rest) = sides.drain(..).partition(|s| s.change_id == change.id);
            sides = rest;
            view_with(change, mine)
        })
        .collect()
}

/// Changes waiting for this person's decision, oldest first.
pub async fn changes_waiting(ctx: &Context, caller: &Caller) -> Result<Vec<Change>> {
    Ok(store::changes::awaiting_lead(&ctx.pool, caller.actor.user_id).await?)
}

/// One change (anyone who may see its connection).
pub async fn change(ctx: &Context, caller: &Caller, change_id: Uuid) -> Result<ChangeView> {
    let change = store::changes::find(&ctx.pool, change_id)
        .await?
        .ok_or_else(|| Error::NotFound("that change".into()))?;
    get(ctx, caller, change.connection_id)
        .await
        .map_err(|_| Error::NotFound("that change".into()))?;
    view_of(ctx, change).await
}

async fn change_view(ctx: &Context, change_id: Uuid) -> Result<ChangeView> {
    let change = store::changes::find(&ctx.pool, change_id)
        .await?
        .ok_or_else(|| Error::internal("a change vanished"))?;
    view_of(ctx, change).await
}

async fn view_of(ctx: &Context, change: Change) -> Result<ChangeView> {
    let sides = store::changes::sides(&ctx.pool, &[change.id]).await?;
    let mut view = view_with(change, sides)?;
    if view.change.status == "pending"
        && let Some(c) = store::connections::find(&ctx.pool, view.change.connection_id).await?
        && let (Ok(before), Ok(after)) = (
            serde_json::from_value::<ConnectionRequest>(c.spec.clone()),
            serde_json::from_value::<ConnectionRequest>(view.change.spec.clone()),
        )
    {
        view.reach =
            Some(crate::services::reach::changed(ctx, c.id, c.kind, &before, &after).await?);
    }
    Ok(view)
}

fn view_with(change: Change, sides: Vec<ChangeSide>) -> Result<ChangeView> {
    let difference = serde_json::from_value(change.difference.clone()).unwrap_or_default();
    let plan = serde_json::from_value(change.plan.clone()).map_err(Error::internal)?;
    Ok(ChangeView {
        change,
        sides,
        difference,
        plan,
        reach: None,
    })
}

/// Tells whoever asked for the change what became of it (`what`: "applied",
/// "rejected by …", "failed: …").
pub(in crate::services) async fn change_told(
    ctx: &Context,
    tx: &mut PgConnection,
    change: &Change,
    plan: &Plan,
    (topic, what): (Topic, &str),
) -> Result<()> {
    let (email, name) = (
        change.requester_email.clone(),
        change.requester_name.clone(),
    );
    tell(ctx, tx, change, plan, (&email, &name), (topic, what)).await
}

/// Emails one person about a change, unless they turned its topic off.
async fn tell(
    ctx: &Context,
    tx: &mut PgConnection,
    change: &Change,
    plan: &Plan,
    (email, name): (&str, &str),
    (topic, what): (Topic, &str),
) -> Result<()> {
    let d: Difference = serde_json::from_value(change.difference.clone()).unwrap_or_default();
    let mut lines: Vec<String> = d.added.iter().map(|a| format!("adds {a}")).collect();
    lines.extend(d.removed.iter().map(|r| format!("removes {r}")));
    if lines.is_empty() {
        lines.push("changes the reason only".into());
    }
    let message = PlainNotice {
        name: name.to_owned(),
        about: format!("Change of {}", plan.summary),
        subject: what.to_owned(),
        headline: format!(
            "{} asked to change this connection. The change:",
            change.requester_name
        ),
        lines,
        footer: "What is kept keeps working while the difference is built.".into(),
        url: ctx
            .settings
            .absolute_url(&format!("/connections/{}/change", change.connection_id)),
    }
    .compose();
    crate::services::monitor::send(tx, Some(topic), email, message).await
}
