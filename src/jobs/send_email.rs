use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, RetryAfterError};

use super::retry_delay;
use crate::domain::jobs::SendEmail;
use crate::notify::{DeliveryError, Mailer};

#[tracing::instrument(skip_all, fields(email_id = %job.email.id))]
pub async fn handle(
    job: SendEmail,
    mailer: Data<Mailer>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    match mailer.send(&job.email).await {
        Ok(()) => {
            tracing::info!("email delivered");
            Ok(())
        }
        Err(DeliveryError::Permanent(reason)) => {
            tracing::error!(%reason, "email refused; not retrying");
            Err(AbortError::new(DeliveryError::Permanent(reason)).into())
        }
        Err(e) => {
            let delay = retry_delay(attempt.current());
            tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "email delivery failed");
            Err(RetryAfterError::new(e, delay).into())
        }
    }
}
