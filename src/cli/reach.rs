//! `switchboard reach FROM TO[:PORT]`: which open connections let this traffic through.

use clap::Args;

use super::output::table;
use super::{Client, Error, typed_answer};

#[derive(Args)]
pub struct ReachArgs {
    /// Where traffic comes from: an address, a range, a network's id or name, or `any`
    from: String,
    /// Where it goes, the same way, optionally with `:PORT` (10.2.0.0/16:443, search-prod:5432)
    to: String,
}

/// `text` and its port, when it ends in `:PORT` and is not itself an address
/// or range (IPv6 addresses hold colons).
fn split_port(text: &str) -> Result<(&str, Option<u16>), Error> {
    let whole = text.parse::<std::net::IpAddr>().is_ok() || text.parse::<ipnet::IpNet>().is_ok();
    match text.rsplit_once(':') {
        Some((place, port))
            if !whole && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::Usage(format!("{port} is not a port from 1 to 65535")))?;
            Ok((place, Some(port)))
        }
        _ => Ok((text, None)),
    }
}

pub(super) async fn run(client: &Client, args: ReachArgs) -> Result<String, Error> {
    let (to, port) = split_port(&args.to)?;
    let from = Some(args.from.as_str()).filter(|f| !f.eq_ignore_ascii_case("any"));
    let answer = client.api.reach(from, to, port).await?;
    let rows: Vec<Vec<String>> = answer
        .flows
        .iter()
        .map(|f| {
            vec![
                f.connection_id.to_string(),
                format!("{} ({})", f.from, f.from_prefixes.join(", ")),
                format!("{} ({})", f.to, f.to_prefixes.join(", ")),
                f.protocol.clone(),
                if f.ports.is_empty() {
                    "all".into()
                } else {
                    f.ports.clone()
                },
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        "no open connection lets this through\n".to_owned()
    } else {
        table(&["CONNECTION", "FROM", "TO", "PROTOCOL", "PORTS"], &rows)
    };
    typed_answer(client, &answer, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_split_off_names_and_ranges_but_not_addresses() {
        assert_eq!(
            split_port("10.2.0.0/16:443").unwrap(),
            ("10.2.0.0/16", Some(443))
        );
        assert_eq!(
            split_port("search-prod:5432").unwrap(),
            ("search-prod", Some(5432))
        );
        assert_eq!(split_port("10.2.0.1").unwrap(), ("10.2.0.1", None));
        assert_eq!(split_port("fd00::1").unwrap(), ("fd00::1", None));
        assert_eq!(split_port("search-prod").unwrap(), ("search-prod", None));
        assert!(split_port("search-prod:70000").is_err());
    }
}
