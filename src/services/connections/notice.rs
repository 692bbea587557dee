//! Who hears what about a connection, by email, as their preferences allow.

use super::*;

/// Why someone gets an email about a connection.
pub(in crate::services) enum Notice {
    ApprovalNeeded,
    Approved,
    Rejected(String),
    Expiring,
    /// Someone asks to keep it until then (in words): a lead decides.
    RenewalAsked {
        asked_by: String,
        until: String,
    },
    /// A lead decided a renewal: approved (until then) or not, and why.
    RenewalDecided {
        approved: bool,
        decided_by: String,
        comment: String,
        until: String,
    },
    Expired,
    Active,
    Failed(String),
    Removed,
}

pub(in crate::services) async fn notify(
    ctx: &Context,
    tx: &mut PgConnection,
    to: &str,
    name: &str,
    notice: Notice,
    c: &Connection,
    plan: &Plan,
) -> Result<()> {
    let Ok(to) = EmailAddress::parse(to) else {
        tracing::warn!(connection = %c.id, "not emailing an unusable address");
        return Ok(());
    };
    let topic = match notice {
        Notice::ApprovalNeeded | Notice::RenewalAsked { .. } => Topic::Approvals,
        Notice::Approved
        | Notice::Rejected(_)
        | Notice::Expiring
        | Notice::Expired
        | Notice::RenewalDecided { .. } => Topic::Decisions,
        Notice::Active | Notice::Failed(_) | Notice::Removed => Topic::Provisioning,
    };
    if !store::notifications::wants_email(&mut *tx, to.as_str(), topic.as_str()).await? {
        return Ok(());
    }
    let about = messages::About {
        summary: plan.summary.clone(),
        mechanism: plan.mechanism.to_string(),
        kind: c.kind.label().to_owned(),
        requester_name: c.requester_name.clone(),
        requester_email: c.requester_email.clone(),
        reason: c.reason.clone(),
        url: ctx.settings.absolute_url(&format!("/connections/{}", c.id)),
    };
    let name = name.to_owned();
    let expires_at = c
        .expires_at
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let renew_url = ctx
        .settings
        .absolute_url(&format!("/connections/{}/renew", c.id));
    let message = match notice {
        Notice::ApprovalNeeded => messages::ApprovalNeeded { name, about }.compose(),
        Notice::Approved => messages::Approved { name, about }.compose(),
        Notice::Rejected(comment) => messages::Rejected {
            name,
            about,
            comment,
        }
        .compose(),
        Notice::Expiring => messages::Expiring {
            name,
            about,
            expires_at,
            renew_url,
        }
        .compose(),
        Notice::RenewalAsked { asked_by, until } => messages::RenewalAsked {
            name,
            about,
            asked_by,
            expires_at,
            until,
            decide_url: renew_url,
        }
        .compose(),
        Notice::RenewalDecided {
            approved,
            decided_by,
            comment,
            until,
        } => messages::RenewalDecided {
            name,
            about,
            approved,
            decided_by,
            comment,
            expires_at,
            until,
        }
        .compose(),
        Notice::Expired => messages::Expired { name, about }.compose(),
        Notice::Active => messages::Active { name, about }.compose(),
        Notice::Failed(why) => messages::Failed { name, about, why }.compose(),
        Notice::Removed => messages::Removed { name, about }.compose(),
    }
    .map_err(|e| Error::because("composing an email", e))?;
    mail::queue_message(tx, to, message).await
}
