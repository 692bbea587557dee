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

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use super::{Caller, Context, audit, mail};
use crate::auth::policy::ConnectionAction;
use crate::domain::connection::Status;
use crate::domain::email::EmailAddress;
use crate::domain::jobs::Repair;
use crate::domain::notification::Topic;
use crate::error::{Error, Result};
use crate::notify::messages::{AccountUnreachable, Compose, Drifted, Entry, Message, Recovered};
use crate::planner::Plan;
use crate::providers::{self, ProviderError, Wanted};
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

/// Connections observed together: memory stays bounded by a page, whatever
/// the number of connections.
const PAGE: i64 = 2000;

/// One sweep, unless another process holds the sweep or swept less than an
/// interval ago. Watched connections are read page by page (in id order), each
/// page observed per provider account in bulk; the sweep's lease is renewed
/// between pages, so a sweeper that dies lets another take over.
pub async fn sweep(ctx: &Context) -> Result<SweepReport> {
    sweep_in_pages_of(ctx, PAGE).await
}

/// A sweep reading `page` connections at a time (tests and benchmarks vary it).
#[tracing::instrument(skip_all)]
pub async fn sweep_in_pages_of(ctx: &Context, page: i64) -> Result<SweepReport> {
    let page_size = page.max(1);
    let interval = interval(ctx);
    let holder = Uuid::new_v4().to_string();
    let lease = lease_seconds(interval);
    if !store::monitoring::claim_sweep(&ctx.pool, &holder, interval * 0.8, lease).await? {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    }
    let started = Instant::now();
    let mut report = SweepReport::default();
    let mut unreadable = Unreadable::default();
    let mut after = None;
    loop {
        let page = store::monitoring::watched_page(&ctx.pool, after, page_size).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let full = page.len() as i64 == page_size;
        observe_page(ctx, page, &mut report, &mut unreadable).await?;
        if !full {
            break;
        }
        if !store::monitoring::renew_sweep(&ctx.pool, &holder, lease).await? {
            tracing::warn!("another process took the monitor's sweep over; stopping this one");
            break;
        }
    }
    // Built networks are compared in the same sweep; a failure there is
    // logged and never stops the connections' sweep.
    if let Err(e) = super::networks::watch_networks(ctx).await {
        tracing::warn!(error = %e, "could not observe the built networks");
    }
    report.duration = started.elapsed();
    store::monitoring::finish_sweep(
        &ctx.pool,
        &holder,
        i32::try_from(report.duration.as_millis()).unwrap_or(i32::MAX),
        i32::try_from(report.observed).unwrap_or(i32::MAX),
        (
            i32::try_from(unreadable.count).unwrap_or(i32::MAX),
            &unreadable.some,
        ),
    )
    .await?;
    Ok(report)
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

/// How long a sweep's claim lasts between two pages.
fn lease_seconds(interval: f64) -> f64 {
    interval.max(30.0) * 2.0
}

/// Connections whose stored plan cannot be read: skipped, counted, some named.
#[derive(Default)]
struct Unreadable {
    count: usize,
    some: Vec<Uuid>,
}

/// Observes one connection right away (after a build or a repair), so its page
/// and its owners follow within seconds rather than at the next sweep.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn observe_now(ctx: &Context, id: Uuid) -> Result<()> {
    if let Some(w) = store::monitoring::watched_one(&ctx.pool, id).await? {
        let mut report = SweepReport::default();
        observe_page(ctx, vec![w], &mut report, &mut Unreadable::default()).await?;
    }
    Ok(())
}

