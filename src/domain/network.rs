//! A network's life when Switchboard builds it, how its address range is cut
//! into one subnet per availability zone, and which underlay address a built
//! namespace gets. Pure rules, no I/O.

use ipnet::IpNet;

/// Where a network stands. `Registered` networks were built by someone else
/// and are only recorded; the others are built by Switchboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Registered,
    AwaitingApproval,
    Building,
    Ready,
    Drifted,
    Failed,
    Removing,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Registered,
        Status::AwaitingApproval,
        Status::Building,
        Status::Ready,
        Status::Drifted,
        Status::Failed,
        Status::Removing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Registered => "registered",
            Status::AwaitingApproval => "awaiting_approval",
            Status::Building => "building",
            Status::Ready => "ready",
            Status::Drifted => "drifted",
            Status::Failed => "failed",
            Status::Removing => "removing",
        }
    }

    /// The status a stored word names; an unknown word reads as failed, which
    /// nothing builds on (fail closed).
    pub fn parse(word: &str) -> Status {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .unwrap_or(Status::Failed)
    }

    /// In words, for pages and emails.
    pub fn words(self) -> &'static str {
        match self {
            Status::Registered => "registered",
            Status::AwaitingApproval => "waiting for its team lead's approval",
            Status::Building => "being built",
            Status::Ready => "ready",
            Status::Drifted => "drifted from what was built",
            Status::Failed => "failed to build",
            Status::Removing => "being removed",
        }
    }

    /// Whether connections can be requested to or from it: it exists as planned
    /// (a drifted one still exists; its owners are told to put it back).
    pub fn usable(self) -> Result<(), String> {
        match self {
            Status::Registered | Status::Ready | Status::Drifted => Ok(()),
            other => Err(format!("is {}: it cannot be connected yet", other.words())),
        }
    }
}

/// The subnets of a network: its range cut into the smallest power of two of
/// equal parts that gives every zone one, in address order (a /16 over three
/// zones gives three /18s and leaves the fourth free for later). `smallest` is
/// the longest prefix a subnet may have (AWS: /28).
pub fn subnets(cidr: IpNet, zones: usize, smallest: u8) -> Result<Vec<IpNet>, String> {
    if zones == 0 {
        return Err("no availability zone to put a subnet in".into());
    }
    let bits = usize::BITS - (zones - 1).leading_zeros();
    let length = u32::from(cidr.prefix_len()) + bits;
    if length > u32::from(smallest) {
        return Err(format!(
            "{cidr} is too small for {zones} subnets of at least /{smallest}: ask for a /{} or larger",
            u32::from(smallest) - bits
        ));
    }
    let length = u8::try_from(length).map_err(|_| "prefix too long".to_owned())?;
    let parts = cidr
        .subnets(length)
        .map_err(|e| format!("{cidr} cannot be cut into /{length}: {e}"))?;
    Ok(parts.take(zones).collect())
}

/// Where a linux account's built namespaces meet: a bridge on the build host
/// (`underlay_bridge`) and the range their underlay addresses come from
/// (`underlay_range`). A namespace's tunnels are reached at its address there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub bridge: String,
    pub range: ipnet::Ipv4Net,
}

