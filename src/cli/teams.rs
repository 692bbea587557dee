//! `switchboard team …`: teams, their members and their webhook.

use clap::Subcommand;
use uuid::Uuid;

use super::output::{fields, table};
use super::{Client, Error, typed_answer};
use crate::client::{MemberIn, NewTeamIn, WebhookIo};

#[derive(Subcommand)]
pub enum TeamCommand {
    /// Every team, with how many members and leads it has
    List,
    /// One team and its members
    Show { slug: String },
    /// A new team, without members (admins)
    Create {
        /// Its short name in URLs: lowercase letters, digits and hyphens
        slug: String,
        /// What people call it
        #[arg(long)]
        name: String,
    },
    /// Add people to the team or change their role (its leads, admins)
    #[command(subcommand)]
    Member(MemberCommand),
    /// Where the team's notifications are also posted (its leads, admins)
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Add a person (who has signed in once) with a role, or change a member's role
    Set {
        slug: String,
        /// Their email address
        email: String,
        /// member or lead
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Remove a member (by email address or user id)
    Remove { slug: String, member: String },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// The team's webhook
    Show { slug: String },
    /// Post the team's notifications to a URL, signed with a secret the workers read
    Set {
        slug: String,
        /// An https:// URL outside the portal's own networks
        #[arg(long)]
        url: String,
        /// Where the workers read the signing secret: env:NAME or file:/path
        #[arg(long, value_name = "REF")]
        secret_ref: String,
    },
    /// Stop posting the team's notifications
    Delete { slug: String },
}

pub(super) async fn run(client: &Client, command: TeamCommand) -> Result<String, Error> {
    match command {
        TeamCommand::List => {
            let teams = client.api.all_teams().await?;
            let rows: Vec<Vec<String>> = teams
                .iter()
                .map(|t| {
                    vec![
                        t.slug.clone(),
                        t.name.clone(),
                        t.members.to_string(),
                        t.leads.to_string(),
                    ]
                })
                .collect();
            typed_answer(
                client,
                &teams,
                table(&["SLUG", "NAME", "MEMBERS", "LEADS"], &rows),
            )
        }
        TeamCommand::Show { slug } => {
            let team = client.api.get_team(&slug).await?;
            let rows: Vec<Vec<String>> = team
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.user_id.to_string(),
                        m.name.clone(),
                        m.email.clone(),
                        m.role.clone(),
                        m.source.clone(),
                    ]
                })
                .collect();
            let text = fields(&[("team", team.slug.clone()), ("name", team.name.clone())])
                + "\n"
                + &table(&["USER ID", "NAME", "EMAIL", "ROLE", "FROM"], &rows);
            typed_answer(client, &team, text)
        }
        TeamCommand::Create { slug, name } => {
            let team = client.api.create_team(&NewTeamIn { slug, name }).await?;
            let text = format!(
                "Created team {} ({}); add people with `switchboard team member set {} EMAIL --role lead`\n",
                team.slug, team.name, team.slug
            );
            typed_answer(client, &team, text)
        }
        TeamCommand::Member(MemberCommand::Set { slug, email, role }) => {
            let member = client
                .api
                .set_team_member(&slug, &MemberIn { email, role })
                .await?;
            let text = format!(
                "{} <{}> is a {} of {slug}\n",
                member.name, member.email, member.role
            );
            typed_answer(client, &member, text)
        }
        TeamCommand::Member(MemberCommand::Remove { slug, member }) => {
            let user = match Uuid::parse_str(&member) {
                Ok(id) => id,
                Err(_) => {
                    let team = client.api.get_team(&slug).await?;
                    team.members
                        .iter()
                        .find(|m| m.email.eq_ignore_ascii_case(member.trim()))
                        .map(|m| m.user_id)
                        .ok_or_else(|| {
                            Error::Failed(format!("{member} is not a member of {slug}"))
                        })?
                }
            };
            client.api.remove_team_member(&slug, user).await?;
            Ok(format!("Removed {member} from {slug}\n"))
        }
        TeamCommand::Webhook(WebhookCommand::Show { slug }) => {
            let hook = client.api.team_webhook(&slug).await?;
            let text = fields(&[
                ("url", hook.url.clone()),
                ("secret_ref", hook.secret_ref.clone()),
            ]);
            typed_answer(client, &hook, text)
        }
        TeamCommand::Webhook(WebhookCommand::Set {
            slug,
            url,
            secret_ref,
        }) => {
            let hook = client
                .api
                .set_team_webhook(&slug, &WebhookIo { url, secret_ref })
                .await?;
            let text = format!("{slug}'s notifications are posted to {}\n", hook.url);
            typed_answer(client, &hook, text)
        }
        TeamCommand::Webhook(WebhookCommand::Delete { slug }) => {
            client.api.delete_team_webhook(&slug).await?;
            Ok(format!("{slug}'s notifications are no longer posted\n"))
        }
    }
}
