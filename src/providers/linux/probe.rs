//! Proof that an approved flow passes, not only that it is configured: a TCP
//! connection attempted from inside the source namespace to the first
//! address of the destination's range on the first approved port. An answer
//! (the connection accepted, or refused by the far end) proves the path;
//! silence for `PROBE_WAIT` seconds proves something drops it.

use std::net::IpAddr;

use super::*;

/// How long a probe waits for an answer.
const PROBE_WAIT: &str = "3";

/// What a probe found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// The far end answered: "accepted" or "refused".
    Answered(&'static str),
    /// No answer within the wait.
    Silent,
    /// The attempt could not be made or failed otherwise, in the system's words.
    Failed(String),
}

/// The probe's output read: its last line is `exit=<code>` of the attempt.
pub(super) fn outcome(out: &str) -> Probe {
    let code = out
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("exit="))
        .unwrap_or("");
    match code {
        "0" => Probe::Answered("accepted"),
        "124" => Probe::Silent,
        _ if out.contains("refused") => Probe::Answered("refused"),
        _ => Probe::Failed(
            out.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("exit="))
                .unwrap_or("the probe failed")
                .to_owned(),
        ),
    }
}

/// Where a connection's approved flow is probed.
pub(super) struct Target {
    pub from: Site,
    pub address: IpAddr,
    pub port: u16,
}

impl Linux {
    /// The flows a WireGuard link's items approve, as probes: for each end
    /// whose firewall opens a TCP port (a link opens both ways), from the other
    /// end to the first address of this end's range, on the first port opened.
    /// None when the connection is no such link or opens every port.
    pub(super) fn probe_targets(&self, items: &[Item]) -> Vec<Target> {
        items
            .iter()
            .filter_map(|rule| {
                let Build::FirewallRule {
                    network,
                    protocol,
                    ports,
                    ..
                } = &rule.build
                else {
                    return None;
                };
                if !matches!(protocol.as_str(), "tcp" | "any") {
                    return None;
                }
                let destination = network.id.as_deref()?;
                let port = parse_ports(ports).ok()?.first()?.from;
                let source = items.iter().find(|i| {
                    matches!(i.build, Build::WireguardInterface { .. })
                        && i.build.network().and_then(|n| n.id.as_deref()) != Some(destination)
                })?;
                let Build::WireguardInterface { peer_prefixes, .. } = &source.build else {
                    return None;
                };
                Some(Target {
                    from: self.site(source).ok()?,
                    address: peer_prefixes.first()?.hosts().next()?,
                    port,
                })
            })
            .collect()
    }

    /// Attempts the connection from inside the source namespace.
    pub(super) async fn probe(&self, t: &Target) -> Result<Probe, ProviderError> {
        let line = format!(
            "timeout {PROBE_WAIT} bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$0\" \"$1\" 2>&1; echo \"exit=$?\""
        );
        let (address, port) = (t.address.to_string(), t.port.to_string());
        let out = t
            .from
            .exec(&["bash", "-c", &line, &address, &port], None)
            .await?;
        Ok(outcome(&out))
    }

    /// Probes every connection whose configuration matches, each of its
    /// flows: answers are recorded as verified, silence or a failed attempt is
    /// a difference.
    pub(super) async fn prove(&self, wanted: &[Wanted], seen: &mut [Seen]) {
        let matching = super::super::matching(wanted, seen);
        let proved: Vec<usize> = matching.iter().map(|(n, _)| *n).collect();
        let probes = matching
            .into_iter()
            .map(|(n, w)| (n, self.probe_targets(&w.items)))
            .flat_map(|(n, targets)| {
                targets
                    .into_iter()
                    .map(move |t| async move { (n, self.probe(&t).await, t) })
            });
        for (n, result, t) in futures::future::join_all(probes).await {
            let what = format!("a TCP probe from {} to {}:{}", t.from, t.address, t.port);
            match result {
                Ok(Probe::Answered(how)) => {
                    seen[n].verified.push(format!("{what} was {how} at the far end"));
                }
                Ok(Probe::Silent) => seen[n].differences.push(format!(
                    "the approved traffic does not pass: {what} got no answer within {PROBE_WAIT} s (something drops it)"
                )),
                Ok(Probe::Failed(why)) => seen[n]
                    .differences
                    .push(format!("the approved traffic does not pass: {what} failed: {why}")),
                // The probe could not be run at all: nothing is known of the path.
                Err(e) => tracing::warn!(error = %e, "{what} could not be made"),
            }
        }
        // Verified means every flow answered.
        super::super::keep_whole_proofs(seen, &proved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_proves_the_path_and_silence_proves_it_blocked() {
        assert_eq!(outcome("exit=0\n"), Probe::Answered("accepted"));
        assert_eq!(
            outcome(
                "bash: connect: Connection refused\nbash: line 1: /dev/tcp/10.62.0.1/22: Connection refused\nexit=1\n"
            ),
            Probe::Answered("refused")
        );
        assert_eq!(outcome("exit=124\n"), Probe::Silent);
        assert_eq!(
            outcome("bash: connect: Network is unreachable\nexit=1\n"),
            Probe::Failed("bash: connect: Network is unreachable".into())
        );
    }
}
