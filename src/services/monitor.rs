//! Continuous monitoring: every interval one sweep (whatever the number of worker
//! processes) asks each provider account, in bulk, what exists of every `active`
//! and `drifted` connection, compares it with the approved plan, and records what
//! changed. A connection that stops matching becomes `drifted`, opens a drift
//! episode and its owners hear of it once (many at once come as one digest); when
//! it matches again (by hand, or after a repair) the episode closes and they hear
//! how long it lasted. A provider that cannot be asked makes its connections
//! `unknown`, not drifted; admins hear of it if it lasts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use askama::Template;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context, audit, mail};
use crate::domain::connection::Status;
use crate::domain::email::{Email, EmailAddress};
use crate::domain::jobs::Repair;
use crate::domain::notification::Topic;
use crate::domain::team::Role;
use crate::error::{Error, Result};
use crate::planner::Plan;
use crate::providers::{self, ProviderError, Registry, Wanted};
use crate::store::{self, monitoring::Watched};

/// An account unreachable for this many intervals is reported to the admins.
const UNKNOWN_INTERVALS_BEFORE_ALERT: f64 = 5.0;
/// An auto-repair that did not help is asked for again after this many intervals.
const REPAIR_AGAIN_AFTER_INTERVALS: f64 = 3.0;

#[derive(Debug, Default)]
pub struct SweepReport {
    /// Another process swept moments ago (or is sweeping): nothing was done.
    pub skipped: bool,
    pub observed: usize,
    pub drifted: usize,
    pub recovered: usize,
    pub unknown: usize,
    pub duration: Duration,
}

/// One sweep, unless another process holds the sweep or swept less than an
/// interval ago.
pub async fn sweep(ctx: &Context) -> Result<SweepReport> {
    let mut lock = ctx.pool.acquire().await?;
    if !store::monitoring::try_lock_sweep(&mut lock).await? {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    }
    let report = sweep_holding_the_lock(ctx).await;
    store::monitoring::unlock_sweep(&mut lock).await?;
    report
}

fn interval(ctx: &Context) -> f64 {
    ctx.settings.monitor_interval_seconds as f64
}

/// How a connection looks now, merged over its accounts.
enum Looks {
    Matches,
    Differs(Vec<String>),
    Unknown(Vec<String>),
}