/// Observes a page of watched connections and records what changed.
async fn observe_page(
    ctx: &Context,
    page: Vec<Watched>,
    report: &mut SweepReport,
    unreadable: &mut Unreadable,
) -> Result<()> {
    let interval = interval(ctx);
    let (registry, accounts) = ctx.providers().await?;

    // What each account should hold, per connection; a plan that cannot be read
    // is skipped (and reported), never the end of the sweep.
    let mut plans: HashMap<Uuid, Plan> = HashMap::with_capacity(page.len());
    let mut wanted: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
    let mut watched = Vec::with_capacity(page.len());
    for w in page {
        let read = serde_json::from_value::<Plan>(w.plan.clone())
            .map_err(|e| e.to_string())
            .and_then(|plan| {
                let mut items = Vec::new();
                for account in providers::accounts_of(&plan) {
                    let of = providers::items_in(&plan, &account).map_err(|e| e.to_string())?;
                    items.push((account, of));
                }
                Ok((plan, items))
            });
        let (plan, items) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(connection = %w.id, error = %e, "the monitor cannot read this connection's plan; skipping it");
                unreadable.count += 1;
                if unreadable.some.len() < 20 {
                    unreadable.some.push(w.id);
                }
                continue;
            }
        };
        for (account, items) in items {
            wanted.entry(account).or_default().push(Wanted {
                connection_id: w.id,
                items,
            });
        }
        plans.insert(w.id, plan);
        watched.push(w);
    }

    // Every account at once, each in bulk.
    let asked = futures::future::join_all(wanted.iter().map(|(account, list)| {
        let registry = &registry;
        async move {
            let t = Instant::now();
            let answer = match registry.get(account) {
                Ok(provider) => {
                    let observed = provider.observe(list).instrument(tracing::info_span!(
                        "provider.observe",
                        %account,
                        connections = list.len()
                    ));
                    tokio::time::timeout(Duration::from_secs_f64(interval), observed)
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
    let mut verified: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut unreachable: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
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
                    if s.unreachable {
                        unreachable.insert(s.connection_id);
                    }
                    if !s.verified.is_empty() {
                        verified
                            .entry(s.connection_id)
                            .or_default()
                            .extend(s.verified);
                    }
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

    report.observed += watched.len();
    let mut tx = ctx.pool.begin().await?;
    let (mut ids, mut states, mut details) = (Vec::new(), Vec::new(), Vec::new());
    let mut drifted: Vec<(Uuid, Vec<String>)> = Vec::new();
    let mut recovered: Vec<(Uuid, DateTime<Utc>, String)> = Vec::new();
    let mut repairs = Vec::new();
    let (mut proved, mut proofs) = (Vec::new(), Vec::new());
    for w in &watched {
        let looks = match (differences.remove(&w.id), unknown.remove(&w.id)) {
            (Some(d), _) if !d.is_empty() => Looks::Differs(d),
            (_, Some(why)) => Looks::Unknown(why),
            _ => Looks::Matches,
        };
        if let (Looks::Matches, Some(proof)) = (&looks, verified.remove(&w.id)) {
            proved.push(w.id);
            proofs.push(proof.join("; "));
        }
        let (state, detail) = match &looks {
            Looks::Matches => ("matches", json!([])),
            // Configured as approved, but the traffic does not pass.
            Looks::Differs(d) if unreachable.contains(&w.id) => ("unreachable", json!(d)),
            Looks::Differs(d) => ("differs", json!(d)),
            Looks::Unknown(why) => ("unknown", json!(why)),
        };
        if w.observed_state.as_deref() != Some(state) || w.observed_detail != detail {
            ids.push(w.id);
            states.push(state.to_owned());
            details.push(detail.clone());
        }
        let auto = repairs_automatically(w, &plans[&w.id], &accounts);
        match (w.status, looks) {
            (Status::Active, Looks::Differs(d)) => {
                if !moved(&mut tx, w.id, Status::Active, Status::Drifted, &detail).await? {
                    continue;
                }
                store::monitoring::open_drift(&mut tx, w.id, &detail).await?;
                if auto && store::monitoring::ask_repair(&mut tx, w.id, 0.0).await? {
                    repairs.push(w.id);
                }
                drifted.push((w.id, d));
            }
            (Status::Drifted, Looks::Differs(_)) => {
                if w.observed_detail != detail {
                    store::monitoring::update_drift(&mut tx, w.id, &detail).await?;
                }
                let again = interval * REPAIR_AGAIN_AFTER_INTERVALS;
                if auto && store::monitoring::ask_repair(&mut tx, w.id, again).await? {
                    repairs.push(w.id);
                }
            }
            (Status::Drifted, Looks::Matches) => {
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
    report.unknown += states.iter().filter(|s| *s == "unknown").count();
    store::monitoring::record_observations(&mut tx, &ids, &states, &details).await?;
    store::monitoring::record_proofs(&mut *tx, &proved, &proofs).await?;
    for id in &repairs {
        store::queue::enqueue_unless_waiting(&mut tx, &Repair { connection_id: *id }).await?;
    }
    report.drifted += drifted.len();
    report.recovered += recovered.len();
    tell_owners(ctx, &mut tx, &plans, &drifted, &recovered).await?;
    tx.commit().await?;
    Ok(())
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
            let message = Drifted {
                name: name.clone(),
                entries: drifts,
            }
            .compose();
            send(tx, Some(Topic::Drift), &email, message).await?;
        }
        if !recoveries.is_empty() {
            let message = Recovered {
                name,
                entries: recoveries,
            }
            .compose();
            send(tx, Some(Topic::Drift), &email, message).await?;
        }
    }
    Ok(())
}

/// Queues an email, unless its topic is one the person turned off.
pub(super) async fn send(
    tx: &mut PgConnection,
    topic: Option<Topic>,
    to: &str,
    message: std::result::Result<Message, askama::Error>,
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
    let message = message.map_err(|e| Error::because("composing an email", e))?;
    mail::queue_message(tx, to, message).await
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
        let message = AccountUnreachable {
            name,
            account: account.to_owned(),
            entries: entries.to_vec(),
        }
        .compose();
        send(&mut tx, None, &email, message).await?;
    }
    store::monitoring::admins_told(&mut *tx, account_id).await?;
    tx.commit().await?;
    Ok(())
}

/// "Repair now": re-apply the approved plan of an active or drifted connection.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn repair_now(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    super::connections::locked(&mut tx, caller, id, ConnectionAction::Repair).await?;
    store::monitoring::ask_repair(&mut tx, id, 0.0).await?;
    // Pressing it again while a repair waits asks for nothing more.
    store::queue::enqueue_unless_waiting(&mut tx, &Repair { connection_id: id }).await?;
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
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn set_repair(ctx: &Context, caller: &Caller, id: Uuid, mode: &str) -> Result<()> {
    let mode = mode.trim();
    if !REPAIR_MODES.contains(&mode) {
        return Err(Error::invalid(
            "repair",
            "must be account (the provider account's default), notify or auto",
        ));
    }
    let mut tx = ctx.pool.begin().await?;
    super::connections::locked(&mut tx, caller, id, ConnectionAction::SetRepairMode).await?;
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
    /// For admins: connections the last sweep could not read (how many, some ids).
    pub unreadable: Option<(i64, Vec<Uuid>)>,
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
    let unreadable = if caller.actor.is_admin {
        Some(store::monitoring::figures(&ctx.pool).await?.unreadable).filter(|(n, _)| *n > 0)
    } else {
        None
    };
    Ok(Dashboard {
        counts,
        connections: store::monitoring::board(&ctx.pool, user, all, 200).await?,
        unreadable,
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
