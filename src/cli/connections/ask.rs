//! `connection request`: its flags, and networks found by name or team/name.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Kind {
    /// Two networks reach each other
    NetworkToNetwork,
    /// A hostname routed through the edge proxy to a service in a network
    ServiceExposure,
    /// A source network or CIDR may reach ports of a network
    FirewallOpening,
    /// An A, AAAA or CNAME record for a team
    DnsRecord,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::NetworkToNetwork => "network-to-network",
            Kind::ServiceExposure => "service-exposure",
            Kind::FirewallOpening => "firewall-opening",
            Kind::DnsRecord => "dns-record",
        }
    }
}

/// A network is named by its id, its name, or `team/name` (names are unique per team).
#[derive(Args)]
pub struct RequestArgs {
    /// What to ask for; each kind takes the flags that mention it
    #[arg(long, value_enum)]
    pub(super) kind: Kind,
    /// Why it is needed: approvers read this (optional with --dry-run)
    #[arg(long)]
    pub(super) reason: Option<String>,
    /// network-to-network, firewall-opening: where traffic comes from (id, name or team/name)
    #[arg(long, value_name = "NETWORK")]
    pub(super) from: Option<String>,
    /// firewall-opening: instead of --from, addresses outside the portal, e.g. 203.0.113.0/24
    #[arg(long, value_name = "CIDR", conflicts_with = "from")]
    pub(super) from_cidr: Option<String>,
    /// The other network (network-to-network), the network opened (firewall-opening) or the service's network (service-exposure)
    #[arg(long, value_name = "NETWORK")]
    pub(super) to: Option<String>,
    /// network-to-network, firewall-opening: any, tcp, udp or icmp [default: any]
    #[arg(long)]
    pub(super) protocol: Option<String>,
    /// network-to-network, firewall-opening: ports or ranges, e.g. 443,8000-8100 [default: all]
    #[arg(long)]
    pub(super) ports: Option<String>,
    /// service-exposure: the service's address inside --to, e.g. 10.1.2.3
    #[arg(long, value_name = "IP")]
    pub(super) address: Option<String>,
    /// service-exposure: the service's port
    #[arg(long)]
    pub(super) port: Option<u16>,
    /// service-exposure: the public name, e.g. api.example.com
    #[arg(long)]
    pub(super) hostname: Option<String>,
    /// service-exposure: the path routed to the service [default: /]
    #[arg(long)]
    pub(super) path: Option<String>,
    /// dns-record: the team the record is for (its slug)
    #[arg(long)]
    pub(super) team: Option<String>,
    /// dns-record: the record's name, e.g. db.example.com
    #[arg(long)]
    pub(super) name: Option<String>,
    /// dns-record: A, AAAA or CNAME
    #[arg(long = "type", value_name = "TYPE")]
    pub(super) record_type: Option<String>,
    /// dns-record: the address (A, AAAA) or name (CNAME) it points to
    #[arg(long)]
    pub(super) value: Option<String>,
    /// dns-record: seconds [default: 300]
    #[arg(long, value_name = "SECONDS")]
    pub(super) ttl: Option<u32>,
    /// Remove it after this many hours
    #[arg(long, value_name = "N")]
    pub(super) expires_in_hours: Option<i64>,
    /// Print the plan the request would get, and save nothing
    #[arg(long)]
    pub(super) dry_run: bool,
}

impl RequestArgs {
    /// Refuses flags the kind does not take: the API would ignore them silently.
    pub(super) fn check_flags(&self) -> Result<(), Error> {
        use Kind::*;
        let flags: [(&str, bool, &[Kind]); 14] = [
            (
                "--from",
                self.from.is_some(),
                &[NetworkToNetwork, FirewallOpening],
            ),
            ("--from-cidr", self.from_cidr.is_some(), &[FirewallOpening]),
            (
                "--to",
                self.to.is_some(),
                &[NetworkToNetwork, FirewallOpening, ServiceExposure],
            ),
            (
                "--protocol",
                self.protocol.is_some(),
                &[NetworkToNetwork, FirewallOpening],
            ),
            (
                "--ports",
                self.ports.is_some(),
                &[NetworkToNetwork, FirewallOpening],
            ),
            ("--address", self.address.is_some(), &[ServiceExposure]),
            ("--port", self.port.is_some(), &[ServiceExposure]),
            ("--hostname", self.hostname.is_some(), &[ServiceExposure]),
            ("--path", self.path.is_some(), &[ServiceExposure]),
            ("--team", self.team.is_some(), &[DnsRecord]),
            ("--name", self.name.is_some(), &[DnsRecord]),
            ("--type", self.record_type.is_some(), &[DnsRecord]),
            ("--value", self.value.is_some(), &[DnsRecord]),
            ("--ttl", self.ttl.is_some(), &[DnsRecord]),
        ];
        let kind = self.kind;
        let stray: Vec<&str> = flags
            .iter()
            .filter(|(_, given, kinds)| *given && !kinds.contains(&kind))
            .map(|(flag, _, _)| *flag)
            .collect();
        if stray.is_empty() {
            return Ok(());
        }
        let takes: Vec<&str> = flags
            .iter()
            .filter(|(_, _, kinds)| kinds.contains(&kind))
            .map(|(flag, _, _)| *flag)
            .collect();
        Err(Error::Usage(format!(
            "{} {} not apply to --kind {}: it takes {} (and --reason, --expires-in-hours, --dry-run)",
            stray.join(", "),
            if stray.len() == 1 { "does" } else { "do" },
            kind.as_str(),
            takes.join(", ")
        )))
    }
}

/// A network as `/api/v1/networks` lists it (what naming one needs).
#[derive(Deserialize)]
pub(super) struct NetworkName {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) team: String,
}

/// The network `text` names: an id, `team/name`, or a name only one team uses.
/// `flag` is where it came from, for the message.
pub(super) fn find_network(
    networks: &[NetworkName],
    text: &str,
    flag: &str,
) -> Result<Uuid, Error> {
    let text = text.trim();
    let found: Vec<&NetworkName> = networks
        .iter()
        .filter(|n| n.name == text || format!("{}/{}", n.team, n.name) == text)
        .collect();
    match found[..] {
        [n] => Ok(n.id),
        [] => Err(Error::Failed(format!(
            "{flag}: no network is called {text:?} (give its id, its name, or team/name; \
             `switchboard network list` shows them)"
        ))),
        _ => Err(Error::Failed(format!(
            "{flag}: several teams have a network called {text:?}: {}; say which with team/name",
            found
                .iter()
                .map(|n| format!("{}/{}", n.team, n.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Turns `--from`/`--to` into network ids, listing the networks only when a name needs it.
pub(super) async fn network_ids<const N: usize>(
    client: &Client,
    named: [(&str, Option<&str>); N],
) -> Result<[Option<Uuid>; N], Error> {
    let by_name = |text: &str| Uuid::parse_str(text.trim()).is_err();
    let networks: Vec<NetworkName> = if named.iter().any(|(_, t)| t.is_some_and(by_name)) {
        client.get_all("/networks", &[]).await?.parse()?
    } else {
        Vec::new()
    };
    let mut ids = [None; N];
    for (id, (flag, text)) in ids.iter_mut().zip(named) {
        *id = match text {
            Some(text) => match Uuid::parse_str(text.trim()) {
                Ok(id) => Some(id),
                Err(_) => Some(find_network(&networks, text, flag)?),
            },
            None => None,
        };
    }
    Ok(ids)
}