impl Underlay {
    /// The account's underlay from its two settings: none when neither is set,
    /// an error naming the setting when one is missing or malformed.
    pub fn from_settings(
        bridge: Option<&str>,
        range: Option<&str>,
    ) -> Result<Option<Underlay>, String> {
        let (bridge, range) = match (bridge.map(str::trim), range.map(str::trim)) {
            (None, None) => return Ok(None),
            (Some(b), Some(r)) => (b, r),
            (Some(_), None) => {
                return Err("underlay_bridge needs underlay_range: the range its namespaces' addresses come from".into());
            }
            (None, Some(_)) => {
                return Err("underlay_range needs underlay_bridge: the bridge on the build host its namespaces join".into());
            }
        };
        let name_ok = !bridge.is_empty()
            && bridge.len() <= 15
            && bridge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "underlay_bridge must be an interface name (1 to 15 letters, digits, '-', '_' or '.'), not {bridge:?}"
            ));
        }
        let range: ipnet::Ipv4Net = range.parse().map_err(|_| {
            format!("underlay_range must be an IPv4 range such as 192.168.90.0/24, not {range:?}")
        })?;
        if range.prefix_len() > 29 {
            return Err(format!(
                "underlay_range {range} is too small: a /29 or larger leaves room for namespaces"
            ));
        }
        Ok(Some(Underlay {
            bridge: bridge.to_owned(),
            range: range.trunc(),
        }))
    }

    /// The lowest address of the range not `taken`, with the range's prefix
    /// length; the first usable address is left for the host's own end of the
    /// bridge. `None` when the range is full.
    pub fn next_address(&self, taken: &[IpNet]) -> Option<IpNet> {
        self.range
            .hosts()
            .skip(1)
            .filter(|a| !taken.iter().any(|t| t.addr() == std::net::IpAddr::V4(*a)))
            .find_map(|a| ipnet::Ipv4Net::new(a, self.range.prefix_len()).ok())
            .map(IpNet::V4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_underlay_needs_both_settings_and_hands_out_free_addresses_in_order() {
        assert_eq!(Underlay::from_settings(None, None), Ok(None));
        let one = Underlay::from_settings(Some("sbul0"), None).unwrap_err();
        assert!(
            one.starts_with("underlay_bridge needs underlay_range"),
            "{one}"
        );
        let bad = Underlay::from_settings(Some("a bridge"), Some("192.168.90.0/24")).unwrap_err();
        assert!(bad.starts_with("underlay_bridge must be"), "{bad}");
        let bad = Underlay::from_settings(Some("sbul0"), Some("fd00::/64")).unwrap_err();
        assert!(
            bad.starts_with("underlay_range must be an IPv4 range"),
            "{bad}"
        );
        let small = Underlay::from_settings(Some("sbul0"), Some("192.168.90.0/30")).unwrap_err();
        assert!(small.contains("too small"), "{small}");

        let u = Underlay::from_settings(Some("sbul0"), Some("192.168.90.7/29"))
            .unwrap()
            .unwrap();
        assert_eq!(u.range.to_string(), "192.168.90.0/29");
        // .1 is the host's; .2 onwards go to namespaces, gaps first.
        assert_eq!(u.next_address(&[]), Some(net("192.168.90.2/29")));
        let taken = [net("192.168.90.2/29"), net("192.168.90.4/29")];
        assert_eq!(u.next_address(&taken), Some(net("192.168.90.3/29")));
        let full: Vec<IpNet> = (2..=6)
            .map(|i| net(&format!("192.168.90.{i}/29")))
            .collect();
        assert_eq!(u.next_address(&full), None);
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_range_is_cut_into_one_subnet_per_zone_in_address_order() {
        let three = subnets(net("10.20.0.0/16"), 3, 28).unwrap();
        assert_eq!(
            three,
            vec![
                net("10.20.0.0/18"),
                net("10.20.64.0/18"),
                net("10.20.128.0/18")
            ]
        );
        assert_eq!(
            subnets(net("10.20.0.0/24"), 2, 28).unwrap(),
            vec![net("10.20.0.0/25"), net("10.20.0.128/25")]
        );
        assert_eq!(
            subnets(net("10.20.0.0/24"), 1, 28).unwrap(),
            vec![net("10.20.0.0/24")]
        );
    }

    #[test]
    fn a_range_too_small_for_its_zones_says_what_size_would_do() {
        let refused = subnets(net("10.20.0.16/28"), 3, 28).unwrap_err();
        assert!(refused.contains("ask for a /26 or larger"), "{refused}");
        assert!(subnets(net("10.20.0.0/26"), 3, 28).is_ok());
        assert!(subnets(net("10.20.0.0/24"), 0, 28).is_err());
    }

    #[test]
    fn every_status_reads_back_and_only_existing_networks_are_usable() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), s);
        }
        assert_eq!(Status::parse("gone"), Status::Failed);
        assert!(Status::Ready.usable().is_ok());
        assert!(Status::Registered.usable().is_ok());
        let refused = Status::Building.usable().unwrap_err();
        assert_eq!(refused, "is being built: it cannot be connected yet");
        assert!(Status::AwaitingApproval.usable().is_err());
        assert!(Status::Removing.usable().is_err());
    }
}
