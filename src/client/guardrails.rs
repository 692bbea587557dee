//! The client's guardrail and reachability operations.

use super::*;

impl Client {
    pub async fn guardrails(&self) -> Result<GuardrailsOut, ClientError> {
        self.get("/guardrails").await
    }

    pub async fn guardrail_versions(&self) -> Result<Vec<GuardrailsOut>, ClientError> {
        self.get("/guardrails/versions").await
    }

    pub async fn save_guardrails(
        &self,
        guardrails: &GuardrailsIn,
    ) -> Result<SavedGuardrailsOut, ClientError> {
        self.send(Method::PUT, "/guardrails", Some(guardrails), None)
            .await
    }

    /// Who can reach `to` (from `from`, on `port`): addresses, ranges, network ids or names.
    pub async fn reach(
        &self,
        from: Option<&str>,
        to: &str,
        port: Option<u16>,
    ) -> Result<ReachOut, ClientError> {
        #[derive(Serialize)]
        struct Question<'a> {
            to: &'a str,
            from: Option<&'a str>,
            port: Option<u16>,
        }
        let none = PageRequest {
            limit: None,
            cursor: None,
        };
        let query = serde_urlencoded_query(&Question { to, from, port }, &none);
        self.get(&format!("/reach?{query}")).await
    }
}
