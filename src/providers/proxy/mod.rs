//! The `proxy` provider: a host name (and path) routed through an edge reverse
//! proxy to a service inside a network, so the network itself stays private
//! (the Ceryx idea). Two backends:
//!
//! - `caddy` (default): routes of one HTTP server of a Caddy, through its admin
//!   API. Caddy reloads its whole configuration on every change, so changes are
//!   coalesced: everything asked while one write is under way goes out in the
//!   next, as one `PATCH` of the server's routes.
//! - `redis`: a Ceryx-compatible route store, one key per host name, for proxies
//!   that read their routes from Redis; each change is O(1).
//!
//! Settings: `backend` (`caddy` or `redis`); `address`, the proxy's public
//! address that DNS records point at (read by the planner); for caddy
//! `admin_url` (default `http://127.0.0.1:2019`) and `server` (default
//! `switchboard`); for redis `redis_url` (default `redis://127.0.0.1:6379`) and
//! `key_prefix` (default `ceryx`); `probe_url` (e.g. `http://127.0.0.1:80`), where
//! Switchboard can send requests through the proxy: with it, the monitor proves
//! each matching route by a request with the route's host name, and a gateway
//! error (the service does not answer the proxy) is drift. A route belongs to one connection: another
//! connection asking for the same host name and path is refused, and a route
//! Switchboard did not make is never touched.

mod caddy;
mod ceryx;

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Build, Item, Provider, ProviderError, Removal, Seen, Step, Wanted};
use crate::store::provider_accounts::ProviderAccount;

pub struct Proxy {
    backend: Backend,
    /// Where requests are sent through the proxy to prove routes (`probe_url`).
    probe: Option<(String, reqwest::Client)>,
}

enum Backend {
    Caddy(caddy::Caddy),
    Ceryx(Box<ceryx::Ceryx>),
}

/// A route as a connection wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub host: String,
    /// `/` for the whole host, else a path prefix such as `/api`.
    pub path: String,
    /// Where the proxy sends the requests: `10.1.2.3:8443`.
    pub upstream: String,
    pub connection: Uuid,
}

/// A route as the proxy has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Live {
    pub upstream: String,
    /// The connection it was made for; `None` when Switchboard did not make it.
    pub connection: Option<Uuid>,
}

impl Route {
    /// What identifies a route on the proxy: host name and path.
    pub fn key(&self) -> String {
        key(&self.host, &self.path)
    }

    fn words(&self) -> String {
        format!("proxy route {}", self.key())
    }
}

pub(crate) fn key(host: &str, path: &str) -> String {
    format!("{host}{path}")
}

/// What putting a route in place did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Put {
    Created,
    Found,
    Repaired,
}

impl Put {
    fn action(self) -> &'static str {
        match self {
            Put::Created => "created",
            Put::Found => "found",
            Put::Repaired => "repaired",
        }
    }
}

/// Where a route may go, given what the proxy has under its key.
pub(crate) fn decide(want: &Route, live: Option<&Live>) -> Result<Put, ProviderError> {
    match live {
        None => Ok(Put::Created),
        Some(l) if l.connection == Some(want.connection) && l.upstream == want.upstream => {
            Ok(Put::Found)
        }
        Some(l) if l.connection == Some(want.connection) => Ok(Put::Repaired),
        Some(Live {
            connection: Some(other),
            upstream,
        }) => Err(ProviderError::Permanent(format!(
            "the proxy already sends {} to {upstream} for connection {other}: ask for another host name or path",
            want.key()
        ))),
        Some(Live { upstream, .. }) => Err(ProviderError::Permanent(format!(
            "the proxy already routes {} to {upstream}, and Switchboard did not make that route: ask for another host name or path",
            want.key()
        ))),
    }
}

/// How a wanted route differs from what the proxy has, in plain words.
fn difference(want: &Route, live: Option<&Live>) -> Option<String> {
    match live {
        None => Some(format!("{} is missing from the proxy", want.words())),
        Some(l) if l.connection != Some(want.connection) => Some(format!(
            "{} was replaced by a route Switchboard did not make for this connection (to {})",
            want.words(),
            l.upstream
        )),
        Some(l) if l.upstream != want.upstream => Some(format!(
            "{} sends requests to {}, expected {}",
            want.words(),
            l.upstream,
            want.upstream
        )),
        Some(_) => None,
    }
}

fn route(connection: Uuid, item: &Item) -> Result<Route, ProviderError> {
    let Build::ProxyRoute {
        hostname,
        path,
        upstream,
    } = &item.build
    else {
        return Err(ProviderError::Permanent(format!(
            "the edge proxy cannot build the {} {}",
            item.label, item.name
        )));
    };
    Ok(Route {
        host: hostname.clone(),
        path: path.clone(),
        upstream: upstream.to_string(),
        connection,
    })
}

