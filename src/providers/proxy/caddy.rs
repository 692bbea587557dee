//! Routes of one HTTP server of a Caddy, through its admin API.
//!
//! Caddy reloads its whole configuration on every change (about 1 s with
//! 10,000 routes here), so one call per connection would not scale. Each
//! process has one writer per Caddy: changes wait in its queue, and all that
//! arrived while a write was under way go out together in the next one, as a
//! read of the routes and one `PATCH` of the whole list. Writers of other
//! processes (or people) are not overwritten: the `PATCH` carries `If-Match`
//! with the version read, and Caddy refuses it (412) if the routes changed
//! since; the writer then reads again. Caddy drains requests in flight on a
//! reload, so a change drops none.
//!
//! Each route Switchboard makes has an `@id` naming its connection:
//! `switchboard-<connection>-<host><path, / written ~>`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Live, Put, Route, decide, key};
use crate::providers::{ProviderError, fnv1a};

const ID_PREFIX: &str = "switchboard-";

pub(crate) struct Caddy {
    writer: Writer,
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

/// The queue of the writer of each Caddy (by routes URL) in this process.
static QUEUES: LazyLock<Mutex<HashMap<String, mpsc::UnboundedSender<Change>>>> =
    LazyLock::new(Default::default);

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
        })
    }

    pub async fn routes(&self) -> Result<HashMap<String, Live>, ProviderError> {
        let (routes, _, _) = self.writer.read().await?;
        Ok(routes.iter().filter_map(live).collect())
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
            let mut queues = QUEUES.lock().expect("not poisoned");
            match queues.get(&self.writer.url) {
                Some(q) if !q.is_closed() => q.clone(),
                // None yet, or its runtime has ended.
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(self.writer.clone().run(rx));
                    queues.insert(self.writer.url.clone(), tx.clone());
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
            let mut live: HashMap<String, Live> = routes.iter().filter_map(live).collect();
            let mut ours: HashMap<String, (Route, Value)> = HashMap::new();
            let mut others = Vec::new();
            for r in routes {
                match (live_route(&r), owner(&r)) {
                    (Some(route), Some(_)) => {
                        ours.insert(route.key(), (route, r));
                    }
                    _ => others.push(r),
                }
            }
            let mut changed = false;
            let outcomes: Vec<_> = ops
                .iter()
                .map(|op| match op {
                    Op::Put(want) => {
                        let put = decide(want, live.get(&want.key()))?;
                        if put != Put::Found {
                            changed = true;
                            live.insert(
                                want.key(),
                                Live {
                                    upstream: want.upstream.clone(),
                                    connection: Some(want.connection),
                                },
                            );
                            ours.insert(want.key(), (want.clone(), config(want)));
                        }
                        Ok(Outcome::Put(put))
                    }
                    Op::Remove(gone) => {
                        let mine = live
                            .get(&gone.key())
                            .is_some_and(|l| l.connection == Some(gone.connection));
                        if mine {
                            changed = true;
                            live.remove(&gone.key());
                            ours.remove(&gone.key());
                        }
                        Ok(Outcome::Removed(mine))
                    }
                })
                .collect();
            if !changed {
                return Ok(outcomes);
            }
            // Longer paths of a host first, so /api is matched before /.
            let mut ours: Vec<_> = ours.into_values().collect();
            ours.sort_by(|(a, _), (b, _)| {
                (&a.host, std::cmp::Reverse(a.path.len()), &a.path).cmp(&(
                    &b.host,
                    std::cmp::Reverse(b.path.len()),
                    &b.path,
                ))
            });
            let all: Vec<Value> = ours.into_iter().map(|(_, v)| v).chain(others).collect();
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

/// The route Caddy gets for a connection's route.
fn config(r: &Route) -> Value {
    let mut matcher = json!({ "host": [r.host] });
    if r.path != "/" {
        let prefix = r.path.trim_end_matches('/');
        matcher["path"] = json!([prefix, format!("{prefix}/*")]);
    }
    json!({
        "@id": format!("{ID_PREFIX}{}-{}{}", r.connection, r.host, r.path.trim_end_matches('/').replace('/', "~")),
        "match": [matcher],
        "handle": [{ "handler": "reverse_proxy", "upstreams": [{ "dial": r.upstream }] }],
        "terminal": true,
    })
}

/// The connection a route was made for, from its `@id`.
fn owner(route: &Value) -> Option<Uuid> {
    let id = route["@id"].as_str()?.strip_prefix(ID_PREFIX)?;
    Uuid::parse_str(id.get(..36)?).ok()
}

/// A route of the server read as host, path and upstream; `None` for a route
/// that matches no single host name (a catch-all, say).
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
        connection: owner(route).unwrap_or_default(),
    })
}

fn live(route: &Value) -> Option<(String, Live)> {
    let r = live_route(route)?;
    Some((
        key(&r.host, &r.path),
        Live {
            upstream: r.upstream,
            connection: owner(route),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_caddys_etag() {
        // As Caddy 2.6 answered for an empty route list: `[]` and a newline.
        assert_eq!(format!("{:08x}", fnv1a(b"[]\n")), "6dfb3b7d");
    }

    #[test]
    fn a_route_reads_back_as_it_was_written() {
        let r = Route {
            host: "api.example.com".into(),
            path: "/v1".into(),
            upstream: "10.1.2.3:8443".into(),
            connection: Uuid::from_u128(7),
        };
        let written = config(&r);
        assert_eq!(written["match"][0]["path"], json!(["/v1", "/v1/*"]));
        assert_eq!(live_route(&written).unwrap(), r);
        assert_eq!(owner(&written), Some(r.connection));
        let whole = Route {
            path: "/".into(),
            ..r
        };
        assert_eq!(live_route(&config(&whole)).unwrap(), whole);
        // Someone else's route is read, but has no owner.
        let theirs = json!({"match": [{"host": ["api.example.com"]}], "handle": [{"handler": "static_response"}]});
        assert_eq!(owner(&theirs), None);
        assert_eq!(
            live(&theirs).unwrap().1.upstream,
            "a static_response handler"
        );
    }
}
