//! Routes of one HTTP server of a Caddy, through its admin API.
//!
//! Caddy reloads (re-provisions) its whole configuration on every change, so
//! the cost of a change grows with what the configuration holds, and one call
//! per connection would not scale. Two things keep it small. Whole host names,
//! the common case, share one route: a `map` from host name to upstream and one
//! `reverse_proxy` that dials the mapped upstream (10,000 host names reload in
//! ~0.15 s here, against ~0.5 s as 10,000 `reverse_proxy` routes). A path
//! prefix gets a route of its own, placed before the map, so `/api` is matched
//! before the whole host. And changes are coalesced: each
//! process has one writer per Caddy: changes wait in its queue, and all that
//! arrived while a write was under way go out together in the next one, as a
//! read of the routes and one `PATCH` of the whole list. Writers of other
//! processes (or people) are not overwritten: the `PATCH` carries `If-Match`
//! with the version read, and Caddy refuses it (412) if the routes changed
//! since; the writer then reads again. Caddy drains requests in flight on a
//! reload, so a change drops none.
//!
//! Each route (or host map entry) Switchboard makes has an `@id` naming its
//! connection: `switchboard-<connection>-<host><path, / written ~>`; the map's
//! route is `switchboard-hosts`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Live, Put, Route, decide};
use crate::providers::{ProviderError, fnv1a};

const ID_PREFIX: &str = "switchboard-";
/// The `@id` of the route that sends whole host names to their upstreams.
const HOSTS_ID: &str = "switchboard-hosts";
/// Where the host map puts a request's upstream, for `reverse_proxy` to dial.
const UPSTREAM: &str = "{switchboard.upstream}";

pub(crate) struct Caddy {
    writer: Writer,
    /// The queue of this Caddy's writer, started on the first change. Providers
    /// live as long as their process (see `services::Providers`), so one writer
    /// batches every change this process makes.
    queue: Mutex<Option<mpsc::UnboundedSender<Change>>>,
}

/// Where one server's routes live, and how to reach them.
#[derive(Clone)]
struct Writer {
    account: String,
    /// `http://127.0.0.1:2019/config/apps/http/servers/<server>/routes`
    url: String,
    /// The path part of `url`, which Caddy's versions (ETags) name.
    path: String,
    http: reqwest::Client,
}

enum Op {
    Put(Route),
    Remove(Route),
}

enum Outcome {
    Put(Put),
    Removed(bool),
}

struct Change {
    op: Op,
    done: oneshot::Sender<Result<Outcome, ProviderError>>,
}

impl Caddy {
    pub fn new(account: &str, admin_url: &str, server: &str) -> Result<Self, String> {
        let admin = url::Url::parse(admin_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| format!("proxy account {account}: admin_url must be an http(s) URL"))?;
        if server.is_empty() || server.contains(['/', '?', '#', ' ']) {
            return Err(format!(
                "proxy account {account}: server must be the name of an HTTP server in Caddy's config"
            ));
        }
        let path = format!("/config/apps/http/servers/{server}/routes");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Caddy {
            writer: Writer {
                account: account.to_owned(),
                url: format!("{}{path}", admin.as_str().trim_end_matches('/')),
                path,
                http,
            },
            queue: Mutex::new(None),
        })
    }

    pub async fn routes(&self) -> Result<HashMap<String, Live>, ProviderError> {
        let (routes, _, _) = self.writer.read().await?;
        let (ours, others) = split(routes);
        Ok(live(&ours, &others))
    }

    pub async fn put(&self, route: Route) -> Result<Put, ProviderError> {
        match self.submit(Op::Put(route)).await? {
            Outcome::Put(p) => Ok(p),
            Outcome::Removed(_) => unreachable!("a put is answered with what it did"),
        }
    }

    pub async fn remove(&self, route: Route) -> Result<bool, ProviderError> {
        match self.submit(Op::Remove(route)).await? {
            Outcome::Removed(r) => Ok(r),
            Outcome::Put(_) => unreachable!("a removal is answered with what it did"),
        }
    }

    async fn submit(&self, op: Op) -> Result<Outcome, ProviderError> {
        let (done, answer) = oneshot::channel();
        let change = Change { op, done };
        let queue = {
            let mut queue = self
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match queue.as_ref() {
                Some(q) if !q.is_closed() => q.clone(),
                // None yet, or its runtime has ended.
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(self.writer.clone().run(rx));
                    *queue = Some(tx.clone());
                    tx
                }
            }
        };
        queue.send(change).map_err(|_| {
            ProviderError::Transient("the writer of the proxy's routes stopped".into())
        })?;
        answer.await.map_err(|_| {
            ProviderError::Transient("the writer of the proxy's routes stopped".into())
        })?
    }
}

