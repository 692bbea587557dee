//! SendWebhook: a thin handler over `services::notifications::deliver`.

use apalis::prelude::{Attempt, BoxDynError, Data, RetryAfterError};

use super::retry_delay;
use crate::domain::jobs::SendWebhook;
use crate::services::Context;
use crate::services::notifications::{self, Undelivered};

#[tracing::instrument(skip_all, fields(url = %job.url))]
pub async fn handle(
    job: SendWebhook,
    ctx: Data<Context>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    match notifications::deliver(&ctx.settings, &job).await {
        Ok(()) => Ok(()),
        // Trying again cannot help: said in the log (never the secret), and done.
        Err(Undelivered::Refused(why)) => {
            tracing::warn!(%why, "webhook not delivered: refused");
            Ok(())
        }
        Err(Undelivered::Later(why)) => {
            let delay = retry_delay(attempt.current());
            tracing::warn!(%why, retry_in_s = delay.as_secs(), "webhook delivery failed");
            Err(RetryAfterError::new(crate::Error::Unavailable(why), delay).into())
        }
    }
}
