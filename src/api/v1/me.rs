use actix_web::web;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::services::Caller;

/// The caller.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub teams: Vec<MyTeam>,
}

/// One of the caller's teams and their role in it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MyTeam {
    #[schema(example = "payments")]
    pub slug: String,
    #[schema(example = "lead")]
    pub role: String,
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn me(caller: Caller) -> Result<web::Json<Me>, Error> {
    let a = caller.actor;
    Ok(web::Json(Me {
        id: a.user_id,
        email: a.email,
        name: a.name,
        is_admin: a.is_admin,
        teams: a
            .teams
            .into_iter()
            .map(|t| MyTeam {
                slug: t.slug.to_string(),
                role: t.role.to_string(),
            })
            .collect(),
    }))
}
