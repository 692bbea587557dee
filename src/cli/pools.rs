//! `switchboard pool …`: the address plan over `/api/v1/pools`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::output::{self, fields, key_values, table};
use super::{Client, Error, key_value};

#[derive(Subcommand)]
pub enum PoolCommand {
    /// Every pool with its CIDR, labels and how full it is
    List,
    /// A pool's child pools, allocations and free blocks
    Show {
        /// The pool: its id, its path (corp/eu-west) or its name
        pool: String,
    },
    /// Create an address space (no --parent) or a pool inside another (admins)
    Create {
        /// Unique among its siblings, without /
        #[arg(long)]
        name: String,
        /// e.g. 10.0.0.0/8 or fd00::/8
        #[arg(long)]
        cidr: String,
        /// The enclosing pool: id, path or name
        #[arg(long)]
        parent: Option<String>,
        /// A label, e.g. region=eu-west-1 (repeatable)
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// The size handed out when an allocation names none, e.g. 24
        #[arg(long, value_name = "N")]
        default_prefix_length: Option<i64>,
    },
    /// How many blocks of a size are still free, and which comes next
    Available {
        /// The pool: id, path or name
        pool: String,
        /// The block size, e.g. 24 for a /24
        #[arg(long, value_name = "N")]
        size: i64,
    },
    /// Take the lowest free block of a size from a pool
    Allocate {
        /// The pool: id, path or name
        pool: String,
        /// The block size, e.g. 24 for a /24 [default: the pool's]
        #[arg(long, value_name = "N")]
        size: Option<i64>,
        /// The same key again gives the same allocation instead of a new one
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Hold the block as a reservation that lapses after this many seconds
        #[arg(long, value_name = "S")]
        reserve_seconds: Option<i64>,
        /// A note kept with the allocation
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Give an allocation back to its pool
    Release {
        /// The allocation's id (see `pool show`)
        allocation: Uuid,
        /// Release it even though a network uses it (admins; deleting the
        /// network releases its prefixes)
        #[arg(long)]
        force: bool,
    },
}

/// A pool as `/api/v1/pools` returns it (the fields the CLI shows).
#[derive(Deserialize)]
pub(super) struct Pool {
    pub id: Uuid,
    pub name: String,
    pub cidr: String,
    pub parent_id: Option<Uuid>,
    pub labels: BTreeMap<String, String>,
    pub default_prefix_length: i32,
}

#[derive(Deserialize)]
struct PoolDetail {
    #[serde(flatten)]
    pool: Pool,
    children: Vec<Pool>,
    allocations: Vec<Allocation>,
    free: Vec<String>,
    /// Address counts, as text: IPv6 counts exceed JSON numbers.
    size: String,
    used: String,
}

#[derive(Deserialize)]
pub(super) struct Allocation {
    pub id: Uuid,
    pub cidr: String,
    pub reserved_until: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub description: String,
}

#[derive(Deserialize)]
struct Available {
    count: String,
    next: Option<String>,
}

pub(super) async fn run(client: &Client, command: PoolCommand) -> Result<String, Error> {
    match command {
        PoolCommand::List => list(client).await,
        PoolCommand::Show { pool } => {
            let pools = Plan::fetch(client).await?;
            let pool = pools.find(&pool, None)?;
            let reply = client.get(&format!("/pools/{}", pool.id), &[]).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            Ok(show(&pools, &reply.parse()?))
        }
        PoolCommand::Create {
            name,
            cidr,
            parent,
            labels,
            default_prefix_length,
        } => {
            let parent = match parent {
                Some(parent) => {
                    let plan = Plan::fetch(client).await?;
                    let found = plan.find(&parent, Some("--parent"))?;
                    Some((found.id, plan.path(found)))
                }
                None => None,
            };
            let parent_id = parent.as_ref().map(|(id, _)| id);
            let labels: BTreeMap<String, String> = labels.into_iter().collect();
            let reply = client
                .post(
                    "/pools",
                    &json!({ "name": name, "cidr": cidr, "parent_id": parent_id,
                             "labels": labels, "default_prefix_length": default_prefix_length }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let pool: Pool = reply.parse()?;
            let path = match parent {
                Some((_, parent_path)) => format!("{parent_path}/{}", pool.name),
                None => pool.name.clone(),
            };
            Ok(fields(&[
                ("Created pool", path),
                ("ID", pool.id.to_string()),
                ("CIDR", pool.cidr),
                ("Labels", key_values(&pool.labels)),
                ("Default size", format!("/{}", pool.default_prefix_length)),
            ]))
        }
        PoolCommand::Available { pool, size } => {
            let pools = Plan::fetch(client).await?;
            let pool = pools.find(&pool, None)?;
            let reply = client
                .get(
                    &format!("/pools/{}/available", pool.id),
                    &[("prefix_length", size.to_string())],
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let available: Available = reply.parse()?;
            Ok(fields(&[
                ("Pool", format!("{} ({})", pools.path(pool), pool.cidr)),
                ("Free blocks", format!("{} × /{size}", available.count)),
                ("Next", available.next.unwrap_or_else(|| "-".into())),
            ]))
        }
        PoolCommand::Allocate {
            pool,
            size,
            idempotency_key,
            reserve_seconds,
            description,
        } => {
            let pools = Plan::fetch(client).await?;
            let pool = pools.find(&pool, None)?;
            let reply = client
                .post(
                    &format!("/pools/{}/allocations", pool.id),
                    &json!({ "prefix_length": size, "idempotency_key": idempotency_key,
                             "reservation_ttl": reserve_seconds,
                             "description": description.unwrap_or_default() }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let a: Allocation = reply.parse()?;
            Ok(fields(&[
                ("Allocated", a.cidr),
                ("ID", a.id.to_string()),
                ("Pool", pools.path(pool)),
                (
                    "Reserved until",
                    a.reserved_until.as_ref().map_or("-".into(), output::time),
                ),
                (
                    "Idempotency key",
                    a.idempotency_key.unwrap_or_else(|| "-".into()),
                ),
                ("Description", a.description),
            ]))
        }
        PoolCommand::Release { allocation, force } => {
            let path = if force {
                format!("/allocations/{allocation}?force=true")
            } else {
                format!("/allocations/{allocation}")
            };
            let reply = client.delete(&path).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            Ok(format!("Released allocation {allocation}\n"))
        }
    }
}

async fn list(client: &Client) -> Result<String, Error> {
    let reply = client.get_all("/pools", &[]).await?;
    if client.json_output() {
        return Ok(reply.pretty());
    }
    let pools = Plan {
        pools: reply.parse()?,
    };
    // The list carries no usage: ask each pool, a few at a time.
    let used: Vec<String> = futures::stream::iter(&pools.pools)
        .map(|pool| async move {
            let detail: PoolDetail = client
                .get(&format!("/pools/{}", pool.id), &[])
                .await?
                .parse()?;
            Ok::<_, Error>(percent(&detail.used, &detail.size))
        })
        .buffered(4)
        .try_collect()
        .await?;
    let mut rows: Vec<Vec<String>> = pools
        .pools
        .iter()
        .zip(used)
        .map(|(pool, used)| {
            vec![
                pools.path(pool),
                pool.cidr.clone(),
                key_values(&pool.labels),
                used,
            ]
        })
        .collect();
    rows.sort();
    Ok(table(&["PATH", "CIDR", "LABELS", "USED"], &rows))
}

fn show(pools: &Plan, d: &PoolDetail) -> String {
    let mut out = fields(&[
        ("Pool", pools.path(&d.pool)),
        ("ID", d.pool.id.to_string()),
        ("CIDR", d.pool.cidr.clone()),
        ("Labels", key_values(&d.pool.labels)),
        ("Default size", format!("/{}", d.pool.default_prefix_length)),
        (
            "Used",
            format!(
                "{} of {} addresses ({})",
                d.used,
                d.size,
                percent(&d.used, &d.size)
            ),
        ),
    ]);
    if !d.children.is_empty() {
        let rows: Vec<Vec<String>> = d
            .children
            .iter()
            .map(|c| vec![c.name.clone(), c.cidr.clone(), key_values(&c.labels)])
            .collect();
        out.push('\n');
        out.push_str(&table(&["CHILD POOL", "CIDR", "LABELS"], &rows));
    }
    if !d.allocations.is_empty() {
        let rows: Vec<Vec<String>> = d
            .allocations
            .iter()
            .map(|a| {
                vec![
                    a.cidr.clone(),
                    a.id.to_string(),
                    a.reserved_until.as_ref().map_or("-".into(), output::time),
                    a.description.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &["ALLOCATION", "ID", "RESERVED UNTIL", "DESCRIPTION"],
            &rows,
        ));
    }
    out.push('\n');
    out.push_str(&table(
        &["FREE"],
        &d.free.iter().map(|f| vec![f.clone()]).collect::<Vec<_>>(),
    ));
    out
}

/// `used` of `size` as a percentage with one decimal.
fn percent(used: &str, size: &str) -> String {
    match (used.parse::<f64>(), size.parse::<f64>()) {
        (Ok(used), Ok(size)) if size > 0.0 => format!("{:.1}%", used / size * 100.0),
        _ => "?".into(),
    }
}

/// Every pool, to name them by path (`corp/eu-west`) and to find one by path, name or id.
pub(super) struct Plan {
    pools: Vec<Pool>,
}

impl Plan {
    pub async fn fetch(client: &Client) -> Result<Self, Error> {
        Ok(Self {
            pools: client.get_all("/pools", &[]).await?.parse()?,
        })
    }

    /// The pool, its parent, and so on up to the address space.
    fn lineage<'a>(&'a self, pool: &'a Pool) -> Vec<&'a Pool> {
        let mut line = vec![pool];
        // Bounded: a broken parent chain must not loop forever.
        while let Some(parent) = line[line.len() - 1]
            .parent_id
            .and_then(|id| self.pools.iter().find(|p| p.id == id))
            .filter(|_| line.len() < 64)
        {
            line.push(parent);
        }
        line
    }

    /// The names from the address space down to the pool, joined with `/`.
    pub fn path(&self, pool: &Pool) -> String {
        let mut names: Vec<&str> = self.lineage(pool).iter().map(|p| p.name.as_str()).collect();
        names.reverse();
        names.join("/")
    }

    /// The pool's label `key`, or the nearest enclosing pool's.
    pub fn label(&self, pool: &Pool, key: &str) -> Option<String> {
        self.lineage(pool)
            .iter()
            .find_map(|p| p.labels.get(key).cloned())
    }

    /// The pool `text` names: an id, or a path that is unique in the plan, either whole
    /// (`corp/eu-west/prod`) or its end (`eu-west/prod`, `prod`). `flag` is the
    /// flag it came from, to name in the message.
    pub fn find(&self, text: &str, flag: Option<&str>) -> Result<&Pool, Error> {
        let text = text.trim().trim_matches('/');
        let tail = format!("/{text}");
        let id = Uuid::parse_str(text).ok();
        let found: Vec<&Pool> = self
            .pools
            .iter()
            .filter(|p| match id {
                Some(id) => p.id == id,
                None => {
                    let path = self.path(p);
                    path == text || path.ends_with(&tail)
                }
            })
            .collect();
        let flag = flag.map(|f| format!("{f}: ")).unwrap_or_default();
        match found[..] {
            [pool] => Ok(pool),
            [] if id.is_some() => Err(Error::Failed(format!("{flag}no pool has the id {text}"))),
            [] => Err(Error::Failed(format!(
                "{flag}no pool is called {text:?} (give its id, its path such as corp/eu-west, \
                 or the end of the path; `switchboard pool list` shows them)"
            ))),
            _ => Err(Error::Failed(format!(
                "{flag}several pools are called {text:?}: {}; give more of the path",
                found
                    .iter()
                    .map(|p| self.path(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, parent: Option<&Pool>) -> Pool {
        Pool {
            id: Uuid::new_v4(),
            name: name.into(),
            cidr: "10.0.0.0/8".into(),
            parent_id: parent.map(|p| p.id),
            labels: BTreeMap::new(),
            default_prefix_length: 24,
        }
    }

    #[test]
    fn pools_are_found_by_id_or_a_unique_end_of_their_path() {
        let corp = pool("corp", None);
        let lab = pool("lab", None);
        let mut eu = pool("eu-west", Some(&corp));
        eu.labels.insert("region".into(), "eu-west-1".into());
        let prod = pool("prod", Some(&eu));
        let lab_prod = pool("prod", Some(&lab));
        let (prod_id, corp_id) = (prod.id, corp.id);
        let plan = Plan {
            pools: vec![corp, lab, eu, prod, lab_prod],
        };
        let find = |text: &str| plan.find(text, Some("--pool")).map(|p| p.id);
        assert_eq!(find("corp/eu-west/prod").unwrap(), prod_id);
        assert_eq!(find("eu-west/prod").unwrap(), prod_id);
        assert_eq!(find(&prod_id.to_string()).unwrap(), prod_id);
        assert_eq!(find("corp").unwrap(), corp_id);
        let prod = plan.find("eu-west/prod", None).unwrap();
        assert_eq!(plan.label(prod, "region").as_deref(), Some("eu-west-1"));
        assert_eq!(plan.label(prod, "environment"), None);
        let several = find("prod").unwrap_err().to_string();
        assert!(several.contains("corp/eu-west/prod, lab/prod"), "{several}");
        assert_eq!(
            plan.find(&Uuid::nil().to_string(), None)
                .map(|p| p.id)
                .unwrap_err()
                .to_string(),
            format!("no pool has the id {}", Uuid::nil())
        );
        for missing in ["corp/prod", "west/prod", "staging"] {
            let none = find(missing).unwrap_err().to_string();
            assert!(
                none.starts_with(&format!("--pool: no pool is called {missing:?}")),
                "{none}"
            );
        }
    }

    #[test]
    fn usage_is_a_percentage() {
        assert_eq!(percent("256", "65536"), "0.4%");
        assert_eq!(percent("0", "0"), "?");
    }
}
