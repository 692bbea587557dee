//! The `dns` provider: A, AAAA and CNAME records in a zone of a PowerDNS server,
//! through its HTTP API.
//!
//! Settings: `zone` (e.g. `example.com`, read by the planner too), `api_url`
//! (e.g. `http://127.0.0.1:8081`), `server_id` (default `localhost`),
//! `dns_address` (e.g. `127.0.0.1:53`: the server's DNS port; with it, the
//! monitor proves each matching record by asking the server over UDP).
//! Credentials: `credentials_ref` names the API key (`env:NAME` or `file:/path`).
//!
//! A record is found by its name and type. One Switchboard made carries the
//! comment "switchboard connection <id>": it belongs to that connection, which
//! alone puts it back when changed and removes it when no longer needed. A
//! record someone else made, or another connection's, is never overwritten or
//! deleted (the same value may be found and shared).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

mod wire;

use super::{Build, Item, Provider, ProviderError, Removal, Seen, Step, Wanted};
use crate::store::provider_accounts::ProviderAccount;

const MARK: &str = "switchboard connection";

pub struct Dns {
    api: String,
    /// The server's DNS port (`dns_address`), where records are proved.
    dns_address: Option<String>,
    zone: String,
    key: String,
    http: reqwest::Client,
}

/// A record set as PowerDNS returns it.
#[derive(Deserialize)]
struct RrSet {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    ttl: u32,
    records: Vec<Record>,
    #[serde(default)]
    comments: Vec<Comment>,
}

#[derive(Deserialize)]
struct Record {
    content: String,
}

#[derive(Deserialize)]
struct Comment {
    content: String,
}

#[derive(Deserialize)]
struct Zone {
    rrsets: Vec<RrSet>,
}

/// What a record item asks for.
struct WantedRecord<'a> {
    name: String,
    kind: &'a str,
    value: String,
    ttl: u32,
}

/// Who a record belongs to.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// Made outside Switchboard.
    Someone,
    /// Made by Switchboard for this connection.
    Connection(Uuid),
    /// Marked by Switchboard without a readable connection id (older records).
    Switchboard,
}

impl RrSet {
    fn owner(&self) -> Owner {
        let mut owner = Owner::Someone;
        for c in &self.comments {
            if let Some(rest) = c.content.strip_prefix(MARK) {
                match Uuid::parse_str(rest.trim()) {
                    Ok(id) => return Owner::Connection(id),
                    Err(_) => owner = Owner::Switchboard,
                }
            }
        }
        owner
    }

    fn content(&self) -> String {
        self.records
            .iter()
            .map(|r| r.content.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A name in the zone's absolute form: `www.example.com.`
fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

impl Dns {
    pub fn new(account: &ProviderAccount) -> Result<Self, String> {
        let name = &account.name;
        let setting = |key: &str| account.setting(key);
        let zone =
            setting("zone").ok_or_else(|| format!("dns account {name} has no zone setting"))?;
        let api = setting("api_url").ok_or_else(|| {
            format!("dns account {name} has no api_url setting (the PowerDNS API)")
        })?;
        if url::Url::parse(api).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(format!(
                "dns account {name}: api_url must be an http(s) URL"
            ));
        }
        let server = setting("server_id").unwrap_or("localhost");
        let key = match account.credentials_ref.as_deref() {
            Some(r) => {
                crate::config::read_secret(r).map_err(|why| format!("dns account {name}: {why}"))?
            }
            None => {
                return Err(format!(
                    "dns account {name} has no credentials_ref: set env:NAME or file:/path to the PowerDNS API key"
                ));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Dns {
            api: format!(
                "{}/api/v1/servers/{server}/zones/{}",
                api.trim_end_matches('/'),
                absolute(zone)
            ),
            dns_address: setting("dns_address").map(str::to_owned),
            zone: absolute(zone),
            key,
            http,
        })
    }

    fn wanted<'a>(&self, item: &'a Item) -> Result<WantedRecord<'a>, ProviderError> {
        let Build::DnsRecord {
            record_type,
            value,
            ttl,
        } = &item.build
        else {
            return Err(ProviderError::Permanent(format!(
                "a DNS zone cannot hold the {} {}",
                item.label, item.name
            )));
        };
        let value = if record_type == "CNAME" {
            absolute(value)
        } else {
            value.clone()
        };
        Ok(WantedRecord {
            name: absolute(&item.name),
            kind: record_type,
            value,
            ttl: *ttl,
        })
    }

    /// Asks the server itself (its DNS port) for each record of a matching
    /// connection: the expected value among the answers is verified,
    /// anything else is a difference.
    async fn prove(&self, wanted: &[Wanted], seen: &mut [Seen]) {
        let Some(server) = &self.dns_address else {
            return;
        };
        let matching = super::matching(wanted, seen);
        let proved: Vec<usize> = matching.iter().map(|(n, _)| *n).collect();
        let asks = matching
            .into_iter()
            .flat_map(|(n, w)| {
                w.items
                    .iter()
                    .filter_map(move |i| Some((n, self.wanted(i).ok()?)))
            })
            .map(|(n, want)| async move {
                let answer = wire::resolve(server, &want.name, want.kind).await;
                (n, want, answer)
            });
        for (n, want, answer) in futures::future::join_all(asks).await {
            let asked = format!("{} {} asked at {server} over UDP", want.kind, want.name);
            match answer {
                Ok(values) if values.iter().any(|v| v.eq_ignore_ascii_case(&want.value)) => {
                    seen[n]
                        .verified
                        .push(format!("{asked} resolves to {}", want.value));
                }
                Ok(values) if values.is_empty() => seen[n].differences.push(format!(
                    "{asked} does not resolve: the server answers nothing"
                )),
                Ok(values) => seen[n].differences.push(format!(
                    "{asked} resolves to {}, expected {}",
                    values.join(", "),
                    want.value
                )),
                Err(why) => seen[n]
                    .differences
                    .push(format!("{asked} got no usable answer: {why}")),
            }
        }
        super::keep_whole_proofs(seen, &proved);
    }

    async fn zone(&self) -> Result<Vec<RrSet>, ProviderError> {
        let answer = self
            .http
            .get(&self.api)
            .header("X-API-Key", &self.key)
            .send()
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("the DNS server could not be reached: {e}"))
            })?;
        let answer = checked(answer, &format!("read the zone {}", self.zone)).await?;
        let zone: Zone = answer
            .json()
            .await
            .map_err(|e| ProviderError::Transient(format!("the DNS server's answer: {e}")))?;
        Ok(zone.rrsets)
    }

    async fn patch(&self, rrset: serde_json::Value, what: &str) -> Result<(), ProviderError> {
        let answer = self
            .http
            .patch(&self.api)
            .header("X-API-Key", &self.key)
            .json(&json!({ "rrsets": [rrset] }))
            .send()
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("the DNS server could not be reached: {e}"))
            })?;
        checked(answer, what).await.map(drop)
    }
}

