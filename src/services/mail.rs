//! Composing emails and queueing them for delivery.

use askama::Template;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context};
use crate::auth::policy::Action;
use crate::domain::email::{Email, EmailAddress};
use crate::domain::jobs::SendEmail;
use crate::error::{Error, Result};
use crate::store;
use crate::store::outbox::OutboxEmail;

#[derive(Template)]
#[template(path = "email/test_email.txt")]
struct TestEmailText<'a> {
    portal_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/test_email.html")]
struct TestEmailHtml<'a> {
    portal_url: &'a str,
}

/// Queues a test message to `to`, proving the path queue → worker → mail works.
pub async fn send_test_email(ctx: &Context, caller: &Caller, to: &str) -> Result<Email> {
    caller.actor.require(Action::ViewOutbox)?;
    let to = EmailAddress::parse(to).map_err(|reason| Error::invalid("to", reason))?;
    let portal_url = ctx.settings.absolute_url("/");
    let email = Email {
        id: Uuid::new_v4(),
        to,
        subject: "Switchboard test email".into(),
        text: TestEmailText {
            portal_url: &portal_url,
        }
        .render()
        .map_err(Error::internal)?,
        html: TestEmailHtml {
            portal_url: &portal_url,
        }
        .render()
        .map_err(Error::internal)?,
    };
    let mut tx = ctx.pool.begin().await?;
    queue_email(&mut tx, &email).await?;
    tx.commit().await?;
    tracing::info!(email_id = %email.id, "test email queued");
    Ok(email)
}

/// The development outbox, newest first.
pub async fn outbox(ctx: &Context, caller: &Caller) -> Result<Vec<OutboxEmail>> {
    caller.actor.require(Action::ViewOutbox)?;
    Ok(store::outbox::latest(&ctx.pool, 100).await?)
}

pub async fn outbox_message(ctx: &Context, caller: &Caller, id: Uuid) -> Result<OutboxEmail> {
    caller.actor.require(Action::ViewOutbox)?;
    store::outbox::find(&ctx.pool, id)
        .await?
        .ok_or_else(|| Error::NotFound("that message".into()))
}

/// Queues an email on the caller's transaction.
pub async fn queue_email(conn: &mut PgConnection, email: &Email) -> Result<()> {
    store::queue::enqueue(
        conn,
        &SendEmail {
            email: email.clone(),
        },
    )
    .await
}
