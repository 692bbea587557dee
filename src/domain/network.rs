//! A network's life when Switchboard builds it, and how its address range is
//! cut into one subnet per availability zone. Pure rules, no I/O.

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

#[cfg(test)]
mod tests {
    use super::*;

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
