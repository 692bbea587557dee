//! The reachability model: the flows the open connections allow (from which
//! addresses, to which, on which protocol and ports, through which
//! connection), and the question "who can reach X on port P". Pure rules,
//! no I/O: the services build the flows from what is stored.

use ipnet::IpNet;
use serde::Serialize;
use uuid::Uuid;

use super::connection::{Kind, PortRange, Protocol};

/// Traffic one connection lets through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub connection_id: Uuid,
    pub kind: Kind,
    /// Where it comes from, in words (a network's name, a range, "anywhere").
    pub from_name: String,
    pub from: Vec<IpNet>,
    pub to_name: String,
    pub to: Vec<IpNet>,
    pub protocol: Protocol,
    /// No ports: every port.
    pub ports: Vec<PortRange>,
}

/// What is asked: traffic to `to` (from `from`, when given, on `port`, when given).
#[derive(Clone, Debug, Default)]
pub struct Question {
    pub from: Option<Vec<IpNet>>,
    pub to: Vec<IpNet>,
    pub port: Option<u16>,
}

/// Whether two lists of ranges share an address.
fn overlap(a: &[IpNet], b: &[IpNet]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| x.contains(&y.network()) || y.contains(&x.network()))
    })
}

impl Flow {
    /// Whether this flow carries (some of) the traffic asked about.
    pub fn answers(&self, q: &Question) -> bool {
        overlap(&self.to, &q.to)
            && q.from.as_ref().is_none_or(|from| overlap(&self.from, from))
            && q.port.is_none_or(|p| {
                self.ports.is_empty() || self.ports.iter().any(|r| r.from <= p && p <= r.to)
            })
    }

    /// Whether `other` already lets all of this through (same or wider
    /// sources, destinations, protocol and ports).
    pub fn covered_by(&self, other: &Flow) -> bool {
        let within = |inner: &[IpNet], outer: &[IpNet]| {
            inner.iter().all(|i| outer.iter().any(|o| o.contains(i)))
        };
        let ports_within = other.ports.is_empty()
            || (!self.ports.is_empty()
                && self
                    .ports
                    .iter()
                    .all(|p| other.ports.iter().any(|o| o.from <= p.from && p.to <= o.to)));
        within(&self.from, &other.from)
            && within(&self.to, &other.to)
            && (other.protocol == Protocol::Any || other.protocol == self.protocol)
            && ports_within
    }
}

/// The flows that answer the question, in the order given.
pub fn reaching<'a>(flows: &'a [Flow], q: &'a Question) -> impl Iterator<Item = &'a Flow> + 'a {
    flows.iter().filter(move |f| f.answers(q))
}

/// What a connection's request (or its change) would add: each of its
/// flows, with the open connection that already allows it, if one other than
/// itself (`own`) does.
pub fn delta<'a>(
    adds: &'a [Flow],
    open: &'a [Flow],
    own: Uuid,
) -> Vec<(&'a Flow, Option<&'a Flow>)> {
    adds.iter()
        .map(|f| {
            let by = open
                .iter()
                .find(|o| o.connection_id != own && f.covered_by(o));
            (f, by)
        })
        .collect()
}

/// Every port, as a range (a flow without ports lets all through).
const EVERY_PORT: PortRange = PortRange { from: 1, to: 65535 };

/// The ports of `a` that are not in `b` (no ports: every port).
fn ports_minus(a: &[PortRange], b: &[PortRange]) -> Vec<PortRange> {
    let all = [EVERY_PORT];
    let (a, b) = (
        if a.is_empty() { &all[..] } else { a },
        if b.is_empty() { &all[..] } else { b },
    );
    let mut left: Vec<PortRange> = a.to_vec();
    for cut in b {
        left = left
            .into_iter()
            .flat_map(|r| {
                let mut pieces = Vec::new();
                if cut.to < r.from || r.to < cut.from {
                    pieces.push(r);
                } else {
                    if r.from < cut.from {
                        pieces.push(PortRange {
                            from: r.from,
                            to: cut.from - 1,
                        });
                    }
                    if cut.to < r.to {
                        pieces.push(PortRange {
                            from: cut.to + 1,
                            to: r.to,
                        });
                    }
                }
                pieces
            })
            .collect();
    }
    left
}

