//! OpenID Connect sign-in: authorization code flow with PKCE (S256), `state` and
//! `nonce`; the ID token is verified (signature, issuer, audience, expiry, nonce).
//! Discovery happens on first use and is cached, so the portal starts (and says
//! what is wrong) even while the identity provider is unreachable.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, UserInfoClaims, reqwest,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use url::Url;

use crate::config::OidcSettings;
use crate::error::Error;

/// How long discovered metadata (endpoints, signing keys) is trusted.
const METADATA_TTL: Duration = Duration::from_secs(3600);

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the provider said about the person, before it becomes a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub name: String,
    pub groups: Option<Vec<String>>,
}

/// Extra claims from userinfo, kept as they come (the groups claim's name is configurable).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ExtraClaims(HashMap<String, serde_json::Value>);
impl AdditionalClaims for ExtraClaims {}

struct Discovered {
    metadata: CoreProviderMetadata,
    end_session: Option<Url>,
    at: Instant,
}

pub struct Oidc {
    settings: OidcSettings,
    redirect: RedirectUrl,
    http: reqwest::Client,
    discovered: RwLock<Option<Discovered>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.settings.issuer.as_str())
            .finish()
    }
}

#[derive(Deserialize)]
struct EndSession {
    end_session_endpoint: Option<Url>,
}

impl Oidc {
    pub fn new(settings: OidcSettings, base_url: &Url) -> Result<Self, Error> {
        let redirect = format!("{}/auth/callback", base_url.as_str().trim_end_matches('/'));
        let redirect = RedirectUrl::new(redirect).map_err(Error::internal)?;
        let http = reqwest::ClientBuilder::new()
            // Following redirects here would open the door to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            settings,
            redirect,
            http,
            discovered: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        self.settings.issuer.as_str()
    }

    async fn discovered(&self) -> Result<(CoreProviderMetadata, Option<Url>), Error> {
        if let Some(d) = &*self.discovered.read().await
            && d.at.elapsed() < METADATA_TTL
        {
            return Ok((d.metadata.clone(), d.end_session.clone()));
        }
        let issuer = IssuerUrl::new(
            self.settings
                .issuer
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        )
        .map_err(Error::internal)?;
        let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, issuer = issuer.as_str(), "OIDC discovery failed");
                Error::Unavailable(
                    "the identity provider cannot be reached; try again in a moment".into(),
                )
            })?;
        // The end-session endpoint is not part of the core metadata type.
        let end_session = match self
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                issuer.as_str()
            ))
            .send()
            .await
        {
            Ok(res) => res
                .bytes()
                .await
                .ok()
                .and_then(|body| serde_json::from_slice::<EndSession>(&body).ok())
                .and_then(|e| e.end_session_endpoint),
            Err(_) => None,
        };
        *self.discovered.write().await = Some(Discovered {
            metadata: metadata.clone(),
            end_session: end_session.clone(),
            at: Instant::now(),
        });
        Ok((metadata, end_session))
    }

    fn client(&self, metadata: CoreProviderMetadata) -> Client {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Where to send the browser to sign in.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Url, Error> {
        let (metadata, _) = self.discovered().await?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_owned(),
        ));
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let client = self.client(metadata);
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.set_pkce_challenge(challenge).url();
        Ok(url)
    }

    /// Exchanges the code, verifies the ID token and reads who signed in.
    pub async fn finish(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Claims, Error> {
        let refused = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "sign-in refused: {what}");
            Error::BadRequest(format!("Sign-in failed: {what}. Please sign in again."))
        };
        let (metadata, _) = self.discovered().await?;
        let client = self.client(metadata);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| refused("the provider has no token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| refused("the identity provider did not accept the sign-in code", &e))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| refused("no ID token came back", &"missing id_token"))?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| refused("the ID token could not be verified", &e))?;

        let userinfo: Option<UserInfoClaims<ExtraClaims, CoreGenderClaim>> = match client.user_info(
            tokens.access_token().to_owned(),
            Some(claims.subject().clone()),
        ) {
            Ok(request) => request.request_async(&self.http).await.ok(),
            Err(_) => None,
        };

        let email = claims
            .email()
            .map(|e| e.to_string())
            .or_else(|| {
                userinfo
                    .as_ref()
                    .and_then(|u| u.email().map(|e| e.to_string()))
            })
            .ok_or_else(|| {
                refused(
                    "the identity provider sent no email address",
                    &"no email claim",
                )
            })?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .or_else(|| {
                userinfo
                    .as_ref()
                    .and_then(|u| u.name().and_then(|n| n.get(None)).map(|n| n.to_string()))
            })
            .or_else(|| claims.preferred_username().map(|u| u.to_string()))
            .unwrap_or_else(|| email.clone());

        // The verified ID token's own groups claim wins; else userinfo's.
        let claim = &self.settings.groups_claim;
        let groups = id_token_claim(&id_token.to_string(), claim)
            .or_else(|| {
                userinfo
                    .as_ref()
                    .and_then(|u| u.additional_claims().0.get(claim).cloned())
            })
            .map(|value| groups_from_value(&value));

        Ok(Claims {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email,
            name,
            groups,
        })
    }

    /// The provider's end-session URL, when it has one.
    pub async fn end_session_url(&self, post_logout: &str) -> Option<Url> {
        let (_, end_session) = self.discovered().await.ok()?;
        let mut url = end_session?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("post_logout_redirect_uri", post_logout);
        Some(url)
    }
}

/// One claim from a JWT's payload. Only called on a token whose signature was verified.
fn id_token_claim(jwt: &str, claim: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let mut map: HashMap<String, serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
    map.remove(claim)
}

/// Groups as a JSON array of strings, or one string of names separated by spaces or commas.
fn groups_from_value(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        serde_json::Value::String(s) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_come_as_arrays_or_strings() {
        assert_eq!(
            groups_from_value(&json!(["a", "b:lead", 3])),
            vec!["a", "b:lead"]
        );
        assert_eq!(groups_from_value(&json!("a, b c")), vec!["a", "b", "c"]);
        assert!(groups_from_value(&json!({"a": 1})).is_empty());
    }

    #[test]
    fn reads_a_claim_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"x","groups":["payments"]}"#);
        let jwt = format!("h.{payload}.s");
        assert_eq!(id_token_claim(&jwt, "groups"), Some(json!(["payments"])));
        assert_eq!(id_token_claim(&jwt, "roles"), None);
        assert_eq!(id_token_claim("garbage", "groups"), None);
    }
}