async fn sweep_holding_the_lock(ctx: &Context) -> Result<SweepReport> {
    let interval = interval(ctx);
    // Several processes run the scheduler: the first in an interval sweeps.
    if !store::monitoring::begin_sweep(&ctx.pool, interval * 0.8).await? {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    }
    let started = Instant::now();
    let watched = store::monitoring::watched(&ctx.pool).await?;
    let accounts = store::provider_accounts::list(&ctx.pool).await?;
    let registry = Registry::build(&ctx.pool, &accounts);

    // What each account should hold, per connection.
    let mut plans: HashMap<Uuid, Plan> = HashMap::with_capacity(watched.len());
    let mut wanted: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
    for w in &watched {
        let plan: Plan = serde_json::from_value(w.plan.clone()).map_err(Error::internal)?;
        for account in providers::accounts_of(&plan) {
            let items = providers::items_in(&plan, &account);
            wanted.entry(account).or_default().push(Wanted {
                connection_id: w.id,
                items,
            });
        }
        plans.insert(w.id, plan);
    }

    // Every account at once, each in bulk.
    let asked = futures::future::join_all(wanted.iter().map(|(account, list)| {
        let registry = &registry;
        async move {
            let t = Instant::now();
            let answer = match registry.get(account) {
                Ok(provider) => {
                    tokio::time::timeout(Duration::from_secs_f64(interval), provider.observe(list))
                        .await
                        .unwrap_or_else(|_| {
                            Err(ProviderError::Transient(
                                "it did not answer within the monitor's interval".into(),
                            ))
                        })
                }
                Err(e) => Err(e),
            };
            (account, list, t.elapsed(), answer)
        }
    }))
    .await;

    let mut differences: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut unknown: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (account, list, took, answer) in asked {
        let error = answer.as_ref().err().map(ToString::to_string);
        match answer {
            Ok(seen) => {
                for s in seen {
                    differences
                        .entry(s.connection_id)
                        .or_default()
                        .extend(s.differences);
                }
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "the monitor could not observe an account");
                for w in list {
                    unknown
                        .entry(w.connection_id)
                        .or_default()
                        .push(format!("{account} could not be asked: {e}"));
                }
            }
        }
        if let Some(a) = accounts.iter().find(|a| &a.name == account) {
            let (unknown_since, told) = store::monitoring::record_account(
                &ctx.pool,
                a.id,
                i32::try_from(took.as_millis()).unwrap_or(i32::MAX),
                i32::try_from(list.len()).unwrap_or(i32::MAX),
                error.as_deref(),
            )
            .await?;
            if let (Some(since), false, Some(why)) = (unknown_since, told, &error) {
                let lasted = (Utc::now() - since).num_milliseconds() as f64 / 1000.0;
                if lasted >= interval * UNKNOWN_INTERVALS_BEFORE_ALERT {
                    tell_admins(ctx, a.id, account, why, since).await?;
                }
            }
        }
    }

    let mut report = SweepReport {
        observed: watched.len(),
        ..SweepReport::default()
    };
    let mut tx = ctx.pool.begin().await?;
    let (mut ids, mut states, mut details) = (Vec::new(), Vec::new(), Vec::new());
    let mut drifted: Vec<(Uuid, Vec<String>)> = Vec::new();
    let mut recovered: Vec<(Uuid, DateTime<Utc>, String)> = Vec::new();
    let mut repairs = Vec::new();
    for w in &watched {
        let looks = match (differences.remove(&w.id), unknown.remove(&w.id)) {
            (Some(d), _) if !d.is_empty() => Looks::Differs(d),
            (_, Some(why)) => Looks::Unknown(why),
            _ => Looks::Matches,
        };
        let (state, detail) = match &looks {
            Looks::Matches => ("matches", json!([])),
            Looks::Differs(d) => ("differs", json!(d)),
            Looks::Unknown(why) => ("unknown", json!(why)),
        };
        if w.observed_state.as_deref() != Some(state) || w.observed_detail != detail {
            ids.push(w.id);
            states.push(state.to_owned());
            details.push(detail.clone());
        }
        let auto = repairs_automatically(w, &plans[&w.id], &accounts);
        match (Status::parse(&w.status), looks) {
            (Some(Status::Active), Looks::Differs(d)) => {
                if !moved(&mut tx, w.id, Status::Active, Status::Drifted, &detail).await? {
                    continue;
                }
                store::monitoring::open_drift(&mut tx, w.id, &detail).await?;
                if auto && store::monitoring::ask_repair(&mut tx, w.id, 0.0).await? {
                    repairs.push(w.id);
                }
                drifted.push((w.id, d));
            }
            (Some(Status::Drifted), Looks::Differs(_)) => {
                if w.observed_detail != detail {
                    store::monitoring::update_drift(&mut tx, w.id, &detail).await?;
                }
                let again = interval * REPAIR_AGAIN_AFTER_INTERVALS;
                if auto && store::monitoring::ask_repair(&mut tx, w.id, again).await? {
                    repairs.push(w.id);
                }
            }
            (Some(Status::Drifted), Looks::Matches) => {
                if !moved(&mut tx, w.id, Status::Drifted, Status::Active, &detail).await? {
                    continue;
                }
                if let Some((opened, closed_as)) =
                    store::monitoring::close_drift(&mut tx, w.id, "recovered").await?
                {
                    recovered.push((w.id, opened, closed_as));
                }
            }
            _ => {}
        }
    }
    report.unknown = states.iter().filter(|s| *s == "unknown").count();
    store::monitoring::record_observations(&mut tx, &ids, &states, &details).await?;
    for id in &repairs {
        store::queue::enqueue(&mut tx, &Repair { connection_id: *id }).await?;
    }
    report.drifted = drifted.len();
    report.recovered = recovered.len();
    tell_owners(ctx, &mut tx, &plans, &drifted, &recovered).await?;
    tx.commit().await?;
    report.duration = started.elapsed();
    store::monitoring::finish_sweep(
        &ctx.pool,
        i32::try_from(report.duration.as_millis()).unwrap_or(i32::MAX),
        i32::try_from(report.observed).unwrap_or(i32::MAX),
    )
    .await?;
    Ok(report)
}

