//! Switchboard: self-service network connectivity.
//!
//! The layout follows `ARCHITECTURE.md`: handlers (`web`, `jobs`) call
//! `services`, which use `store`, `notify` and `domain`; imports flow one way.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod embedded_postgres;
pub mod error;
pub mod ipam;
pub mod jobs;
pub mod notify;
pub mod planner;
pub mod providers;
pub mod run;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod web;

pub use error::{Error, Result};
