//! Outgoing messages: email through SMTP, or the development outbox.

pub mod mailer;

pub use mailer::{DeliveryError, Mailer};
