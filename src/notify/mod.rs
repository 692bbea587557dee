//! Outgoing messages: emails (composed in `messages`, sent through SMTP or to
//! the development outbox) and teams' webhooks.

pub mod mailer;
pub mod messages;
pub mod webhook;

pub use mailer::{DeliveryError, Mailer};
