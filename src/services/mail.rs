//! Composing emails and queueing them for delivery.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context};
use crate::auth::policy::Action;
use crate::domain::email::{Email, EmailAddress};
use crate::domain::jobs::SendEmail;
use crate::error::{Error, Result};
use crate::notify::messages::{Compose, Message, TestEmail};
use crate::store;
use crate::store::outbox::OutboxEmail;

/// Queues a test message to `to`, proving the path queue → worker → mail works.
pub async fn send_test_email(ctx: &Context, caller: &Caller, to: &str) -> Result<Email> {
    caller.actor.require(Action::ViewOutbox)?;
    let to = EmailAddress::parse(to).map_err(|reason| Error::invalid("to", reason))?;
    let message = TestEmail {
        portal_url: ctx.settings.absolute_url("/"),
    }
    .compose()
    .map_err(|e| Error::because("composing an email", e))?;
    let email = email(to, message);
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
/// A composed message to `to`, with the id that makes its delivery idempotent.
fn email(to: EmailAddress, message: Message) -> Email {
    Email {
        id: Uuid::new_v4(),
        to,
        subject: message.subject,
        text: message.text,
        html: message.html,
    }
}

/// Queues a composed message to `to`.
pub async fn queue_message(
    conn: &mut PgConnection,
    to: EmailAddress,
    message: Message,
) -> Result<()> {
    queue_email(conn, &email(to, message)).await
}

pub async fn queue_email(conn: &mut PgConnection, email: &Email) -> Result<()> {
    store::queue::enqueue(
        conn,
        &SendEmail {
            email: email.clone(),
        },
    )
    .await
}
