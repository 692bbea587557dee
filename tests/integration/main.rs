//! One integration-test binary (each extra one costs a link): real PostgreSQL,
//! real HTTP, real SMTP sink, real browser.

mod access;
mod address_plan;
mod browser;
mod cli;
mod config;
mod connection_pages;
mod connections;
mod dns;
mod email;
mod errors;
mod health;
mod helpers;
mod linux;
mod monitoring;
mod moto;
mod networks;
mod processes;
mod providers;
mod provisioning;
mod proxy;
mod signin;
