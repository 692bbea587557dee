//! The client's connection operations: requests, decisions, drift, repair,
//! approvals and the status board.

use super::*;

impl Client {
    pub async fn list_connections(
        &self,
        filter: &ConnectionQuery,
        page: &PageRequest,
    ) -> Result<Page<ConnectionOut>, ClientError> {
        self.page("/connections", filter, page).await
    }

    /// Every page of the list, followed to the end.
    pub async fn all_connections(
        &self,
        filter: &ConnectionQuery,
    ) -> Result<Vec<ConnectionOut>, ClientError> {
        self.all("/connections", filter).await
    }

    pub async fn create_connection(
        &self,
        request: &ConnectionRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ConnectionOut, ClientError> {
        self.create("/connections", request, idempotency_key).await
    }

    /// The plan a request would get, saving nothing.
    pub async fn preview_connection(
        &self,
        request: &ConnectionRequest,
    ) -> Result<Plan, ClientError> {
        self.send(Method::POST, "/connections/plan", Some(request), None)
            .await
    }

    pub async fn get_connection(&self, id: Uuid) -> Result<ConnectionOut, ClientError> {
        self.get(&format!("/connections/{id}")).await
    }

    pub async fn connection_plan(&self, id: Uuid) -> Result<PlanOut, ClientError> {
        self.get(&format!("/connections/{id}/plan")).await
    }

    pub async fn connection_events(&self, id: Uuid) -> Result<Vec<EventOut>, ClientError> {
        self.get(&format!("/connections/{id}/events")).await
    }

    pub async fn approve(
        &self,
        id: Uuid,
        decision: &DecisionIn,
    ) -> Result<ConnectionOut, ClientError> {
        let path = format!("/connections/{id}/approve");
        self.send(Method::POST, &path, Some(decision), None).await
    }

    pub async fn reject(
        &self,
        id: Uuid,
        decision: &DecisionIn,
    ) -> Result<ConnectionOut, ClientError> {
        let path = format!("/connections/{id}/reject");
        self.send(Method::POST, &path, Some(decision), None).await
    }

    pub async fn cancel(&self, id: Uuid) -> Result<ConnectionOut, ClientError> {
        let path = format!("/connections/{id}/cancel");
        self.send(Method::POST, &path, None::<&Nothing>, None).await
    }

    /// Starts removing what it built; the answer is the connection as it is now.
    pub async fn remove_connection(&self, id: Uuid) -> Result<ConnectionOut, ClientError> {
        self.send(
            Method::DELETE,
            &format!("/connections/{id}"),
            None::<&Nothing>,
            None,
        )
        .await
    }

    pub async fn retry(&self, id: Uuid) -> Result<ConnectionOut, ClientError> {
        let path = format!("/connections/{id}/retry");
        self.send(Method::POST, &path, None::<&Nothing>, None).await
    }

    pub async fn drift(&self, id: Uuid) -> Result<Vec<DriftOut>, ClientError> {
        self.get(&format!("/connections/{id}/drift")).await
    }

    pub async fn repair(&self, id: Uuid) -> Result<ConnectionOut, ClientError> {
        let path = format!("/connections/{id}/repair");
        self.send(Method::POST, &path, None::<&Nothing>, None).await
    }

    pub async fn set_repair_mode(
        &self,
        id: Uuid,
        mode: &RepairModeIn,
    ) -> Result<ConnectionOut, ClientError> {
        let path = format!("/connections/{id}/repair-mode");
        self.send(Method::PUT, &path, Some(mode), None).await
    }

    /// Requests waiting for my decision, oldest first.
    pub async fn list_approvals(
        &self,
        page: &PageRequest,
    ) -> Result<Page<ConnectionOut>, ClientError> {
        self.page("/approvals", &Nothing {}, page).await
    }

    /// Every page of `list_approvals`.
    pub async fn all_approvals(&self) -> Result<Vec<ConnectionOut>, ClientError> {
        self.all("/approvals", &Nothing {}).await
    }

    pub async fn status(&self) -> Result<StatusOut, ClientError> {
        self.get("/status").await
    }
}
