//! Provision, Deprovision and Repair: thin handlers over `services::provisioning`;
//! BuildNetwork and RemoveNetwork over `services::networks`.

use apalis::prelude::{Attempt, BoxDynError, Data, RetryAfterError};

use super::retry_delay;
use crate::domain::jobs::{
    ApplyChange, BuildNetwork, Deprovision, Job, Provision, RemoveNetwork, Repair,
};
use crate::services::provisioning::{self, Outcome};
use crate::services::{Context, networks};

fn last(attempt: &Attempt, max: usize) -> bool {
    attempt.current() + 1 >= max
}

fn outcome(result: crate::Result<Outcome>, attempt: &Attempt) -> Result<(), BoxDynError> {
    match result {
        Ok(Outcome::Done) => Ok(()),
        Ok(Outcome::Retry(why)) => {
            let delay = retry_delay(attempt.current());
            tracing::warn!(%why, retry_in_s = delay.as_secs(), "provider call failed; trying again");
            Err(RetryAfterError::new(crate::Error::Unavailable(why), delay).into())
        }
        // The database or the like: apalis tries the job again.
        Err(e) => Err(e.into()),
    }
}

#[tracing::instrument(skip_all, fields(connection = %job.connection_id))]
pub async fn provision(
    job: Provision,
    ctx: Data<Context>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let last = last(&attempt, Provision::MAX_ATTEMPTS);
    outcome(
        provisioning::provision(&ctx, job.connection_id, &job.plan_hash, last).await,
        &attempt,
    )
}

#[tracing::instrument(skip_all, fields(connection = %job.connection_id))]
pub async fn deprovision(
    job: Deprovision,
    ctx: Data<Context>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let last = last(&attempt, Deprovision::MAX_ATTEMPTS);
    outcome(
        provisioning::deprovision(&ctx, job.connection_id, last).await,
        &attempt,
    )
}

#[tracing::instrument(skip_all, fields(connection = %job.connection_id))]
pub async fn repair(job: Repair, ctx: Data<Context>, attempt: Attempt) -> Result<(), BoxDynError> {
    let last = last(&attempt, Repair::MAX_ATTEMPTS);
    outcome(
        provisioning::repair(&ctx, job.connection_id, last).await,
        &attempt,
    )
}

#[tracing::instrument(skip_all, fields(network = %job.network_id))]
pub async fn build_network(
    job: BuildNetwork,
    ctx: Data<Context>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let last = last(&attempt, BuildNetwork::MAX_ATTEMPTS);
    outcome(
        networks::build(&ctx, job.network_id, &job.plan_hash, last).await,
        &attempt,
    )
}

#[tracing::instrument(skip_all, fields(network = %job.network_id))]
pub async fn remove_network(
    job: RemoveNetwork,
    ctx: Data<Context>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let last = last(&attempt, RemoveNetwork::MAX_ATTEMPTS);
    outcome(networks::remove(&ctx, job.network_id, last).await, &attempt)
}

#[tracing::instrument(skip_all, fields(change = %job.change_id))]
pub async fn apply_change(
    job: ApplyChange,
    ctx: Data<Context>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let last = last(&attempt, ApplyChange::MAX_ATTEMPTS);
    outcome(
        provisioning::apply_change(&ctx, job.change_id, last).await,
        &attempt,
    )
}
