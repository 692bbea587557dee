//! Use cases: the one place where state changes. Web, API and job handlers all
//! call these, so HTML and JSON never duplicate logic.

pub mod mail;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;

/// What every use case needs: the database and the settings.
#[derive(Clone, Debug)]
pub struct Context {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
}
