//! Posting a team's webhook: its destination checked at each delivery, its
//! secret read from the webhook namespace only, the body signed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Settings;
use crate::domain::jobs::SendWebhook;
use crate::domain::webhook::{self, SecretRef};

/// The signature of a body: `sha256=` and the hex HMAC-SHA256 with the secret.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    #[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Where a webhook URL may be posted to: every address its host resolves to,
/// each checked (an internal one only if an admin allowed it). Checked when the
/// webhook is saved and again at each delivery, since DNS can change; the
/// delivery connects only to the addresses checked.
pub async fn destinations(
    settings: &Settings,
    url: &url::Url,
) -> std::result::Result<Vec<std::net::SocketAddr>, String> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<std::net::SocketAddr> = match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("{host} could not be resolved in time"))?
        .map_err(|_| format!("{host} could not be resolved"))?
        .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    for a in &addresses {
        settings.webhook_allowed_hosts.permits(&host, a.ip())?;
    }
    Ok(addresses)
}

/// Why a delivery did not happen.
#[derive(Debug)]
pub enum Undelivered {
    /// Worth trying again (the receiver is down, a timeout).
    Later(String),
    /// Never allowed as it stands (a destination or a secret refused now).
    Refused(String),
}

/// Reads a webhook's signing secret from where its reference says, within the
/// webhook namespace only (checked again here: the reference was saved earlier).
fn webhook_secret(settings: &Settings, reference: &str) -> std::result::Result<String, String> {
    match SecretRef::parse(reference)? {
        SecretRef::Env(name) => {
            std::env::var(&name).map_err(|_| format!("the environment variable {name} is not set"))
        }
        SecretRef::File(name) => {
            let dir = settings
                .webhook_secret_dir
                .as_ref()
                .ok_or("SWITCHBOARD_WEBHOOK_SECRET_DIR is not set")?;
            let dir = dir
                .canonicalize()
                .map_err(|e| format!("the webhook secrets directory: {e}"))?;
            let path = dir
                .join(&name)
                .canonicalize()
                .map_err(|e| format!("the webhook secret {name}: {e}"))?;
            // A link may not lead out of the directory.
            if !path.starts_with(&dir) {
                return Err(format!(
                    "the webhook secret {name} is outside its directory"
                ));
            }
            std::fs::read_to_string(&path)
                .map(|s| s.trim_end().to_owned())
                .map_err(|e| format!("the webhook secret {name}: {e}"))
        }
    }
}

/// Posts one webhook, to an address checked just now.
pub async fn deliver(
    settings: &Settings,
    job: &SendWebhook,
) -> std::result::Result<(), Undelivered> {
    let secret = webhook_secret(settings, &job.secret_ref).map_err(Undelivered::Refused)?;
    let url =
        webhook::check_url(&job.url, settings.webhook_allow_http).map_err(Undelivered::Refused)?;
    let addresses = destinations(settings, &url).await.map_err(|why| {
        if why.contains("could not be resolved") {
            Undelivered::Later(why)
        } else {
            Undelivered::Refused(why)
        }
    })?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let body = serde_json::to_vec(&job.body).map_err(|e| Undelivered::Refused(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        // The name is resolved once, above, and checked: no second lookup.
        .resolve_to_addrs(&host, &addresses)
        .build()
        .map_err(|e| Undelivered::Later(e.to_string()))?;
    let event = job.body["event"].as_str().unwrap_or("event");
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Switchboard-Event", event)
        .header(
            "X-Switchboard-Signature",
            signature(secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| Undelivered::Later(format!("could not post to the webhook: {e}")))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(Undelivered::Later(format!(
            "the webhook answered {}",
            answer.status()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
