//! The apalis job tables: enqueue inside the caller's transaction, and counts.

use apalis::prelude::TaskBuilder;
use sqlx::{PgConnection, PgPool};

use crate::domain::jobs::Job;

/// Pushes a job on the caller's connection, so it commits (or not) together
/// with the state change that caused it.
pub async fn enqueue<J: Job>(conn: &mut PgConnection, job: &J) -> Result<(), crate::Error> {
    enqueue_many(conn, std::slice::from_ref(job)).await
}

pub async fn enqueue_many<J: Job>(conn: &mut PgConnection, jobs: &[J]) -> Result<(), crate::Error> {
    let mut tasks = Vec::with_capacity(jobs.len());
    for job in jobs {
        let payload = serde_json::to_vec(job).map_err(crate::Error::internal)?;
        tasks.push(
            TaskBuilder::new(payload)
                .max_attempts(J::MAX_ATTEMPTS)
                .build(),
        );
    }
    apalis_postgres::queries::push_tasks(conn, J::QUEUE, tasks)
        .await
        .map_err(|e| crate::Error::internal(format!("enqueueing {}: {e}", J::QUEUE)))
}

/// (queue, state, count) for every non-empty combination.
pub async fn job_counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT job_type, status, count(*) FROM apalis.jobs GROUP BY job_type, status ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
}