/// Whether a drifted connection is put back without asking: its own setting, or
/// its (first) provider account's `repair` setting.
fn repairs_automatically(
    w: &Watched,
    plan: &Plan,
    accounts: &[store::provider_accounts::ProviderAccount],
) -> bool {
    match w.repair.as_str() {
        "auto" => true,
        "notify" => false,
        _ => providers::accounts_of(plan).first().is_some_and(|name| {
            accounts
                .iter()
                .find(|a| &a.name == name)
                .and_then(|a| a.settings.get("repair"))
                .and_then(|v| v.as_str())
                == Some("auto")
        }),
    }
}

/// Moves a connection between active and drifted, guarded and audited.
async fn moved(
    tx: &mut PgConnection,
    id: Uuid,
    from: Status,
    to: Status,
    differences: &serde_json::Value,
) -> Result<bool> {
    if !store::connections::set_status(&mut *tx, id, from, to).await? {
        return Ok(false);
    }
    let action = if to == Status::Drifted {
        "connection.drifted"
    } else {
        "connection.recovered"
    };
    audit::record(
        tx,
        Some("switchboard"),
        None,
        None,
        action,
        "connection",
        &id.to_string(),
        json!({ "before": { "status": from.as_str() }, "after": { "status": to.as_str() }, "differences": differences }),
    )
    .await?;
    Ok(true)
}

/// One entry of a digest email.
struct Entry {
    summary: String,
    url: String,
    lines: Vec<String>,
}

#[derive(Template)]
#[template(path = "email/monitor.txt")]
struct DigestText<'a> {
    name: &'a str,
    headline: &'a str,
    entries: &'a [Entry],
    footer: &'a str,
}

#[derive(Template)]
#[template(path = "email/monitor.html")]
struct DigestHtml<'a> {
    name: &'a str,
    headline: &'a str,
    entries: &'a [Entry],
    footer: &'a str,
}

