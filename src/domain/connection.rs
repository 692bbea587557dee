//! A connection request and its lifecycle. One function, [`transition`], decides
//! every change of status; the store applies it only if the status is still the one
//! it was decided from, so two racing events cannot both win.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a person asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Two networks reach each other (optionally only on some ports).
    NetworkToNetwork,
    /// A hostname routed through the edge proxy to a service in a network.
    ServiceExposure,
    /// A source may reach ports of a destination network.
    FirewallOpening,
    /// A DNS name for an address or another name.
    DnsRecord,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::NetworkToNetwork,
        Kind::ServiceExposure,
        Kind::FirewallOpening,
        Kind::DnsRecord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NetworkToNetwork => "network-to-network",
            Kind::ServiceExposure => "service-exposure",
            Kind::FirewallOpening => "firewall-opening",
            Kind::DnsRecord => "dns-record",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text.trim())
    }

    /// Whether it lets traffic through on ports and a protocol (which a
    /// change may then alter), rather than naming a service or a record.
    pub fn has_ports(self) -> bool {
        matches!(self, Kind::NetworkToNetwork | Kind::FirewallOpening)
    }

    /// In the user's words, for pages and emails.
    pub fn label(self) -> &'static str {
        match self {
            Kind::NetworkToNetwork => "connection between two networks",
            Kind::ServiceExposure => "service exposure",
            Kind::FirewallOpening => "firewall opening",
            Kind::DnsRecord => "DNS record",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IP protocol a connection or opening is limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Any,
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    pub fn parse(text: &str) -> Result<Protocol, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "any" | "all" => Ok(Protocol::Any),
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" => Ok(Protocol::Icmp),
            other => Err(format!("{other:?} is not one of any, tcp, udp, icmp")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Any => "any",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        })
    }
}

/// A port or an inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// Parses `443, 8000-8100`; empty means every port.
pub fn parse_ports(text: &str) -> Result<Vec<PortRange>, String> {
    let mut ports = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        let number = |n: &str| {
            n.trim()
                .parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("{part:?} is not a port from 1 to 65535 or a range such as 8000-8100")
                })
        };
        let (from, to) = (number(from)?, number(to)?);
        if from > to {
            return Err(format!("{part:?} runs backwards"));
        }
        ports.push(PortRange { from, to });
    }
    ports.sort_by_key(|p| (p.from, p.to));
    ports.dedup();
    Ok(ports)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    PendingApproval,
    Approved,
    Provisioning,
    Active,
    Drifted,
    Deprovisioning,
    Deleted,
    Rejected,
    Cancelled,
    Failed,
    Expired,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::PendingApproval,
        Status::Approved,
        Status::Provisioning,
        Status::Active,
        Status::Drifted,
        Status::Deprovisioning,
        Status::Deleted,
        Status::Rejected,
        Status::Cancelled,
        Status::Failed,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingApproval => "pending_approval",
            Status::Approved => "approved",
            Status::Provisioning => "provisioning",
            Status::Active => "active",
            Status::Drifted => "drifted",
            Status::Deprovisioning => "deprovisioning",
            Status::Deleted => "deleted",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// In the user's words.
    pub fn label(self) -> &'static str {
        match self {
            Status::PendingApproval => "waiting for approval",
            Status::Approved => "approved",
            Status::Provisioning => "being set up",
            Status::Active => "active",
            Status::Drifted => "drifted",
            Status::Deprovisioning => "being removed",
            Status::Deleted => "removed",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Expired => "expired",
        }
    }

    /// Work is under way (its page keeps refreshing its progress).
    pub fn is_in_progress(self) -> bool {
        matches!(
            self,
            Status::Approved | Status::Provisioning | Status::Deprovisioning
        )
    }

    /// Nothing more happens to a connection in this status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Deleted | Status::Rejected | Status::Cancelled | Status::Expired
        )
    }

    /// The monitor compares what exists with the plan in this status.
    pub fn is_watched(self) -> bool {
        matches!(self, Status::Active | Status::Drifted)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A lead consented for one side; `all_sides` once every side has.
    Approve { all_sides: bool },
    /// A lead refused.
    Reject,
    /// The requester withdrew it.
    Cancel,
    /// Re-planning before apply gave a different plan: consent is needed again.
    PlanChanged,
    /// A worker started to build it.
    StartProvisioning,
    /// Everything in the plan exists.
    Provisioned,
    /// Building or removing failed for good.
    Fail,
    /// A lead or admin asks to try a failed connection again.
    Retry,
    /// The monitor found the real state differs from the plan.
    Drift,
    /// The real state matches again.
    Recover,
    /// Someone asked to remove it, or it expired while it exists.
    Deprovision,
    /// Everything it created is gone.
    Deprovisioned,
    /// Its time ran out before anything was built.
    Expire,
}

impl Event {
    pub const ALL: [Event; 14] = [
        Event::Approve { all_sides: false },
        Event::Approve { all_sides: true },
        Event::Reject,
        Event::Cancel,
        Event::PlanChanged,
        Event::StartProvisioning,
        Event::Provisioned,
        Event::Fail,
        Event::Retry,
        Event::Drift,
        Event::Recover,
        Event::Deprovision,
        Event::Deprovisioned,
        Event::Expire,
    ];

