//! Provider modules: what each kind of provider account can build. The planner
//! reads these capabilities; the modules that build them arrive with provisioning.

use crate::planner::Mechanism;

/// What a provider account of `kind` can build. A kind not listed builds nothing.
pub fn capabilities(kind: &str) -> &'static [Mechanism] {
    use Mechanism as M;
    match kind {
        // The sandbox simulates a cloud, so demos plan like the real thing.
        "aws" | "sandbox" => &[
            M::TransitGateway,
            M::VpcPeering,
            M::InterRegionPeering,
            M::SiteToSiteVpn,
            M::SecurityGroupRule,
        ],
        "linux" => &[M::Wireguard, M::NftablesRule],
        "proxy" => &[M::ProxyRoute],
        "dns" => &[M::DnsRecord],
        _ => &[],
    }
}

/// Kinds whose accounts hold networks (the others serve them: proxies, DNS).
pub fn holds_networks(kind: &str) -> bool {
    matches!(kind, "aws" | "sandbox" | "linux")
}
