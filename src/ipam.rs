//! Address-plan arithmetic: pure functions on CIDR blocks, IPv4 and IPv6 alike.
//! Addresses are handled as `u128` offsets so both families share one code path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An inclusive range of addresses as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    start: u128,
    end: u128,
}

fn bits(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    }
}

fn to_int(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn span(net: &IpNet) -> Span {
    Span {
        start: to_int(net.network()),
        end: to_int(net.broadcast()),
    }
}

#[allow(
    clippy::expect_used,
    reason = "callers pass a prefix length within the family's bits"
)]
fn block(v6: bool, start: u128, prefix_len: u8) -> IpNet {
    if v6 {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(start), prefix_len).expect("prefix length checked"))
    } else {
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(start as u32), prefix_len).expect("prefix length checked"),
        )
    }
}

/// The block's first address as an integer (for ordering and drawing).
pub fn first_address(net: &IpNet) -> u128 {
    to_int(net.network())
}

/// How many addresses a block holds (`2^(bits - prefix)`); saturates for a whole /0 IPv6.
pub fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(bits(net) - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

fn block_size(bits: u8, prefix_len: u8) -> u128 {
    1u128
        .checked_shl(u32::from(bits - prefix_len))
        .unwrap_or(u128::MAX)
}

/// Parses `10.0.0.0/16` or `2001:db8::/48`. Host bits must be zero: a typo like
/// `10.0.0.1/16` is refused with the network it probably meant.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty".into());
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!("{text:?} is not a CIDR block such as 10.0.0.0/16 or 2001:db8::/48")
    })?;
    if net.addr() != net.network() {
        return Err(format!(
            "{text} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Can a block of `prefix_len` be carved from `pool` at all?
pub fn check_prefix_length(pool: &IpNet, prefix_len: i64) -> Result<u8, String> {
    let max = i64::from(bits(pool));
    if !(0..=max).contains(&prefix_len) {
        return Err(format!(
            "must be between {} and {max} for {pool}",
            pool.prefix_len()
        ));
    }
    let len = prefix_len as u8;
    if len < pool.prefix_len() {
        return Err(format!("/{len} is larger than the pool {pool} itself"));
    }
    Ok(len)
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The free stretches of `pool` once `taken` (any blocks; those outside are ignored).
fn gaps(pool: &IpNet, taken: &[IpNet]) -> Vec<Span> {
    let whole = span(pool);
    let mut used: Vec<Span> = taken
        .iter()
        .filter(|t| bits(t) == bits(pool) && overlaps(pool, t))
        .map(|t| {
            let s = span(t);
            Span {
                start: s.start.max(whole.start),
                end: s.end.min(whole.end),
            }
        })
        .collect();
    used.sort();
    let mut free = Vec::new();
    let mut cursor = Some(whole.start);
    for u in used {
        let Some(at) = cursor else { break };
        if u.start > at {
            free.push(Span {
                start: at,
                end: u.start - 1,
            });
        }
        if u.end >= at {
            cursor = u.end.checked_add(1).filter(|n| *n <= whole.end);
        }
    }
    if let Some(at) = cursor {
        free.push(Span {
            start: at,
            end: whole.end,
        });
    }
    free
}

/// The lowest free, aligned block of `prefix_len` in `pool`: deterministic, so two
/// racing requests compute the same candidate and the database picks one winner.
pub fn next_free(pool: &IpNet, taken: &[IpNet], prefix_len: u8) -> Option<IpNet> {
    if prefix_len < pool.prefix_len() || prefix_len > bits(pool) {
        return None;
    }
    let size = block_size(bits(pool), prefix_len);
    gaps(pool, taken).into_iter().find_map(|gap| {
        let start = gap.start.div_ceil(size).checked_mul(size)?;
        let last = start.checked_add(size - 1)?;
        (last <= gap.end).then(|| block(bits(pool) == 128, start, prefix_len))
    })
}

/// The lowest free aligned block of `prefix_len` in `pool`, searched from `from`
/// upwards while the taken blocks are read page by page in address order, so the
/// allocator never reads a whole pool. Everything below `from` must be taken and
/// `from` must be a block boundary (the allocator keeps it so).
#[derive(Debug)]
pub struct FreeSearch {
    v6: bool,
    end: u128,
    prefix_len: u8,
    size: u128,
    /// The next address not yet known to be taken; `None` once past the pool's end.
    cursor: Option<u128>,
    first_free: Option<u128>,
}

impl FreeSearch {
    pub fn new(pool: &IpNet, from: IpAddr, prefix_len: u8) -> Self {
        let whole = span(pool);
        let from = to_int(from).clamp(whole.start, whole.end);
        FreeSearch {
            v6: bits(pool) == 128,
            end: whole.end,
            prefix_len,
            size: block_size(bits(pool), prefix_len),
            cursor: Some(from),
            first_free: None,
        }
    }

    /// Where the next page of taken blocks starts (blocks starting at or after it).
    pub fn cursor(&self) -> Option<IpAddr> {
        self.cursor.map(|c| self.address(c))
    }

    /// The first free address seen: everything below it is taken.
    pub fn first_free(&self) -> Option<IpAddr> {
        self.first_free.map(|c| self.address(c))
    }

    /// Feeds the next taken blocks, in address order, each starting at or after
    /// the cursor; returns the block as soon as a gap holds one.
    pub fn feed(&mut self, taken: &[IpNet]) -> Option<IpNet> {
        for t in taken {
            let s = span(t);
            let at = self.cursor?;
            if s.start > at
                && let Some(found) = self.fit(at, s.start - 1)
            {
                return Some(found);
            }
            if s.end >= at {
                self.cursor = s.end.checked_add(1).filter(|n| *n <= self.end);
            }
        }
        None
    }

    /// No taken block follows: the space from the cursor to the pool's end.
    pub fn finish(&mut self) -> Option<IpNet> {
        let at = self.cursor?;
        self.fit(at, self.end)
    }

    fn fit(&mut self, start: u128, end: u128) -> Option<IpNet> {
        self.first_free.get_or_insert(start);
        let candidate = start.div_ceil(self.size).checked_mul(self.size)?;
        let last = candidate.checked_add(self.size - 1)?;
        (last <= end).then(|| block(self.v6, candidate, self.prefix_len))
    }

    fn address(&self, n: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        }
    }
}

/// The block boundary after `net` (its last address + 1), unless it ends the family.
pub fn after(net: &IpNet) -> Option<IpAddr> {
    let next = to_int(net.broadcast()).checked_add(1)?;
    match net {
        IpNet::V4(_) => u32::try_from(next)
            .ok()
            .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        IpNet::V6(_) => Some(IpAddr::V6(Ipv6Addr::from(next))),
    }
}

/// The address just below `addr`, unless it is the family's first.
pub fn before(addr: IpAddr) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) => u32::from(a)
            .checked_sub(1)
            .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        IpAddr::V6(a) => u128::from(a)
            .checked_sub(1)
            .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
    }
}
/// How many more blocks of `prefix_len` fit in `pool`.
pub fn available(pool: &IpNet, taken: &[IpNet], prefix_len: u8) -> u128 {
    if prefix_len < pool.prefix_len() || prefix_len > bits(pool) {
        return 0;
    }
    let size = block_size(bits(pool), prefix_len);
    gaps(pool, taken)
        .into_iter()
        .map(|gap| {
            let first = gap.start.div_ceil(size);
            let past = match gap.end.checked_add(1) {
                Some(n) => n / size,
                None => u128::MAX / size + 1,
            };
            past.saturating_sub(first)
        })
        .fold(0u128, u128::saturating_add)
}

