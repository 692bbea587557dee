//! Job payloads: plain data, so services can enqueue them without knowing the
//! handlers in `jobs/` (imports flow one way).

use serde::{Deserialize, Serialize};

use super::email::Email;

/// Every job type has a queue name that is fixed here, not derived from the Rust
/// path, so moving a struct never orphans queued jobs.
pub trait Job: Serialize + for<'de> Deserialize<'de> + Send + Sync + Unpin + 'static {
    const QUEUE: &'static str;
    /// How many times a failing job is tried before it is left as failed.
    const MAX_ATTEMPTS: usize = 5;
}

/// Deliver one email (SMTP, or the development outbox).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmail {
    pub email: Email,
}

impl Job for SendEmail {
    const QUEUE: &'static str = "switchboard.send_email";
    const MAX_ATTEMPTS: usize = 8;
}

/// Does nothing: measures the queue itself (see `benches/queue.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop {
    pub n: u64,
}

impl Job for Noop {
    const QUEUE: &'static str = "switchboard.noop";
}

/// Build an approved connection. Carries the plan hash that was approved, so the
/// worker builds that plan or sends the request back to approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provision {
    pub connection_id: uuid::Uuid,
    pub plan_hash: String,
}

impl Job for Provision {
    const QUEUE: &'static str = "switchboard.provision";
}

/// Remove everything a connection built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deprovision {
    pub connection_id: uuid::Uuid,
}

impl Job for Deprovision {
    const QUEUE: &'static str = "switchboard.deprovision";
}

/// Re-apply a drifted connection's approved plan (auto-repair, or "repair now").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    pub connection_id: uuid::Uuid,
}

impl Job for Repair {
    const QUEUE: &'static str = "switchboard.repair";
}

/// Apply an approved change of an active connection: build the difference in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyChange {
    pub change_id: uuid::Uuid,
}

impl Job for ApplyChange {
    const QUEUE: &'static str = "switchboard.apply_change";
}

/// Build a network Switchboard builds, exactly the plan whose hash it carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildNetwork {
    pub network_id: uuid::Uuid,
    pub plan_hash: String,
}

impl Job for BuildNetwork {
    const QUEUE: &'static str = "switchboard.build_network";
}

/// Remove what was built for a network, then the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveNetwork {
    pub network_id: uuid::Uuid,
}

impl Job for RemoveNetwork {
    const QUEUE: &'static str = "switchboard.remove_network";
}

/// Post an event to a team's webhook, signed with the secret `secret_ref` names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendWebhook {
    pub url: String,
    pub secret_ref: String,
    pub body: serde_json::Value,
}

impl Job for SendWebhook {
    const QUEUE: &'static str = "switchboard.send_webhook";
    const MAX_ATTEMPTS: usize = 8;
}

/// Every queue, for gauges that say 0 rather than vanish when a queue is empty.
pub const QUEUES: [&str; 9] = [
    SendEmail::QUEUE,
    Noop::QUEUE,
    Provision::QUEUE,
    Deprovision::QUEUE,
    Repair::QUEUE,
    SendWebhook::QUEUE,
    BuildNetwork::QUEUE,
    RemoveNetwork::QUEUE,
    ApplyChange::QUEUE,
];
