//! Delivers a rendered [`Email`] over SMTP (lettre) or into the outbox table.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;

use crate::config::Settings;
use crate::domain::email::Email;
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later (server down, greylisting, database blip).
    #[error("temporary delivery failure: {0}")]
    Transient(String),
    /// Will never succeed as is (bad recipient, message refused).
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        pool: PgPool,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds credentials: say only which kind this is.
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Outbox { .. } => f.write_str("Mailer::Outbox"),
        }
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings, pool: &PgPool) -> Result<Self, crate::Error> {
        let Some(url) = &settings.smtp_url else {
            // The outbox only when asked for: never silently instead of SMTP.
            return if settings.outbox {
                Ok(Mailer::Outbox { pool: pool.clone() })
            } else {
                Err(crate::Error::internal(
                    "no SWITCHBOARD_SMTP_URL and the outbox is off (SWITCHBOARD_OUTBOX=1)",
                ))
            };
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            // lettre's message may echo the URL: keep the password out of it.
            .map_err(|_| crate::Error::internal("SWITCHBOARD_SMTP_URL could not be used"))?
            .build();
        let address = settings
            .mail_from
            .as_str()
            .parse()
            .map_err(|e| crate::Error::because("SWITCHBOARD_MAIL_FROM", e))?;
        Ok(Mailer::Smtp {
            transport,
            from: Mailbox::new(Some(settings.mail_from_name.clone()), address),
        })
    }

    pub async fn send(&self, email: &Email) -> Result<(), DeliveryError> {
        match self {
            Mailer::Outbox { pool } => store::outbox::insert(pool, email)
                .await
                .map_err(|e| DeliveryError::Transient(format!("outbox: {e}"))),
            Mailer::Smtp { transport, from } => {
                let message = build_message(from, email)?;
                match transport.send(message).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(e.to_string())),
                    Err(e) => Err(DeliveryError::Transient(e.to_string())),
                }
            }
        }
    }
}

fn build_message(from: &Mailbox, email: &Email) -> Result<Message, DeliveryError> {
    let to = email
        .to
        .as_str()
        .parse::<Mailbox>()
        .map_err(|e| DeliveryError::Permanent(format!("recipient {}: {e}", email.to)))?;
    let domain = from.email.domain().to_owned();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&email.subject)
        // Stable across retries, so a receiver can drop a duplicate.
        .message_id(Some(format!("<{}@{}>", email.id, domain)))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| DeliveryError::Permanent(format!("building the message: {e}")))
}