/// The free space of `pool` as the fewest CIDR blocks (for the address-plan view).
pub fn free_blocks(pool: &IpNet, taken: &[IpNet]) -> Vec<IpNet> {
    let v6 = bits(pool) == 128;
    let total_bits = bits(pool);
    let mut out = Vec::new();
    for gap in gaps(pool, taken) {
        let mut start = gap.start;
        loop {
            // The largest aligned block starting at `start` that stays in the gap.
            let align = if start == 0 {
                u32::from(total_bits)
            } else {
                start.trailing_zeros().min(u32::from(total_bits))
            };
            let mut host = align;
            while host > 0 {
                let len = 1u128.checked_shl(host).unwrap_or(u128::MAX);
                if start
                    .checked_add(len - 1)
                    .is_some_and(|last| last <= gap.end)
                {
                    break;
                }
                host -= 1;
            }
            out.push(block(v6, start, total_bits - host as u8));
            if host == u32::from(total_bits) {
                break; // the whole address family
            }
            let len = 1u128 << host;
            match start.checked_add(len) {
                Some(next) if next <= gap.end => start = next,
                _ => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_refuses_host_bits() {
        assert_eq!(parse_cidr("10.0.0.0/8"), Ok(net("10.0.0.0/8")));
        assert_eq!(parse_cidr(" 2001:db8::/32 "), Ok(net("2001:db8::/32")));
        assert_eq!(
            parse_cidr("10.1.2.3/16"),
            Err("10.1.2.3/16 has host bits set; did you mean 10.1.0.0/16?".into())
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("banana").is_err());
        assert_eq!(parse_cidr(""), Err("is empty".into()));
    }

    #[test]
    fn prefix_length_must_fit_the_pool() {
        let pool = net("10.0.0.0/16");
        assert_eq!(check_prefix_length(&pool, 24), Ok(24));
        assert!(
            check_prefix_length(&pool, 8)
                .unwrap_err()
                .contains("larger than the pool")
        );
        assert!(check_prefix_length(&pool, 33).is_err());
        assert!(check_prefix_length(&pool, -1).is_err());
    }

    #[test]
    fn next_free_is_the_lowest_aligned_block() {
        let pool = net("10.0.0.0/16");
        assert_eq!(next_free(&pool, &[], 24), Some(net("10.0.0.0/24")));
        let taken = [net("10.0.0.0/26")];
        assert_eq!(next_free(&pool, &taken, 26), Some(net("10.0.0.64/26")));
        // A /24 must be aligned: the partly used first /24 is skipped.
        assert_eq!(next_free(&pool, &taken, 24), Some(net("10.0.1.0/24")));
        // Holes are reused before the end.
        let taken = [net("10.0.0.0/24"), net("10.0.2.0/24")];
        assert_eq!(next_free(&pool, &taken, 24), Some(net("10.0.1.0/24")));
        // Blocks outside the pool do not matter.
        assert_eq!(next_free(&pool, &[net("192.168.0.0/16")], 16), Some(pool));
        assert_eq!(
            next_free(&pool, &[net("10.0.0.0/8")], 24),
            None,
            "a covering block takes all"
        );
    }

    #[test]
    fn exhaustion_and_counts() {
        let pool = net("10.0.0.0/30");
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.push(next_free(&pool, &taken, 32).unwrap());
        }
        assert_eq!(next_free(&pool, &taken, 32), None);
        assert_eq!(available(&pool, &taken, 32), 0);
        assert_eq!(
            available(&net("10.0.0.0/16"), &[net("10.0.0.0/24")], 24),
            255
        );
        assert_eq!(
            available(&net("10.0.0.0/16"), &[net("10.0.0.0/25")], 24),
            255
        );
        assert_eq!(available(&net("10.0.0.0/16"), &[], 8), 0);
    }

    #[test]
    fn ipv6_works_the_same_way() {
        let pool = net("2001:db8::/48");
        assert_eq!(next_free(&pool, &[], 64), Some(net("2001:db8::/64")));
        let taken = [net("2001:db8::/64")];
        assert_eq!(next_free(&pool, &taken, 64), Some(net("2001:db8:0:1::/64")));
        assert_eq!(available(&pool, &taken, 64), 65_535);
        assert_eq!(size(&net("::/0")), u128::MAX);
        assert_eq!(available(&net("::/0"), &[], 1), 2);
        assert_eq!(
            next_free(&net("::/0"), &[net("::/1")], 1),
            Some(net("8000::/1"))
        );
    }

    #[test]
    fn free_space_as_fewest_blocks() {
        let pool = net("10.0.0.0/24");
        assert_eq!(free_blocks(&pool, &[]), vec![pool]);
        assert_eq!(
            free_blocks(&pool, &[net("10.0.0.64/26")]),
            vec![net("10.0.0.0/26"), net("10.0.0.128/25")]
        );
        assert!(free_blocks(&pool, &[pool]).is_empty());
    }

    /// Many allocations of mixed sizes, checked against brute force: never an
    /// overlap, always inside the pool, and "full" only when nothing fits.
    #[test]
    fn randomized_allocations_never_overlap() {
        let mut seed: u64 = 0x5eed_1234_abcd_0001;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for pool in [net("10.20.0.0/20"), net("2001:db8:ab00::/52")] {
            let base = pool.prefix_len();
            let mut taken: Vec<IpNet> = Vec::new();
            for _ in 0..400 {
                let len = base + 4 + (rand() % 8) as u8;
                match next_free(&pool, &taken, len) {
                    Some(b) => {
                        assert!(pool.contains(&b), "{b} inside {pool}");
                        assert_eq!(b.prefix_len(), len);
                        assert!(taken.iter().all(|t| !overlaps(t, &b)), "{b} overlaps");
                        taken.push(b);
                    }
                    None => {
                        // Nothing of that size is free: every aligned candidate overlaps.
                        assert_eq!(available(&pool, &taken, len), 0);
                    }
                }
                if rand() % 5 == 0 && !taken.is_empty() {
                    let i = (rand() as usize) % taken.len();
                    taken.swap_remove(i);
                }
            }
            let free: u128 = free_blocks(&pool, &taken).iter().map(size).sum();
            let used: u128 = taken.iter().map(size).sum();
            assert_eq!(
                free + used,
                size(&pool),
                "free and used blocks tile the pool"
            );
        }
    }

    /// The allocator's paged search from its start hint gives exactly what a full
    /// read of the pool gives, through allocations, releases and any page size.
    #[test]
    fn paged_search_from_the_hint_finds_the_lowest_free_block() {
        let mut seed: u64 = 0x0bad_cafe_0042_0007;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for pool in [net("10.30.0.0/22"), net("2001:db8:cd00::/118")] {
            let base = pool.prefix_len();
            let mut taken: Vec<IpNet> = Vec::new();
            let mut hint = pool.network();
            for _ in 0..600 {
                let len = base + 2 + (rand() % 8) as u8;
                let page = 1 + (rand() % 5) as usize;
                taken.sort_by_key(first_address);
                let mut search = FreeSearch::new(&pool, hint, len);
                let found = loop {
                    let from = search.cursor().map(to_int);
                    let batch: Vec<IpNet> = taken
                        .iter()
                        .filter(|t| from.is_some_and(|f| first_address(t) >= f))
                        .take(page)
                        .copied()
                        .collect();
                    if let Some(b) = search.feed(&batch) {
                        break Some(b);
                    }
                    if batch.len() < page {
                        break search.finish();
                    }
                };
                assert_eq!(found, next_free(&pool, &taken, len), "from {hint}");
                if let Some(b) = found {
                    taken.push(b);
                    let first_free = search.first_free().expect("a gap was seen");
                    hint = if b.network() == first_free {
                        after(&b).unwrap_or(first_free)
                    } else {
                        first_free
                    };
                }
                if rand() % 3 == 0 && !taken.is_empty() {
                    let freed = taken.swap_remove((rand() as usize) % taken.len());
                    if to_int(freed.network()) < to_int(hint) {
                        hint = freed.network();
                    }
                }
            }
        }
    }
}
