//! Random tokens, their stored hashes, and values derived from the server key.
//! Only hashes of session ids and API tokens reach the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Prefix of personal API tokens, so secret scanners and people recognize them.
pub const API_TOKEN_PREFIX: &str = "sbp_";

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    #[allow(
        clippy::expect_used,
        reason = "the OS random source failing is not something to carry on from"
    )]
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new API token: (the secret shown once, the hash to store, a display prefix).
pub fn new_api_token() -> (String, Vec<u8>, String) {
    let secret = format!("{API_TOKEN_PREFIX}{}", random_token());
    let hash = hash(&secret);
    let prefix = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
    (secret, hash, prefix)
}

/// The server's key for values that must not be forged: CSRF tokens and PKCE
/// verifiers are derived from it, so neither is stored anywhere.
#[derive(Clone)]
pub struct ServerKey(Vec<u8>);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

impl ServerKey {
    pub fn new(material: &[u8]) -> Self {
        Self(material.to_vec())
    }

    /// A key of this process only (development: sessions end on restart).
    pub fn ephemeral() -> Self {
        Self(random_token().into_bytes())
    }

    fn mac(&self, purpose: &str, parts: &[&[u8]]) -> String {
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The CSRF token of one session: forms and htmx requests must send it back.
    pub fn csrf_token(&self, session_hash: &[u8]) -> String {
        self.mac("csrf", &[session_hash])
    }

    /// The PKCE verifier of one sign-in attempt (43 characters, RFC 7636).
    pub fn pkce_verifier(&self, session_hash: &[u8], state: &str) -> String {
        self.mac("pkce", &[session_hash, state.as_bytes()])
    }
}

/// Compares without leaking, through timing, how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, hash_a, prefix) = new_api_token();
        let (b, _, _) = new_api_token();
        assert_ne!(a, b);
        assert!(a.starts_with("sbp_") && a.len() == 4 + 43);
        assert_eq!(hash(&a), hash_a);
        assert!(a.starts_with(&prefix) && prefix.len() == 10);
    }

    #[test]
    fn derived_values_depend_on_key_and_input() {
        let k1 = ServerKey::new(b"one");
        let k2 = ServerKey::new(b"two");
        assert_eq!(k1.csrf_token(b"s"), k1.csrf_token(b"s"));
        assert_ne!(k1.csrf_token(b"s"), k2.csrf_token(b"s"));
        assert_ne!(k1.csrf_token(b"s"), k1.csrf_token(b"t"));
        let verifier = k1.pkce_verifier(b"s", "state");
        assert_eq!(verifier.len(), 43);
        assert_ne!(verifier, k1.pkce_verifier(b"s", "other"));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
