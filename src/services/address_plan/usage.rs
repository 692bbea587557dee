//! How full the address plan is: a pool with what is in it, every pool's
//! share allocated, and a pool drawn as a strip.

use ipnet::IpNet;
use uuid::Uuid;

use super::taken_blocks;
use crate::auth::policy::Action;
use crate::error::{Error, Result};
use crate::ipam;
use crate::services::{Caller, Context};
use crate::store::{
    self,
    pools::{Allocation, Pool},
};

/// A pool with what is in it.
pub struct PoolDetail {
    pub pool: Pool,
    pub children: Vec<Pool>,
    pub allocations: Vec<Allocation>,
    pub free: Vec<IpNet>,
    /// Addresses in child pools and allocations.
    pub used: u128,
    /// Addresses allocated within the pool (in its child pools too); child
    /// pools themselves are not counted: a pool split in two is not full.
    pub allocated: u128,
    /// The names of the networks holding allocations here.
    pub networks: std::collections::HashMap<Uuid, String>,
}

pub async fn pool_detail(ctx: &Context, caller: &Caller, id: Uuid) -> Result<PoolDetail> {
    caller.actor.require(Action::ViewAddressPlan)?;
    let pool = store::pools::find(&ctx.pool, id)
        .await?
        .ok_or_else(|| Error::NotFound("that pool".into()))?;
    let children = store::pools::children(&ctx.pool, id).await?;
    let allocations = store::pools::allocations_within(&ctx.pool, pool.space_id, pool.cidr).await?;
    let taken = taken_blocks(&children, &allocations);
    let free = ipam::free_blocks(&pool.cidr, &taken);
    let used = ipam::size(&pool.cidr) - free.iter().map(ipam::size).sum::<u128>();
    let allocated = allocations.iter().map(|a| ipam::size(&a.cidr)).sum();
    let holders: Vec<Uuid> = allocations.iter().filter_map(|a| a.network_id).collect();
    let networks = store::networks::names(&ctx.pool, &holders)
        .await?
        .into_iter()
        .collect();
    Ok(PoolDetail {
        pool,
        children,
        allocations,
        free,
        used,
        allocated,
        networks,
    })
}

/// One pool in the overview: where it sits in the tree and how full it is.
pub struct PoolSummary {
    pub pool: Pool,
    pub depth: usize,
    pub size: u128,
    /// Addresses allocated within it (its child pools' allocations included;
    /// a child pool itself is not "used").
    pub allocated: u128,
}

impl PoolSummary {
    /// Percent allocated, for the picture (0–100, one decimal).
    pub fn percent(&self) -> f64 {
        percent(self.allocated, self.size)
    }
}

/// `part` of `whole` in percent, one decimal.
pub fn percent(part: u128, whole: u128) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    ((part as f64 / whole as f64) * 1000.0).round() / 10.0
}

/// Every pool, in tree order, with its utilization (two queries in all).
pub async fn overview(ctx: &Context, caller: &Caller) -> Result<Vec<PoolSummary>> {
    caller.actor.require(Action::ViewAddressPlan)?;
    let pools = store::pools::list(&ctx.pool).await?;
    let allocations = store::pools::all_live_allocations(&ctx.pool).await?;
    let mut out = Vec::new();
    fn walk(
        pools: &[Pool],
        allocations: &[Allocation],
        parent: Option<Uuid>,
        depth: usize,
        out: &mut Vec<PoolSummary>,
    ) {
        for pool in pools.iter().filter(|p| p.parent_id == parent) {
            let allocated = allocations
                .iter()
                .filter(|a| a.space_id == pool.space_id && pool.cidr.contains(&a.cidr))
                .map(|a| ipam::size(&a.cidr))
                .sum();
            out.push(PoolSummary {
                pool: pool.clone(),
                depth,
                size: ipam::size(&pool.cidr),
                allocated,
            });
            walk(pools, allocations, Some(pool.id), depth + 1, out);
        }
    }
    walk(&pools, &allocations, None, 0, &mut out);
    Ok(out)
}

/// One stretch of a pool's picture.
pub struct Segment {
    /// `pool` (a child pool), `allocated`, `reserved` or `free`.
    pub kind: &'static str,
    pub cidr: IpNet,
    /// Position and width in percent of the pool.
    pub x: f64,
    pub width: f64,
}

/// The pool drawn as a strip: child pools, allocations and free blocks in address order.
pub fn segments(detail: &PoolDetail) -> Vec<Segment> {
    let mut parts: Vec<(&'static str, IpNet)> =
        detail.children.iter().map(|c| ("pool", c.cidr)).collect();
    parts.extend(
        detail
            .allocations
            .iter()
            .filter(|a| detail.pool.cidr.contains(&a.cidr))
            .map(|a| {
                (
                    if a.reserved_until.is_some() {
                        "reserved"
                    } else {
                        "allocated"
                    },
                    a.cidr,
                )
            }),
    );
    parts.extend(detail.free.iter().map(|f| ("free", *f)));
    strip(parts)
}

/// Lays blocks out in address order with widths that grow with the log of
/// their size, so that a /26 in a /8 is as visible as the free /9 beside it
/// is large; what is used weighs a little more than what is free.
fn strip(mut parts: Vec<(&'static str, IpNet)>) -> Vec<Segment> {
    parts.sort_by_key(|(_, c)| ipam::first_address(c));
    let smallest = parts
        .iter()
        .map(|(_, c)| ipam::size(c))
        .min()
        .unwrap_or(1)
        .max(1);
    let weights: Vec<f64> = parts
        .iter()
        .map(|(kind, c)| {
            let doublings = (ipam::size(c) / smallest).ilog2() as f64;
            doublings + if *kind == "free" { 1.0 } else { 4.0 }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut x = 0.0;
    parts
        .into_iter()
        .zip(weights)
        .map(|((kind, cidr), weight)| {
            let width = weight / total * 100.0;
            let segment = Segment {
                kind,
                cidr,
                x,
                width,
            };
            x += width;
            segment
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn a_small_allocation_in_a_large_pool_is_visible_and_in_address_order() {
        let pool = net("10.0.0.0/8");
        let used = net("10.0.0.64/26");
        let mut parts = vec![("allocated", used)];
        parts.extend(
            ipam::free_blocks(&pool, &[used])
                .into_iter()
                .map(|f| ("free", f)),
        );
        let strip = strip(parts);
        let allocated = strip.iter().find(|s| s.kind == "allocated").unwrap();
        assert!(
            allocated.width >= 1.5,
            "a /26 in a /8 takes {:.2} % of the strip",
            allocated.width
        );
        let widest = strip.iter().map(|s| s.width).fold(0.0, f64::max);
        assert_eq!(strip.last().unwrap().cidr, net("10.128.0.0/9"));
        assert!(
            strip.last().unwrap().width == widest,
            "the /9 is the widest"
        );
        let end = strip.last().map(|s| s.x + s.width).unwrap();
        assert!(
            (end - 100.0).abs() < 1e-9,
            "the strip fills the width: {end}"
        );
        assert!(
            strip
                .windows(2)
                .all(|w| (w[0].x + w[0].width - w[1].x).abs() < 1e-9)
        );
        assert!(
            strip
                .windows(2)
                .all(|w| ipam::first_address(&w[0].cidr) < ipam::first_address(&w[1].cidr))
        );
    }
}
