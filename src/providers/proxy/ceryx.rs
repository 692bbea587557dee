//! A Ceryx-compatible route store in Redis, for proxies that read their routes
//! from it: `<prefix>:routes:<host>` holds the upstream (`10.1.2.3:8443`) and
//! the hash `<prefix>:settings:<host>` Ceryx's `mode` (`proxy`) and
//! `enforce_https`, plus `switchboard_connection`, the connection it was made
//! for (Ceryx ignores fields it does not know). One key per host name, so each
//! change is O(1). Ceryx routes whole host names, so a path is refused.

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Live, Put, Route, decide};
use crate::providers::ProviderError;

const OWNER: &str = "switchboard_connection";

pub(crate) struct Ceryx {
    account: String,
    client: redis::Client,
    prefix: String,
    connection: OnceCell<MultiplexedConnection>,
}

impl Ceryx {
    pub fn new(account: &str, url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("proxy account {account}: redis_url is not usable: {e}"))?;
        Ok(Ceryx {
            account: account.to_owned(),
            client,
            prefix: prefix.to_owned(),
            connection: OnceCell::new(),
        })
    }

    async fn redis(&self) -> Result<MultiplexedConnection, ProviderError> {
        self.connection
            .get_or_try_init(|| self.client.get_multiplexed_async_connection())
            .await
            .cloned()
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, e: redis::RedisError) -> ProviderError {
        let why = format!("the route store of {} (Redis) failed: {e}", self.account);
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
            ProviderError::Transient(why)
        } else {
            ProviderError::Permanent(why)
        }
    }

    fn keys(&self, host: &str) -> (String, String) {
        (
            format!("{}:routes:{host}", self.prefix),
            format!("{}:settings:{host}", self.prefix),
        )
    }

    fn whole_host(&self, route: &Route) -> Result<(), ProviderError> {
        if route.path == "/" {
            Ok(())
        } else {
            Err(ProviderError::Permanent(format!(
                "the proxy {} routes whole host names (Ceryx), so {} cannot be routed on its own: ask for {} without a path",
                self.account,
                route.key(),
                route.host
            )))
        }
    }

    async fn live(&self, host: &str) -> Result<Option<Live>, ProviderError> {
        let (route, settings) = self.keys(host);
        let (upstream, owner): (Option<String>, Option<String>) = redis::pipe()
            .cmd("GET")
            .arg(&route)
            .cmd("HGET")
            .arg(&settings)
            .arg(OWNER)
            .query_async(&mut self.redis().await?)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(upstream.map(|upstream| Live {
            upstream,
            connection: owner.and_then(|o| Uuid::parse_str(&o).ok()),
        }))
    }

    pub async fn put(&self, want: &Route) -> Result<Put, ProviderError> {
        self.whole_host(want)?;
        let put = decide(want, self.live(&want.host).await?.as_ref())?;
        if put != Put::Found {
            let (route, settings) = self.keys(&want.host);
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&route)
                .arg(&want.upstream)
                .ignore()
                .cmd("HSET")
                .arg(&settings)
                .arg("mode")
                .arg("proxy")
                .arg("enforce_https")
                .arg("0")
                .arg(OWNER)
                .arg(want.connection.to_string())
                .ignore()
                .query_async::<()>(&mut self.redis().await?)
                .await
                .map_err(|e| self.failed(e))?;
        }
        Ok(put)
    }

    pub async fn remove(&self, gone: &Route) -> Result<bool, ProviderError> {
        let mine = self
            .live(&gone.host)
            .await?
            .is_some_and(|l| l.connection == Some(gone.connection));
        if mine {
            let (route, settings) = self.keys(&gone.host);
            redis::cmd("DEL")
                .arg(&route)
                .arg(&settings)
                .query_async::<()>(&mut self.redis().await?)
                .await
                .map_err(|e| self.failed(e))?;
        }
        Ok(mine)
    }

    /// Every route of the store: a scan of the route keys, then one pipeline
    /// reading them and their owners.
    pub async fn routes(&self) -> Result<HashMap<String, Live>, ProviderError> {
        let mut redis = self.redis().await?;
        let routes_prefix = format!("{}:routes:", self.prefix);
        let mut hosts = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{routes_prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut redis)
                .await
                .map_err(|e| self.failed(e))?;
            hosts.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(&routes_prefix).map(str::to_owned)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if hosts.is_empty() {
            return Ok(HashMap::new());
        }
        let mut read = redis::pipe();
        for host in &hosts {
            let (route, settings) = self.keys(host);
            read.cmd("GET")
                .arg(route)
                .cmd("HGET")
                .arg(settings)
                .arg(OWNER);
        }
        let values: Vec<Option<String>> = read
            .query_async(&mut redis)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(hosts
            .into_iter()
            .zip(values.chunks(2))
            .filter_map(|(host, pair)| {
                let upstream = pair.first()?.clone()?;
                let connection = pair
                    .get(1)
                    .cloned()
                    .flatten()
                    .and_then(|o| Uuid::parse_str(&o).ok());
                Some((
                    super::key(&host, "/"),
                    Live {
                        upstream,
                        connection,
                    },
                ))
            })
            .collect())
    }
}
