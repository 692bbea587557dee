//! Exposing a service through the edge proxy: the proxy route, the DNS record
//! that points the name at the proxy, and the opening that lets the proxy in.

use super::dns::in_zone;
use super::*;

pub(super) fn service_exposure(
    target: &End,
    address: std::net::IpAddr,
    port: u16,
    hostname: &str,
    path: &str,
    proxies: &[(Service, Vec<String>)],
    dns: &[Service],
) -> Result<Plan, Refusal> {
    if !target.prefixes.iter().any(|p| p.contains(&address)) {
        return Err(refuse(
            "target_address",
            format!(
                "{address} is not in the network {} ({})",
                target.network,
                target.prefix_list()
            ),
        ));
    }
    let Some((proxy, _)) = proxies
        .iter()
        .find(|(_, regions)| regions.is_empty() || regions.contains(&target.region))
    else {
        return Err(refuse(
            "destination_network_id",
            format!(
                "no edge proxy account serves {}: an admin adds a proxy provider account first",
                target.region
            ),
        ));
    };
    let zone = dns.iter().find(|d| in_zone(hostname, &d.detail));
    let mut rejected = Vec::new();
    let mut resources = vec![Resource::new(
        &proxy.account,
        format!("{hostname}{path}"),
        format!("https://{hostname}{path} → {address}:{port}"),
        Build::ProxyRoute {
            hostname: hostname.to_owned(),
            path: path.to_owned(),
            upstream: std::net::SocketAddr::new(address, port),
        },
    )];
    match zone {
        Some(z) => resources.push(Resource {
            // An exposure's record is labelled for what it is for, whatever its type.
            kind: "DNS record".into(),
            ..Resource::new(
                &z.account,
                hostname.to_owned(),
                format!("{hostname} → {} (the proxy)", proxy.detail),
                Build::DnsRecord {
                    record_type: match proxy.detail.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V4(_)) => "A",
                        Ok(std::net::IpAddr::V6(_)) => "AAAA",
                        Err(_) => "CNAME",
                    }
                    .to_owned(),
                    value: proxy.detail.clone(),
                    ttl: 300,
                },
            )
        }),
        None => rejected.push(Alternative {
            mechanism: Mechanism::DnsRecord,
            why_not: format!(
                "no DNS account serves a zone containing {hostname}: point the name at {} by hand",
                proxy.detail
            ),
        }),
    }
    Ok(Plan {
        kind: Kind::ServiceExposure,
        mechanism: Mechanism::ProxyRoute,
        summary: format!(
            "https://{hostname}{path} through {} to {address}:{port} in {}",
            proxy.account, target.network
        ),
        explanation: format!(
            "The edge proxy {} routes {hostname}{path} to the service at {address}:{port}{}; the network itself stays private.",
            proxy.account,
            if zone.is_some() {
                ", and a DNS record points the name at the proxy"
            } else {
                ""
            }
        ),
        rejected,
        resources,
        routes: Vec::new(),
        rules: vec![Rule {
            account: target.account.clone(),
            network: target.network.clone(),
            allow_from: proxy_source(proxy),
            protocol: "tcp".into(),
            ports: port.to_string(),
            at: target.place(),
        }],
        guardrails: Vec::new(),
    })
}

/// The range a network's firewall opens to for a proxy: its `source_cidr`, else
/// its address if that is an IP, else words the network's provider will refuse
/// (an admin then sets `source_cidr`).
fn proxy_source(proxy: &Service) -> String {
    match (&proxy.source, proxy.detail.parse::<std::net::IpAddr>()) {
        (Some(cidr), _) => cidr.clone(),
        (None, Ok(ip)) => IpNet::from(ip).to_string(),
        (None, Err(_)) => format!("the proxy {}", proxy.detail),
    }
}
