//! SendWebhook: a thin handler over `services::notifications::deliver`.

use apalis::prelude::{Attempt, BoxDynError, RetryAfterError};

use super::retry_delay;
use crate::domain::jobs::SendWebhook;

#[tracing::instrument(skip_all, fields(url = %job.url))]
pub async fn handle(job: SendWebhook, attempt: Attempt) -> Result<(), BoxDynError> {
    match crate::services::notifications::deliver(&job).await {
        Ok(()) => Ok(()),
        Err(why) => {
            let delay = retry_delay(attempt.current());
            tracing::warn!(%why, retry_in_s = delay.as_secs(), "webhook delivery failed");
            Err(RetryAfterError::new(crate::Error::Unavailable(why), delay).into())
        }
    }
}
