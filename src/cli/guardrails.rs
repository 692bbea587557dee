//! `switchboard guardrails …`: the rules every request is checked against.

use std::path::PathBuf;

use clap::Subcommand;

use super::output::{self, table};
use super::{Client, Error, typed_answer};
use crate::client::GuardrailsIn;

#[derive(Subcommand)]
pub enum GuardrailsCommand {
    /// The guardrails in force, as the JSON rule set `save` takes
    Show,
    /// Every saved version, newest first
    Versions,
    /// Save a rule set from a JSON file as a new version (admins); refused
    /// while its own tests fail
    Save {
        /// The rule set: {"rules": [...], "tests": [...]} (see the README)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The version you edited (see `show`); refused if another was saved since
        #[arg(long, value_name = "VERSION")]
        based_on: i32,
        /// Why it changes, kept with the version
        #[arg(long, default_value = "")]
        comment: String,
    },
}

pub(super) async fn run(client: &Client, command: GuardrailsCommand) -> Result<String, Error> {
    match command {
        GuardrailsCommand::Show => {
            let g = client.api.guardrails().await?;
            let rules = serde_json::to_string_pretty(&g.rule_set).unwrap_or_default();
            typed_answer(client, &g, format!("version {}\n{rules}\n", g.version))
        }
        GuardrailsCommand::Versions => {
            let all = client.api.guardrail_versions().await?;
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|g| {
                    vec![
                        g.version.to_string(),
                        g.saved_at.as_ref().map(output::time).unwrap_or_default(),
                        g.saved_by.clone().unwrap_or_default(),
                        g.comment.clone(),
                    ]
                })
                .collect();
            typed_answer(
                client,
                &all,
                table(&["VERSION", "SAVED", "BY", "COMMENT"], &rows),
            )
        }
        GuardrailsCommand::Save {
            file,
            based_on,
            comment,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", file.display())))?;
            let rule_set: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{} is not JSON: {e}", file.display())))?;
            let saved = client
                .api
                .save_guardrails(&GuardrailsIn {
                    rule_set,
                    based_on_version: based_on,
                    comment,
                })
                .await?;
            let mut out = format!("saved as version {}\n", saved.guardrails.version);
            for v in &saved.violations {
                for verdict in &v.verdicts {
                    out.push_str(&format!(
                        "connection {} now breaks it: {}\n",
                        v.connection_id, verdict.reason
                    ));
                }
            }
            typed_answer(client, &saved, out)
        }
    }
}
