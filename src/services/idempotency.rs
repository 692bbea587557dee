//! `Idempotency-Key` on creating requests: a retry under the same key (after
//! a lost answer, a timeout, a crash) gets what the first request made instead
//! of a second one. The key is remembered in the transaction that makes the
//! object, so no crash can separate them; keys are forgotten after a day.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context};
use crate::error::{Error, Result};
use crate::store;

/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;

/// A key a client sent, checked: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &'static str = "Idempotency-Key";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(text: &str) -> Result<Self> {
        let ok = (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::invalid(
                Self::HEADER,
                "must be 1 to 255 visible ASCII characters, e.g. a UUID",
            ))
        }
    }
}

/// One creating request, as far as its key is concerned.
pub struct Once<'a> {
    caller: &'a Caller,
    key: Option<&'a IdempotencyKey>,
    operation: &'static str,
    fingerprint: String,
}

impl<'a> Once<'a> {
    /// `request` is what the server read: the same key with another request is
    /// refused rather than answered with the first one's object.
    pub fn new(
        caller: &'a Caller,
        key: Option<&'a IdempotencyKey>,
        operation: &'static str,
        request: &impl Serialize,
    ) -> Result<Self> {
        let body = serde_json::to_vec(request).map_err(Error::internal)?;
        let fingerprint = format!("{:x}", Sha256::digest(&body));
        Ok(Self {
            caller,
            key,
            operation,
            fingerprint,
        })
    }

    /// What an earlier request under this key made, if one did.
    pub async fn earlier(&self, ctx: &Context) -> Result<Option<Uuid>> {
        let Some(key) = self.key else {
            return Ok(None);
        };
        let Some(found) =
            store::idempotency::find(&ctx.pool, self.caller.actor.user_id, &key.0).await?
        else {
            return Ok(None);
        };
        if found.operation != self.operation || found.fingerprint != self.fingerprint {
            return Err(Error::Conflict(format!(
                "{}: this key was used for another request within the last {RETENTION_HOURS} hours; use a new key for a new request",
                IdempotencyKey::HEADER
            )));
        }
        Ok(Some(found.object_id))
    }

    /// Remembers, in the transaction that made it, what this request made.
    pub async fn remember(&self, conn: &mut PgConnection, object_id: Uuid) -> Result<()> {
        let Some(key) = self.key else {
            return Ok(());
        };
        let first = store::idempotency::insert(
            conn,
            self.caller.actor.user_id,
            &key.0,
            self.operation,
            &self.fingerprint,
            object_id,
        )
        .await?;
        if first {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "{}: another request with this key was being handled at the same time; retry to get its answer",
                IdempotencyKey::HEADER
            )))
        }
    }
}
