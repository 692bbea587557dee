//! One integration-test binary (each extra one costs a link): real PostgreSQL,
//! real HTTP, real SMTP sink, real browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

mod access;
mod address_plan;
mod browser;
mod built_networks;
mod changes;
mod cli;
mod client;
mod config;
mod connection_pages;
mod connections;
mod directory;
mod dns;
mod email;
mod errors;
mod forms;
mod guardrails;
mod health;
mod helpers;
mod idempotency;
mod linux;
mod monitoring;
mod moto;
mod networks;
mod pages;
mod processes;
mod providers;
mod provisioning;
mod proxy;
mod reach;
mod renewals;
mod signin;
mod text;