/// How long something lasted, in words.
pub fn lasted(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let s = (to - from).num_seconds().max(0);
    match s {
        0..=89 => format!("{s} s"),
        90..=5399 => format!("{} min", (s + 30) / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// Each owner gets one email for what drifted in this sweep and one for what
/// recovered, however many connections each lists.
async fn tell_owners(
    ctx: &Context,
    tx: &mut PgConnection,
    plans: &HashMap<Uuid, Plan>,
    drifted: &[(Uuid, Vec<String>)],
    recovered: &[(Uuid, DateTime<Utc>, String)],
) -> Result<()> {
    if drifted.is_empty() && recovered.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = drifted
        .iter()
        .map(|d| d.0)
        .chain(recovered.iter().map(|r| r.0))
        .collect();
    let now = Utc::now();
    // Looked up once per owner and per webhook: many may drift at once.
    let drifts: HashMap<Uuid, &Vec<String>> = drifted.iter().map(|(id, d)| (*id, d)).collect();
    let recoveries: HashMap<Uuid, String> = recovered
        .iter()
        .map(|(id, opened, how)| {
            let line = if how == "repaired" {
                format!(
                    "Repaired by Switchboard; it differed for {}.",
                    lasted(*opened, now)
                )
            } else {
                format!(
                    "It matches again; it differed for {}.",
                    lasted(*opened, now)
                )
            };
            (*id, line)
        })
        .collect();
    let entry = |id: Uuid, lines: Vec<String>| Entry {
        summary: plans
            .get(&id)
            .map(|p| p.summary.clone())
            .unwrap_or_default(),
        url: ctx.settings.absolute_url(&format!("/connections/{id}")),
        lines,
    };
    let mut people: BTreeMap<String, (String, Vec<Entry>, Vec<Entry>)> = BTreeMap::new();
    for (id, email, name) in store::monitoring::owners(&mut *tx, &ids).await? {
        let person = people
            .entry(email)
            .or_insert_with(|| (name, Vec::new(), Vec::new()));
        if let Some(d) = drifts.get(&id) {
            person.1.push(entry(id, (*d).clone()));
        }
        if let Some(line) = recoveries.get(&id) {
            person.2.push(entry(id, vec![line.clone()]));
        }
    }
    // Teams' webhooks get the same events, one per connection.
    let payload = |id: Uuid, lines: &[String]| {
        json!({
            "connection": {
                "id": id,
                "summary": plans.get(&id).map(|p| p.summary.clone()).unwrap_or_default(),
                "url": ctx.settings.absolute_url(&format!("/connections/{id}")),
            },
            "details": lines,
        })
    };
    let drifted_ids: Vec<Uuid> = drifted.iter().map(|d| d.0).collect();
    super::notifications::queue_webhooks(tx, "connection.drifted", &drifted_ids, |id| {
        payload(id, drifts.get(&id).map_or(&[][..], |d| d.as_slice()))
    })
    .await?;
    let recovered_ids: Vec<Uuid> = recovered.iter().map(|r| r.0).collect();
    super::notifications::queue_webhooks(tx, "connection.recovered", &recovered_ids, |id| {
        payload(
            id,
            recoveries.get(&id).map_or(&[][..], std::slice::from_ref),
        )
    })
    .await?;
    for (email, (name, drifts, recoveries)) in people {
        if !drifts.is_empty() {
            let subject = match drifts.as_slice() {
                [one] => format!("Drifted: {}", one.summary),
                many => format!("{} connections drifted from what was approved", many.len()),
            };
            send(
                tx,
                Some(Topic::Drift),
                &email,
                &name,
                subject,
                "What exists no longer matches what was approved:",
                &drifts,
                "You will hear again when it matches. A lead can repair it from the connection's page.",
            )
            .await?;
        }
        if !recoveries.is_empty() {
            let subject = match recoveries.as_slice() {
                [one] => format!("Recovered: {}", one.summary),
                many => format!("{} connections match again", many.len()),
            };
            send(
                tx,
                Some(Topic::Drift),
                &email,
                &name,
                subject,
                "What exists matches what was approved again:",
                &recoveries,
                "Nothing more to do.",
            )
            .await?;
        }
    }
    Ok(())
}

/// Queues a digest email, unless its topic is one the person turned off.
#[allow(clippy::too_many_arguments)]
async fn send(
    tx: &mut PgConnection,
    topic: Option<Topic>,
    to: &str,
    name: &str,
    subject: String,
    headline: &str,
    entries: &[Entry],
    footer: &str,
) -> Result<()> {
    let Ok(to) = EmailAddress::parse(to) else {
        tracing::warn!("not emailing an unusable address");
        return Ok(());
    };
    if let Some(topic) = topic
        && !store::notifications::wants_email(&mut *tx, to.as_str(), topic.as_str()).await?
    {
        return Ok(());
    }
    let text = DigestText {
        name,
        headline,
        entries,
        footer,
    }
    .render()
    .map_err(Error::internal)?;
    let html = DigestHtml {
        name,
        headline,
        entries,
        footer,
    }
    .render()
    .map_err(Error::internal)?;
    mail::queue_email(
        tx,
        &Email {
            id: Uuid::new_v4(),
            to,
            subject,
            text,
            html,
        },
    )
    .await
}

/// Admins hear once that an account has been unreachable for a while.
async fn tell_admins(
    ctx: &Context,
    account_id: Uuid,
    account: &str,
    why: &str,
    since: DateTime<Utc>,
) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let entries = [Entry {
        summary: format!("provider account {account}"),
        url: ctx.settings.absolute_url("/admin/provider-accounts"),
        lines: vec![
            format!("{why}."),
            format!(
                "Unreachable for {}: its connections are shown as unknown.",
                lasted(since, Utc::now())
            ),
        ],
    }];
    for (email, name) in store::monitoring::admins(&mut *tx).await? {
        send(
            &mut tx,
            None,
            &email,
            &name,
            format!("Cannot observe {account}"),
            "The monitor cannot ask a provider account what exists:",
            &entries,
            "Connections in it are not checked until it answers again.",
        )
        .await?;
    }
    store::monitoring::admins_told(&mut *tx, account_id).await?;
    tx.commit().await?;
    Ok(())
}

/// A lead of either side, or an admin, acting on a connection (404 for who
/// may not see it, 403 for who may see it but not lead it).
async fn as_lead(tx: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Status> {
    let c = store::connections::lock(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that connection".into()))?;
    let sides = store::connections::sides(&mut *tx, id).await?;
    let role = |lead: bool| {
        sides.iter().any(|s| {
            caller
                .actor
                .role_in(s.team_id)
                .is_some_and(|r| !lead || r == Role::Lead)
        })
    };
    let requester = c.requested_by == caller.actor.user_id;
    if !role(false) && !requester && !caller.actor.is_admin {
        return Err(Error::NotFound("that connection".into()));
    }
    if !role(true) && !caller.actor.is_admin {
        return Err(Error::Forbidden);
    }
    Status::parse(&c.status).ok_or_else(|| Error::internal("unknown status"))
}

/// "Repair now": re-apply the approved plan of an active or drifted connection.
pub async fn repair_now(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let status = as_lead(&mut tx, caller, id).await?;
    if !matches!(status, Status::Active | Status::Drifted) {
        return Err(Error::Conflict(format!(
            "only an active or drifted connection can be repaired; this one is {}",
            status.label()
        )));
    }
    store::monitoring::ask_repair(&mut tx, id, 0.0).await?;
    store::queue::enqueue(&mut tx, &Repair { connection_id: id }).await?;
    audit::by(
        &mut tx,
        caller,
        "connection.repair_requested",
        "connection",
        &id.to_string(),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The repair modes a connection can have.
pub const REPAIR_MODES: &[&str] = &["account", "notify", "auto"];

/// Sets whether a connection is repaired automatically when it drifts.
pub async fn set_repair(ctx: &Context, caller: &Caller, id: Uuid, mode: &str) -> Result<()> {
    let mode = mode.trim();
    if !REPAIR_MODES.contains(&mode) {
        return Err(Error::invalid(
            "repair",
            "must be account (the provider account's default), notify or auto",
        ));
    }
    let mut tx = ctx.pool.begin().await?;
    as_lead(&mut tx, caller, id).await?;
    let before: String =
        sqlx::query_scalar("UPDATE connections c SET repair = $2 FROM connections old WHERE c.id = $1 AND old.id = c.id RETURNING old.repair")
            .bind(id)
            .bind(mode)
            .fetch_one(&mut *tx)
            .await?;
    audit::by(
        &mut tx,
        caller,
        "connection.repair_set",
        "connection",
        &id.to_string(),
        json!({ "before": { "repair": before }, "after": { "repair": mode } }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A connection's drift episodes, newest first (for who may see it).
pub async fn drift_history(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<store::monitoring::DriftEvent>> {
    super::connections::get(ctx, caller, id).await?;
    Ok(store::monitoring::drift_history(&ctx.pool, id).await?)
}

/// The status dashboard: counts by category and the connections needing
/// attention first, of what the person can see.
pub struct Dashboard {
    /// active, drifted, unknown, provisioning, failed… with their counts.
    pub counts: Vec<(String, i64)>,
    pub connections: Vec<store::connections::Connection>,
}

/// Categories in the order the dashboard shows them.
pub const CATEGORIES: &[&str] = &[
    "drifted",
    "unknown",
    "failed",
    "provisioning",
    "active",
    "pending_approval",
];

pub async fn dashboard(ctx: &Context, caller: &Caller) -> Result<Dashboard> {
    let (user, all) = (caller.actor.user_id, caller.actor.is_admin);
    let found = store::monitoring::counts(&ctx.pool, user, all).await?;
    let counts = CATEGORIES
        .iter()
        .map(|c| {
            let n = found.iter().find(|(k, _)| k == c).map_or(0, |(_, n)| *n);
            ((*c).to_owned(), n)
        })
        .collect();
    Ok(Dashboard {
        counts,
        connections: store::monitoring::board(&ctx.pool, user, all, 200).await?,
    })
}

/// When a connection was last observed (its accounts' last answers).
pub async fn last_observed(ctx: &Context, plan: &Plan) -> Result<Option<DateTime<Utc>>> {
    Ok(store::monitoring::last_observed(&ctx.pool, &providers::accounts_of(plan)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        let t = Utc::now();
        assert_eq!(lasted(t, t + chrono::Duration::seconds(42)), "42 s");
        assert_eq!(lasted(t, t + chrono::Duration::seconds(600)), "10 min");
        assert_eq!(lasted(t, t + chrono::Duration::seconds(2 * 3600)), "2.0 h");
        assert_eq!(lasted(t, t - chrono::Duration::seconds(5)), "0 s");
    }
}
