//! The `Idempotency-Key` header of creating requests.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::error::Error;
use crate::services::idempotency::IdempotencyKey;

/// The key a creating request was sent with, if any.
pub(super) struct Key(pub Option<IdempotencyKey>);

impl Key {
    pub(super) fn get(&self) -> Option<&IdempotencyKey> {
        self.0.as_ref()
    }
}

impl FromRequest for Key {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = match req.headers().get(IdempotencyKey::HEADER) {
            None => Ok(Key(None)),
            Some(value) => value
                .to_str()
                .map_err(|_| Error::invalid(IdempotencyKey::HEADER, "must be visible ASCII"))
                .and_then(IdempotencyKey::parse)
                .map(|k| Key(Some(k))),
        };
        ready(key.map_err(Into::into))
    }
}