impl Writer {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Change>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = queue.try_recv() {
                batch.push(more);
            }
            let ops: Vec<&Op> = batch.iter().map(|c| &c.op).collect();
            match self.write(&ops).await {
                Ok(outcomes) => {
                    for (change, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = change.done.send(outcome);
                    }
                }
                Err(e) => {
                    for change in batch {
                        let _ = change.done.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Applies a batch of changes in one write; what each did, in order.
    async fn write(
        &self,
        ops: &[&Op],
    ) -> Result<Vec<Result<Outcome, ProviderError>>, ProviderError> {
        for _ in 0..10 {
            let (routes, version, exists) = self.read().await?;
            let (ours, others) = split(routes);
            let theirs = live(&[], &others);
            let mut ours: HashMap<String, Route> = ours.into_iter().map(|r| (r.key(), r)).collect();
            let mut changed = false;
            let outcomes: Vec<_> = ops
                .iter()
                .map(|op| match op {
                    Op::Put(want) => {
                        // Switchboard's routes come first, so they are what a
                        // request meets when someone else routes the same key.
                        let now = ours.get(&want.key()).map(mine);
                        let put = decide(want, now.as_ref().or(theirs.get(&want.key())))?;
                        if put != Put::Found {
                            changed = true;
                            ours.insert(want.key(), want.clone());
                        }
                        Ok(Outcome::Put(put))
                    }
                    Op::Remove(gone) => {
                        let mine = ours
                            .get(&gone.key())
                            .is_some_and(|r| r.connection == gone.connection);
                        if mine {
                            changed = true;
                            ours.remove(&gone.key());
                        }
                        Ok(Outcome::Removed(mine))
                    }
                })
                .collect();
            if !changed {
                return Ok(outcomes);
            }
            let all: Vec<Value> = config(ours.into_values().collect())
                .into_iter()
                .chain(others)
                .collect();
            let ask = if exists {
                self.http.patch(&self.url)
            } else {
                self.http.put(&self.url)
            };
            let answer = ask
                .header("If-Match", &version)
                .json(&all)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            if answer.status() == reqwest::StatusCode::PRECONDITION_FAILED {
                // Someone else changed the routes since they were read.
                continue;
            }
            checked(answer, &format!("change the routes of {}", self.account)).await?;
            return Ok(outcomes);
        }
        Err(ProviderError::Transient(format!(
            "the routes of {} kept changing while Switchboard wrote them",
            self.account
        )))
    }

    /// The server's routes, the version read (for `If-Match`) and whether the
    /// server has a route list at all.
    async fn read(&self) -> Result<(Vec<Value>, String, bool), ProviderError> {
        let answer = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let answer = checked(answer, &format!("read the routes of {}", self.account)).await?;
        let body = answer.bytes().await.map_err(|e| self.unreachable(e))?;
        // Caddy sends its ETag as a trailer, which the HTTP client does not
        // expose; it is the FNV-1a hash of the body, so it is worked out here.
        let version = format!("\"{} {:08x}\"", self.path, fnv1a(&body));
        let routes: Value = serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Transient(format!("the routes of {}: {e}", self.account))
        })?;
        Ok(match routes {
            Value::Array(routes) => (routes, version, true),
            _ => (Vec::new(), version, false),
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> ProviderError {
        ProviderError::Transient(format!(
            "the admin API of {} could not be reached: {e}",
            self.account
        ))
    }
}

/// Caddy's answer, or its error in plain words.
async fn checked(
    answer: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, ProviderError> {
    crate::providers::http_answer(answer, "Caddy", what).await
}

/// The routes Caddy gets for Switchboard's routes: one per path prefix
/// (a host's longer paths first, so `/api/v2` is matched before `/api`),
/// then one for every whole host name.
fn config(mut ours: Vec<Route>) -> Vec<Value> {
    ours.sort_by(|a, b| {
        (&a.host, std::cmp::Reverse(a.path.len()), &a.path).cmp(&(
            &b.host,
            std::cmp::Reverse(b.path.len()),
            &b.path,
        ))
    });
    let (hosts, prefixes): (Vec<Route>, Vec<Route>) = ours.into_iter().partition(|r| r.path == "/");
    let mut routes: Vec<Value> = prefixes
        .iter()
        .map(|r| {
            let prefix = r.path.trim_end_matches('/');
            json!({
                "@id": id(r),
                "match": [{ "host": [r.host], "path": [prefix, format!("{prefix}/*")] }],
                "handle": [{ "handler": "reverse_proxy", "upstreams": [{ "dial": r.upstream }] }],
                "terminal": true,
            })
        })
        .collect();
    if !hosts.is_empty() {
        let mappings: Vec<Value> = hosts
            .iter()
            .map(|r| json!({ "@id": id(r), "input": r.host, "outputs": [r.upstream] }))
            .collect();
        routes.push(json!({
            "@id": HOSTS_ID,
            "match": [{ "host": hosts.iter().map(|r| &r.host).collect::<Vec<_>>() }],
            "handle": [
                { "handler": "map", "source": "{http.request.host}", "destinations": [UPSTREAM], "mappings": mappings },
                { "handler": "reverse_proxy", "upstreams": [{ "dial": UPSTREAM }] },
            ],
            "terminal": true,
        }));
    }
    routes
}

fn id(r: &Route) -> String {
    let path = r.path.trim_end_matches('/').replace('/', "~");
    format!("{ID_PREFIX}{}-{}{path}", r.connection, r.host)
}

/// The connection a route or map entry was made for, from its `@id`.
fn owner(route: &Value) -> Option<Uuid> {
    let id = route["@id"].as_str()?.strip_prefix(ID_PREFIX)?;
    Uuid::parse_str(id.get(..36)?).ok()
}

/// The server's routes split into Switchboard's (each route of a connection)
/// and everything else, kept as it is.
fn split(routes: Vec<Value>) -> (Vec<Route>, Vec<Value>) {
    let mut ours = Vec::new();
    let mut others = Vec::new();
    for r in routes {
        if r["@id"] == HOSTS_ID {
            // An entry counts only while the route still matches its host and
            // proxies to the mapped upstream; else it reads as missing.
            let matched: HashSet<&str> = r["match"][0]["host"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let handlers: Vec<&Value> = r["handle"].as_array().into_iter().flatten().collect();
            if !handlers
                .iter()
                .any(|h| h["handler"] == "reverse_proxy" && h["upstreams"][0]["dial"] == UPSTREAM)
            {
                continue;
            }
            let mappings = handlers
                .into_iter()
                .filter(|h| h["handler"] == "map")
                .flat_map(|h| h["mappings"].as_array().into_iter().flatten())
                .filter(|m| m["input"].as_str().is_some_and(|i| matched.contains(&i)));
            ours.extend(mappings.filter_map(|m| {
                Some(Route {
                    host: m["input"].as_str()?.to_owned(),
                    path: "/".into(),
                    upstream: m["outputs"][0].as_str().unwrap_or_default().to_owned(),
                    connection: owner(m)?,
                })
            }));
            continue;
        }
        match (live_route(&r), owner(&r)) {
            (Some(route), Some(connection)) => ours.push(Route {
                connection,
                ..route
            }),
            _ => others.push(r),
        }
    }
    (ours, others)
}

/// What the proxy has under each host name and path. Switchboard's routes come
/// first in the server's list, so they are what a request meets.
fn live(ours: &[Route], others: &[Value]) -> HashMap<String, Live> {
    let theirs = others.iter().filter_map(live_route).map(|r| {
        let live = Live {
            upstream: r.upstream.clone(),
            connection: None,
        };
        (r.key(), live)
    });
    theirs
        .chain(ours.iter().map(|r| (r.key(), mine(r))))
        .collect()
}

/// One of Switchboard's routes as the proxy has it.
fn mine(r: &Route) -> Live {
    Live {
        upstream: r.upstream.clone(),
        connection: Some(r.connection),
    }
}

/// A route of the server read as host, path and upstream (its connection
/// left nil); `None` for a route that matches no single host name (a
/// catch-all, say).
fn live_route(route: &Value) -> Option<Route> {
    let matcher = &route["match"][0];
    let host = matcher["host"][0].as_str()?.to_owned();
    let path = matcher["path"][0].as_str().unwrap_or("/").to_owned();
    let upstream = route["handle"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["handler"] == "reverse_proxy"))
        .and_then(|h| h["upstreams"][0]["dial"].as_str())
        .map_or_else(
            || {
                let handler = route["handle"][0]["handler"].as_str();
                format!("a {} handler", handler.unwrap_or("different"))
            },
            str::to_owned,
        );
    Some(Route {
        host,
        path,
        upstream,
        connection: Uuid::nil(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_caddys_etag() {
        // As Caddy 2.6 answered for an empty route list: `[]` and a newline.
        assert_eq!(format!("{:08x}", fnv1a(b"[]\n")), "6dfb3b7d");
    }

    fn route(host: &str, path: &str, upstream: &str, n: u128) -> Route {
        Route {
            host: host.into(),
            path: path.into(),
            upstream: upstream.into(),
            connection: Uuid::from_u128(n),
        }
    }

    #[test]
    fn routes_read_back_as_they_were_written() {
        let ours = vec![
            route("www.example.com", "/", "10.1.2.4:80", 1),
            route("api.example.com", "/v1", "10.1.2.3:8443", 2),
            route("api.example.com", "/", "10.1.2.5:80", 3),
            route("api.example.com", "/v1/admin", "10.1.2.6:80", 4),
        ];
        let written = config(ours.clone());
        // Path prefixes first, longest first, then one route for whole hosts.
        let ids: Vec<_> = written.iter().map(|r| r["@id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0].ends_with("api.example.com~v1~admin"), "{ids:?}");
        assert!(ids[1].ends_with("api.example.com~v1"), "{ids:?}");
        assert_eq!(ids[2], HOSTS_ID);
        assert_eq!(written[1]["match"][0]["path"], json!(["/v1", "/v1/*"]));
        assert_eq!(
            written[2]["match"][0]["host"],
            json!(["api.example.com", "www.example.com"])
        );
        let (mut read, others) = split(written.clone());
        assert!(others.is_empty());
        read.sort_by_key(|r| r.connection);
        assert_eq!(read, ours);
        // A host taken out of the map's route by hand is no longer routed.
        let mut edited = written;
        edited[2]["match"][0]["host"] = json!(["api.example.com"]);
        let (read, _) = split(edited);
        assert!(read.iter().all(|r| r.host != "www.example.com"), "{read:?}");
        assert_eq!(read.len(), 3);
    }

    #[test]
    fn routes_switchboard_did_not_make_are_kept_and_have_no_owner() {
        let theirs = json!({"match": [{"host": ["api.example.com"]}], "handle": [{"handler": "static_response"}]});
        let catch_all = json!({"handle": [{"handler": "static_response"}]});
        let (ours, others) = split(vec![theirs.clone(), catch_all.clone()]);
        assert!(ours.is_empty());
        assert_eq!(others, vec![theirs, catch_all]);
        let live = live(&ours, &others);
        assert_eq!(live.len(), 1);
        assert_eq!(live["api.example.com/"].connection, None);
        assert_eq!(
            live["api.example.com/"].upstream,
            "a static_response handler"
        );
    }
}