impl Proxy {
    pub fn new(account: &ProviderAccount) -> Result<Self, String> {
        let setting = |key: &str| account.setting(key);
        let name = &account.name;
        let backend = match setting("backend").unwrap_or("caddy") {
            "caddy" => Backend::Caddy(caddy::Caddy::new(
                name,
                setting("admin_url").unwrap_or("http://127.0.0.1:2019"),
                setting("server").unwrap_or("switchboard"),
            )?),
            "redis" => Backend::Ceryx(Box::new(ceryx::Ceryx::new(
                name,
                setting("redis_url").unwrap_or("redis://127.0.0.1:6379"),
                setting("key_prefix").unwrap_or("ceryx"),
            )?)),
            other => {
                return Err(format!(
                    "proxy account {name}: backend {other:?} is not known; use caddy or redis"
                ));
            }
        };
        let probe = match setting("probe_url") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(3))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("proxy account {name}: {e}"))?;
                Some((url.trim_end_matches('/').to_owned(), client))
            }
            Some(other) => {
                return Err(format!(
                    "proxy account {name}: probe_url must be an http:// or https:// URL, not {other:?}"
                ));
            }
            None => None,
        };
        Ok(Proxy { backend, probe })
    }

    /// Sends a request through the proxy for each route of a matching
    /// connection: an answer from the service is recorded as verified, a
    /// gateway error or no answer at all is a difference.
    async fn prove(&self, wanted: &[Wanted], seen: &mut [Seen]) {
        let Some((base, client)) = &self.probe else {
            return;
        };
        let matching = super::matching(wanted, seen);
        let proved: Vec<usize> = matching.iter().map(|(n, _)| *n).collect();
        let probes = matching
            .into_iter()
            .flat_map(|(n, w)| {
                w.items.iter().filter_map(move |item| match &item.build {
                    Build::ProxyRoute { hostname, path, .. } => {
                        Some((n, hostname.clone(), path.clone()))
                    }
                    _ => None,
                })
            })
            .map(|(n, host, path)| async move {
                let answer = client
                    .get(format!("{base}{path}"))
                    .header(reqwest::header::HOST, host.as_str())
                    .send()
                    .await;
                (
                    n,
                    format!("GET http://{host}{path} through the proxy"),
                    answer,
                )
            });
        for (n, what, answer) in futures::future::join_all(probes).await {
            match answer {
                Ok(a) if matches!(a.status().as_u16(), 502..=504) => seen[n].differences.push(format!(
                    "the service does not answer through the proxy: {what} got {} from the proxy",
                    a.status()
                )),
                Ok(a) => seen[n]
                    .verified
                    .push(format!("{what} was answered {} by the service", a.status())),
                Err(e) => seen[n].differences.push(format!(
                    "the service does not answer through the proxy: {what} failed ({e})"
                )),
            }
        }
        super::keep_whole_proofs(seen, &proved);
    }

    async fn routes(&self) -> Result<HashMap<String, Live>, ProviderError> {
        match &self.backend {
            Backend::Caddy(c) => c.routes().await,
            Backend::Ceryx(r) => r.routes().await,
        }
    }
}

#[async_trait]
impl Provider for Proxy {
    fn kind(&self) -> &'static str {
        "proxy"
    }

    /// A host name and path belong to one connection.
    fn shares(&self) -> bool {
        false
    }

    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let want = route(connection_id, item)?;
        let put = match &self.backend {
            Backend::Caddy(c) => c.put(want.clone()).await?,
            Backend::Ceryx(r) => r.put(&want).await?,
        };
        Ok(Step::new(put.action(), item, Some(want.key())))
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        // Every route of the proxy in one read.
        let live = self.routes().await?;
        let mut seen = super::seen_each(wanted, |connection, item| match route(connection, item) {
            Ok(want) => difference(&want, live.get(&want.key())),
            Err(e) => Some(e.to_string()),
        });
        self.prove(wanted, &mut seen).await;
        Ok(seen)
    }

    async fn destroy(
        &self,
        connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        let mut steps = Vec::new();
        for removal in removals.iter().rev() {
            if removal.made.is_empty() {
                continue;
            }
            let want = route(connection_id, &removal.item)?;
            let removed = match &self.backend {
                Backend::Caddy(c) => c.remove(want.clone()).await?,
                Backend::Ceryx(r) => r.remove(&want).await?,
            };
            if removed {
                steps.push(Step::new("deleted", &removal.item, Some(want.key())));
            }
        }
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Route {
        Route {
            host: "api.example.com".into(),
            path: "/".into(),
            upstream: "10.1.2.3:8443".into(),
            connection: Uuid::from_u128(1),
        }
    }

    fn live(upstream: &str, connection: Option<u128>) -> Live {
        Live {
            upstream: upstream.into(),
            connection: connection.map(Uuid::from_u128),
        }
    }

    #[test]
    fn a_route_is_made_found_or_put_back_but_never_taken_from_another() {
        let w = want();
        assert_eq!(decide(&w, None).unwrap(), Put::Created);
        assert_eq!(
            decide(&w, Some(&live("10.1.2.3:8443", Some(1)))).unwrap(),
            Put::Found
        );
        assert_eq!(
            decide(&w, Some(&live("10.9.9.9:80", Some(1)))).unwrap(),
            Put::Repaired
        );
        let taken = decide(&w, Some(&live("10.1.2.3:8443", Some(2)))).unwrap_err();
        assert!(taken.to_string().contains("for connection"), "{taken}");
        let theirs = decide(&w, Some(&live("10.1.2.3:8443", None))).unwrap_err();
        assert!(theirs.to_string().contains("did not make"), "{theirs}");
    }

    #[test]
    fn differences_name_the_route_and_what_changed() {
        let w = want();
        assert_eq!(difference(&w, Some(&live("10.1.2.3:8443", Some(1)))), None);
        assert_eq!(
            difference(&w, None).unwrap(),
            "proxy route api.example.com/ is missing from the proxy"
        );
        assert_eq!(
            difference(&w, Some(&live("10.9.9.9:80", Some(1)))).unwrap(),
            "proxy route api.example.com/ sends requests to 10.9.9.9:80, expected 10.1.2.3:8443"
        );
    }
}
