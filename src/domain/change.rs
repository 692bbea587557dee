//! Changing an active connection: what traffic the new ports and protocol let
//! through compared with the old ones (narrowing needs nobody else's consent,
//! widening needs every side's), and how firewall rules are cut so that what
//! is kept is never closed. Pure rules, no I/O.

use super::connection::{PortRange, Protocol};

/// The traffic a connection lets through: a protocol and its ports (empty: all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    pub protocol: Protocol,
    pub ports: Vec<PortRange>,
}

impl Traffic {
    /// Does this let through everything `other` lets through?
    pub fn covers(&self, other: &Traffic) -> bool {
        let protocol = self.protocol == Protocol::Any || self.protocol == other.protocol;
        if !protocol {
            return false;
        }
        // ICMP and "all ports" have no port limit.
        if self.ports.is_empty() || self.protocol == Protocol::Icmp {
            return true;
        }
        if other.ports.is_empty() {
            return false;
        }
        other.ports.iter().all(|want| {
            (want.from..=want.to).all(|p| self.ports.iter().any(|r| r.from <= p && p <= r.to))
        })
    }
}

/// How a change moves what is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Nothing the connection lets through changes (the reason only).
    Same,
    /// Less passes: no other side's consent is needed.
    Narrower,
    /// Something new passes: every side's lead approves.
    Wider,
}

pub fn scope(before: &Traffic, after: &Traffic) -> Scope {
    match (before.covers(after), after.covers(before)) {
        (true, true) => Scope::Same,
        (true, false) => Scope::Narrower,
        _ => Scope::Wider,
    }
}

/// The port ranges of `old` that `new` no longer opens: what removing an old
/// rule may close without closing anything the new rule keeps open.
pub fn ports_closed(old: &[PortRange], new: &[PortRange]) -> Vec<PortRange> {
    let open = |p: u16| new.iter().any(|r| r.from <= p && p <= r.to);
    let mut closed: Vec<PortRange> = Vec::new();
    for r in old {
        let mut start: Option<u16> = None;
        for p in r.from..=r.to {
            match (open(p), start) {
                (false, None) => start = Some(p),
                (true, Some(s)) => {
                    closed.push(PortRange { from: s, to: p - 1 });
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            closed.push(PortRange { from: s, to: r.to });
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::connection::parse_ports;

    fn t(protocol: Protocol, ports: &str) -> Traffic {
        Traffic {
            protocol,
            ports: parse_ports(ports).unwrap(),
        }
    }

    #[test]
    fn adding_a_port_widens_and_removing_one_narrows() {
        use Protocol::*;
        let web = t(Tcp, "443");
        assert_eq!(scope(&web, &t(Tcp, "443, 8443")), Scope::Wider);
        assert_eq!(scope(&t(Tcp, "443, 8443"), &web), Scope::Narrower);
        assert_eq!(scope(&web, &t(Tcp, "443")), Scope::Same);
        assert_eq!(scope(&t(Tcp, "400-500"), &web), Scope::Narrower);
        assert_eq!(
            scope(&web, &t(Udp, "443")),
            Scope::Wider,
            "another protocol"
        );
        assert_eq!(scope(&t(Any, ""), &web), Scope::Narrower, "from everything");
        assert_eq!(scope(&web, &t(Tcp, "")), Scope::Wider, "to every port");
        assert_eq!(scope(&t(Any, "443"), &t(Tcp, "443")), Scope::Narrower);
    }

    #[test]
    fn an_old_rule_closes_only_the_ports_the_new_one_does_not_keep() {
        let closed = |old: &str, new: &str| {
            ports_closed(&parse_ports(old).unwrap(), &parse_ports(new).unwrap())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(closed("443", "443, 8443"), "");
        assert_eq!(closed("443, 8443", "443"), "8443");
        assert_eq!(closed("8000-8100", "8050"), "8000-8049, 8051-8100");
        assert_eq!(closed("80", "443"), "80");
    }
}