    fn verb(self) -> &'static str {
        match self {
            Event::Approve { .. } => "approve",
            Event::Reject => "reject",
            Event::Cancel => "cancel",
            Event::PlanChanged => "re-plan",
            Event::StartProvisioning => "provision",
            Event::Provisioned => "finish provisioning",
            Event::Fail => "fail",
            Event::Retry => "retry",
            Event::Drift => "mark as drifted",
            Event::Recover => "mark as recovered",
            Event::Deprovision => "remove",
            Event::Deprovisioned => "finish removing",
            Event::Expire => "expire",
        }
    }
}

/// Why an event does not apply in a status, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The status after `event`, or why it cannot happen now.
pub fn transition(from: Status, event: Event) -> Result<Status, Refused> {
    use Event as E;
    use Status as S;
    let to = match (from, event) {
        (S::PendingApproval, E::Approve { all_sides: false }) => S::PendingApproval,
        (S::PendingApproval, E::Approve { all_sides: true }) => S::Approved,
        (S::PendingApproval, E::Reject) => S::Rejected,
        (S::PendingApproval, E::Cancel) => S::Cancelled,
        (S::PendingApproval | S::Approved, E::Expire) => S::Expired,
        (S::Approved, E::Cancel) => S::Cancelled,
        (S::Approved | S::Provisioning, E::PlanChanged) => S::PendingApproval,
        (S::Approved, E::StartProvisioning) => S::Provisioning,
        (S::Provisioning, E::Provisioned) => S::Active,
        // Approved: re-planning before the build found the request can no
        // longer be built (a network deleted meanwhile).
        (S::Approved | S::Provisioning | S::Deprovisioning, E::Fail) => S::Failed,
        (S::Failed, E::Retry) => S::Approved,
        (S::Active, E::Drift) => S::Drifted,
        (S::Drifted, E::Recover) => S::Active,
        // Not while it is being built: the build would race the removal.
        (S::Active | S::Drifted | S::Failed, E::Deprovision) => S::Deprovisioning,
        (S::Deprovisioning, E::Deprovisioned) => S::Deleted,
        (from, event) => {
            return Err(Refused(format!(
                "a connection that is {} cannot {}",
                from.label(),
                event.verb()
            )));
        }
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (status, event) pair, against the lifecycle written out by hand.
    #[test]
    fn every_status_and_event_pair() {
        use Event as E;
        use Status as S;
        let allowed: &[(S, E, S)] = &[
            (
                S::PendingApproval,
                E::Approve { all_sides: false },
                S::PendingApproval,
            ),
            (
                S::PendingApproval,
                E::Approve { all_sides: true },
                S::Approved,
            ),
            (S::PendingApproval, E::Reject, S::Rejected),
            (S::PendingApproval, E::Cancel, S::Cancelled),
            (S::PendingApproval, E::Expire, S::Expired),
            (S::Approved, E::Cancel, S::Cancelled),
            (S::Approved, E::Expire, S::Expired),
            (S::Approved, E::PlanChanged, S::PendingApproval),
            (S::Approved, E::StartProvisioning, S::Provisioning),
            (S::Approved, E::Fail, S::Failed),
            (S::Provisioning, E::PlanChanged, S::PendingApproval),
            (S::Provisioning, E::Provisioned, S::Active),
            (S::Provisioning, E::Fail, S::Failed),
            (S::Active, E::Drift, S::Drifted),
            (S::Active, E::Deprovision, S::Deprovisioning),
            (S::Drifted, E::Recover, S::Active),
            (S::Drifted, E::Deprovision, S::Deprovisioning),
            (S::Failed, E::Retry, S::Approved),
            (S::Failed, E::Deprovision, S::Deprovisioning),
            (S::Deprovisioning, E::Deprovisioned, S::Deleted),
            (S::Deprovisioning, E::Fail, S::Failed),
        ];
        let mut checked = 0;
        for from in Status::ALL {
            for event in Event::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (transition(from, event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from} + {event:?}"),
                    (Err(why), None) => {
                        assert!(why.0.contains(from.label()), "{why}");
                    }
                    (got, want) => panic!("{from} + {event:?}: got {got:?}, want {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, Status::ALL.len() * Event::ALL.len());
    }

    #[test]
    fn final_statuses_accept_nothing() {
        for from in Status::ALL.into_iter().filter(|s| s.is_final()) {
            for event in Event::ALL {
                assert!(transition(from, event).is_err(), "{from} + {event:?}");
            }
        }
    }

    #[test]
    fn ports_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_ports(" 8000-8100, 443,443 "),
            Ok(vec![
                PortRange { from: 443, to: 443 },
                PortRange {
                    from: 8000,
                    to: 8100
                }
            ])
        );
        assert_eq!(parse_ports(""), Ok(vec![]));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("70000").is_err());
        assert!(parse_ports("90-80").unwrap_err().contains("backwards"));
        assert!(parse_ports("https").is_err());
        assert_eq!(Protocol::parse("TCP"), Ok(Protocol::Tcp));
        assert!(Protocol::parse("sctp").is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("tunnel"), None);
    }
}