/// PowerDNS's answer, or its error in plain words.
async fn checked(
    answer: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, ProviderError> {
    super::http_answer(answer, "the DNS server", what).await
}

#[async_trait]
impl Provider for Dns {
    fn kind(&self) -> &'static str {
        "dns"
    }

    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let want = self.wanted(item)?;
        let rrsets = self.zone().await?;
        let existing = rrsets
            .iter()
            .find(|r| r.name == want.name && r.kind == want.kind);
        let action = match existing.map(|r| (r, r.owner())) {
            // Exactly as asked, whoever made it: found, and shared.
            Some((r, _)) if r.content() == want.value && r.ttl == want.ttl => "found",
            Some((_, Owner::Connection(id))) if id == connection_id => "repaired",
            Some((r, Owner::Connection(other))) => {
                return Err(ProviderError::Permanent(format!(
                    "{} {} in {} belongs to connection {other} ({}): remove that connection first, or ask for another name",
                    want.kind,
                    want.name,
                    self.zone,
                    r.content()
                )));
            }
            Some((r, _)) => {
                return Err(ProviderError::Permanent(format!(
                    "{} {} already exists in {} ({}), and Switchboard did not make it",
                    want.kind,
                    want.name,
                    self.zone,
                    r.content()
                )));
            }
            None => "created",
        };
        if action != "found" {
            self.patch(
                json!({
                    "name": want.name, "type": want.kind, "ttl": want.ttl, "changetype": "REPLACE",
                    "records": [{ "content": want.value, "disabled": false }],
                    "comments": [{ "content": format!("{MARK} {connection_id}"), "account": "switchboard" }],
                }),
                &format!("write {} {}", want.kind, want.name),
            )
            .await?;
        }
        Ok(Step::new(
            action,
            item,
            Some(format!("{} {}", want.name, want.kind)),
        ))
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        // The whole zone in one read.
        let rrsets = self.zone().await?;
        let by_key: HashMap<(&str, &str), &RrSet> = rrsets
            .iter()
            .map(|r| ((r.name.as_str(), r.kind.as_str()), r))
            .collect();
        let mut seen = super::seen_each(wanted, |_, item| {
            let want = match self.wanted(item) {
                Ok(want) => want,
                Err(e) => return Some(e.to_string()),
            };
            match by_key.get(&(want.name.as_str(), want.kind)) {
                None => Some(format!(
                    "{} record {} is missing from {}",
                    want.kind, want.name, self.zone
                )),
                Some(r) if r.content() != want.value => Some(format!(
                    "{} record {} is {}, expected {}",
                    want.kind,
                    want.name,
                    r.content(),
                    want.value
                )),
                Some(r) if r.ttl != want.ttl => Some(format!(
                    "{} record {} has a TTL of {} s, expected {} s",
                    want.kind, want.name, r.ttl, want.ttl
                )),
                Some(_) => None,
            }
        });
        self.prove(wanted, &mut seen).await;
        Ok(seen)
    }

    async fn destroy(
        &self,
        connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        let rrsets = self.zone().await?;
        let mut steps = Vec::new();
        for removal in removals.iter().rev() {
            let want = self.wanted(&removal.item)?;
            // Only this connection's own record: never another's, never a hand-made one.
            let present = rrsets.iter().any(|r| {
                r.name == want.name
                    && r.kind == want.kind
                    && r.owner() == Owner::Connection(connection_id)
            });
            // The comment names the connection: proof enough, whether this
            // connection recorded making the record or (after a crash) found it.
            if !present {
                continue;
            }
            self.patch(
                json!({ "name": want.name, "type": want.kind, "changetype": "DELETE" }),
                &format!("delete {} {}", want.kind, want.name),
            )
            .await?;
            steps.push(Step::new(
                "deleted",
                &removal.item,
                Some(format!("{} {}", want.name, want.kind)),
            ));
        }
        Ok(steps)
    }
}