/// What changing a connection from the flows `before` to `after` lets
/// through that it did not (first), and no longer lets through (second): for
/// the same ends and protocol, the ports gained and lost; otherwise each flow
/// the other side does not cover, whole.
pub fn changed(before: &[Flow], after: &[Flow]) -> (Vec<Flow>, Vec<Flow>) {
    let beyond = |these: &[Flow], those: &[Flow]| -> Vec<Flow> {
        these
            .iter()
            .filter_map(|f| {
                let same = those
                    .iter()
                    .find(|o| o.from == f.from && o.to == f.to && o.protocol == f.protocol);
                match same {
                    Some(o) => {
                        let ports = ports_minus(&f.ports, &o.ports);
                        (!ports.is_empty()).then(|| Flow { ports, ..f.clone() })
                    }
                    None => (!those.iter().any(|o| f.covered_by(o))).then(|| f.clone()),
                }
            })
            .collect()
    };
    (beyond(after, before), beyond(before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn flow(from: &[&str], to: &[&str], protocol: Protocol, ports: &[(u16, u16)]) -> Flow {
        Flow {
            connection_id: Uuid::new_v4(),
            kind: Kind::NetworkToNetwork,
            from_name: "a".into(),
            from: nets(from),
            to_name: "b".into(),
            to: nets(to),
            protocol,
            ports: ports
                .iter()
                .map(|&(from, to)| PortRange { from, to })
                .collect(),
        }
    }

    #[test]
    fn a_flow_answers_for_its_ranges_and_ports_only() {
        let f = flow(
            &["10.1.0.0/16"],
            &["10.2.0.0/16"],
            Protocol::Tcp,
            &[(443, 443), (8000, 8100)],
        );
        let q = |from: Option<&[&str]>, to: &[&str], port| Question {
            from: from.map(nets),
            to: nets(to),
            port,
        };
        assert!(f.answers(&q(None, &["10.2.3.4/32"], Some(443))));
        assert!(f.answers(&q(Some(&["10.1.9.9/32"]), &["10.2.0.0/24"], Some(8050))));
        assert!(
            f.answers(&q(None, &["10.0.0.0/8"], None)),
            "a wider question overlaps"
        );
        assert!(!f.answers(&q(None, &["10.2.3.4/32"], Some(22))));
        assert!(!f.answers(&q(Some(&["10.9.0.0/16"]), &["10.2.3.4/32"], Some(443))));
        assert!(!f.answers(&q(None, &["10.3.0.0/16"], None)));
        let all = flow(&["0.0.0.0/0"], &["10.2.0.0/16"], Protocol::Any, &[]);
        assert!(all.answers(&q(Some(&["192.0.2.1/32"]), &["10.2.0.1/32"], Some(22))));
    }

    #[test]
    fn a_request_already_allowed_says_by_which_connection() {
        let open = vec![flow(
            &["10.1.0.0/16"],
            &["10.2.0.0/16"],
            Protocol::Tcp,
            &[(400, 500)],
        )];
        let narrower = flow(
            &["10.1.2.0/24"],
            &["10.2.0.0/16"],
            Protocol::Tcp,
            &[(443, 443)],
        );
        let wider = flow(
            &["10.1.0.0/16"],
            &["10.2.0.0/16"],
            Protocol::Tcp,
            &[(443, 443), (22, 22)],
        );
        let udp = flow(
            &["10.1.0.0/16"],
            &["10.2.0.0/16"],
            Protocol::Udp,
            &[(443, 443)],
        );
        let every_port = flow(&["10.1.0.0/16"], &["10.2.0.0/16"], Protocol::Tcp, &[]);
        let adds = [narrower, wider, udp, every_port];
        let d = delta(&adds, &open, Uuid::nil());
        assert_eq!(d[0].1.map(|f| f.connection_id), Some(open[0].connection_id));
        assert!(d[1].1.is_none(), "port 22 is new");
        assert!(d[2].1.is_none(), "udp is new");
        assert!(d[3].1.is_none(), "every port is more than 400-500");
        let d = delta(&adds, &open, open[0].connection_id);
        assert!(d[0].1.is_none(), "a connection does not cover itself");
    }

    #[test]
    fn a_change_gains_and_loses_the_ports_that_differ() {
        let ends = (&["10.1.0.0/16"][..], &["10.2.0.0/16"][..]);
        let before = vec![flow(
            ends.0,
            ends.1,
            Protocol::Tcp,
            &[(443, 443), (8000, 8100)],
        )];
        let mut after = before.clone();
        after[0].ports = vec![
            PortRange { from: 443, to: 443 },
            PortRange {
                from: 8050,
                to: 8200,
            },
        ];
        let (gained, lost) = changed(&before, &after);
        assert_eq!(
            gained[0].ports,
            [PortRange {
                from: 8101,
                to: 8200
            }]
        );
        assert_eq!(
            lost[0].ports,
            [PortRange {
                from: 8000,
                to: 8049
            }]
        );
        let (gained, lost) = changed(&before, &before);
        assert!(gained.is_empty() && lost.is_empty(), "nothing changes");
        // Every port (none named) against a few.
        after[0].ports = Vec::new();
        let (gained, lost) = changed(&before, &after);
        assert_eq!(
            gained[0].ports,
            [
                PortRange { from: 1, to: 442 },
                PortRange {
                    from: 444,
                    to: 7999
                },
                PortRange {
                    from: 8101,
                    to: 65535
                }
            ]
        );
        assert!(lost.is_empty());
        // Another protocol: tcp to any covers what was, gains the rest whole.
        after[0].protocol = Protocol::Any;
        let (gained, lost) = changed(&before, &after);
        assert_eq!(gained.len(), 1);
        assert!(lost.is_empty(), "any protocol covers tcp");
        let (gained, lost) = changed(&after, &before);
        assert!(gained.is_empty());
        assert_eq!(lost.len(), 1);
    }
}
