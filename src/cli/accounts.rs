//! `switchboard token …`, `notifications …`, `user …` and `account …`: people,
//! their tokens and mail, and the provider accounts networks live in.

use clap::{Subcommand, ValueEnum};
use uuid::Uuid;

use super::output::{self, fields, table};
use super::{Client, Error, typed_answer};
use crate::client::{NewAccountIn, NewTokenIn, PreferencesIo};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Your API tokens (never their secrets)
    List,
    /// A new API token for you: the secret is printed this once
    Create {
        /// What it is for, e.g. "ci-pipeline"
        name: String,
        /// Days until it expires, 1 to 366 [default: never]
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<i64>,
    },
    /// Revoke one of your tokens: it stops working at once
    Revoke { id: Uuid },
}

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// Which emails you get
    Show,
    /// Turn kinds of email on or off; kinds left out stay as they are
    Set {
        /// Requests waiting for your team's approval
        #[arg(long)]
        approvals: Option<OnOff>,
        /// Decisions on your requests, and expiry
        #[arg(long)]
        decisions: Option<OnOff>,
        /// Your connections becoming active, failing, being removed
        #[arg(long)]
        provisioning: Option<OnOff>,
        /// Connections you own drifting from what was approved, and recovering
        #[arg(long)]
        drift: Option<OnOff>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Everyone who has signed in (admins)
    List,
    /// End every browser session of a user (admins; anyone for themselves); their tokens keep working
    RevokeSessions { id: Uuid },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// The provider accounts networks live in, and why one cannot be used now
    List,
    /// Register a provider account (admins)
    Create {
        /// aws, linux, proxy, dns or sandbox
        #[arg(long)]
        kind: String,
        /// Its name, e.g. aws-prod
        #[arg(long)]
        name: String,
        /// A region it serves (repeat for several)
        #[arg(long = "region")]
        regions: Vec<String>,
        /// Its settings as a JSON object, e.g. '{"endpoint":"http://127.0.0.1:5000"}'
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
        /// Where the workers read its credentials: env:NAME or file:/path (never the credentials)
        #[arg(long, value_name = "REF")]
        credentials_ref: Option<String>,
    },
}

fn yes_no(on: Option<bool>) -> String {
    match on {
        Some(true) => "on".into(),
        Some(false) => "off".into(),
        None => "-".into(),
    }
}

fn optional_time(at: Option<&chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(|| "-".into(), output::time)
}

pub(super) async fn tokens(client: &Client, command: TokenCommand) -> Result<String, Error> {
    match command {
        TokenCommand::List => {
            let tokens = client.api.all_tokens().await?;
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
                        "expired"
                    } else {
                        "active"
                    };
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        format!("{}…", t.prefix),
                        state.into(),
                        output::time(&t.created_at),
                        optional_time(t.expires_at.as_ref()),
                        optional_time(t.last_used_at.as_ref()),
                    ]
                })
                .collect();
            typed_answer(
                client,
                &tokens,
                table(
                    &[
                        "ID",
                        "NAME",
                        "PREFIX",
                        "STATE",
                        "CREATED",
                        "EXPIRES",
                        "LAST USED",
                    ],
                    &rows,
                ),
            )
        }
        TokenCommand::Create {
            name,
            expires_in_days,
        } => {
            let new = NewTokenIn {
                name,
                expires_in_days,
            };
            let made = client.api.create_token(&new, None).await?;
            let text = fields(&[
                ("token", made.token.clone()),
                ("id", made.info.id.to_string()),
                ("name", made.info.name.clone()),
                ("expires", optional_time(made.info.expires_at.as_ref())),
            ]) + "The token is shown this once: keep it now (e.g. in SWITCHBOARD_TOKEN).\n";
            typed_answer(client, &made, text)
        }
        TokenCommand::Revoke { id } => {
            client.api.revoke_token(id).await?;
            Ok(format!("Revoked token {id}: it no longer works\n"))
        }
    }
}

pub(super) async fn notifications(
    client: &Client,
    command: NotificationsCommand,
) -> Result<String, Error> {
    let preferences = match command {
        NotificationsCommand::Show => client.api.notification_preferences().await?,
        NotificationsCommand::Set {
            approvals,
            decisions,
            provisioning,
            drift,
        } => {
            let on = |v: Option<OnOff>| v.map(|v| matches!(v, OnOff::On));
            let change = PreferencesIo {
                approvals: on(approvals),
                decisions: on(decisions),
                provisioning: on(provisioning),
                drift: on(drift),
            };
            if change.approvals.is_none()
                && change.decisions.is_none()
                && change.provisioning.is_none()
                && change.drift.is_none()
            {
                return Err(Error::Usage(
                    "nothing to change: give --approvals, --decisions, --provisioning or --drift \
                     with on or off"
                        .into(),
                ));
            }
            client.api.set_notification_preferences(&change).await?
        }
    };
    let text = fields(&[
        ("approvals", yes_no(preferences.approvals)),
        ("decisions", yes_no(preferences.decisions)),
        ("provisioning", yes_no(preferences.provisioning)),
        ("drift", yes_no(preferences.drift)),
    ]);
    typed_answer(client, &preferences, text)
}

pub(super) async fn users(client: &Client, command: UserCommand) -> Result<String, Error> {
    match command {
        UserCommand::List => {
            let users = client.api.all_users().await?;
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.id.to_string(),
                        u.name.clone(),
                        u.email.clone(),
                        if u.is_admin { "yes" } else { "no" }.into(),
                        optional_time(u.last_sign_in_at.as_ref()),
                        u.live_sessions.to_string(),
                    ]
                })
                .collect();
            typed_answer(
                client,
                &users,
                table(
                    &["ID", "NAME", "EMAIL", "ADMIN", "LAST SIGN-IN", "SESSIONS"],
                    &rows,
                ),
            )
        }
        UserCommand::RevokeSessions { id } => {
            let ended = client.api.revoke_sessions(id).await?;
            let text = format!(
                "Ended {} browser session(s) of user {id}; their API tokens keep working\n",
                ended.ended
            );
            typed_answer(client, &ended, text)
        }
    }
}

pub(super) async fn provider_accounts(
    client: &Client,
    command: AccountCommand,
) -> Result<String, Error> {
    match command {
        AccountCommand::List => {
            let accounts = client.api.all_provider_accounts().await?;
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.id.to_string(),
                        a.kind.clone(),
                        a.name.clone(),
                        if a.regions.is_empty() {
                            "-".into()
                        } else {
                            a.regions.join(",")
                        },
                        a.problem.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            typed_answer(
                client,
                &accounts,
                table(&["ID", "KIND", "NAME", "REGIONS", "PROBLEM"], &rows),
            )
        }
        AccountCommand::Create {
            kind,
            name,
            regions,
            settings,
            credentials_ref,
        } => {
            let settings = match settings {
                None => serde_json::json!({}),
                Some(text) => match serde_json::from_str(&text) {
                    Ok(value @ serde_json::Value::Object(_)) => value,
                    _ => {
                        return Err(Error::Usage(format!(
                            "--settings: {text:?} is not a JSON object, e.g. '{{\"endpoint\":\"http://127.0.0.1:5000\"}}'"
                        )));
                    }
                },
            };
            let new = NewAccountIn {
                kind,
                name,
                regions,
                settings,
                credentials_ref,
            };
            let a = client.api.create_provider_account(&new).await?;
            let text = fields(&[
                ("created", format!("{} account {}", a.kind, a.name)),
                ("id", a.id.to_string()),
                ("regions", a.regions.join(",")),
            ]);
            typed_answer(client, &a, text)
        }
    }
}
