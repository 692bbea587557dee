//! Pure types and rules: no I/O here, so everything is unit-testable.

pub mod change;
pub mod connection;
pub mod email;
pub mod guardrail;
pub mod jobs;
pub mod network;
pub mod notification;
pub mod page;
pub mod reach;
pub mod renewal;
pub mod team;
pub mod text;
pub mod webhook;
