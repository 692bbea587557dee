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
        .map_err(|e| crate::Error::because(format!("enqueueing {}", J::QUEUE), e))
}

/// Pushes `job` unless the same job already waits to run (not started, or
/// waiting to be tried again): repeated asks collapse into one job. Callers hold
/// a lock on what the job is about, so two asks cannot both miss each other.
pub async fn enqueue_unless_waiting<J: Job>(
    conn: &mut PgConnection,
    job: &J,
) -> Result<bool, crate::Error> {
    let payload = serde_json::to_vec(job).map_err(crate::Error::internal)?;
    let waiting: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1 AND job = $2
            AND (status IN ('Pending', 'Queued') OR (status = 'Failed' AND attempts < max_attempts)))",
    )
    .bind(J::QUEUE)
    .bind(&payload)
    .fetch_one(&mut *conn)
    .await?;
    if waiting {
        return Ok(false);
    }
    enqueue(conn, job).await?;
    Ok(true)
}

/// (queue, state, count) of the jobs not done: read through a partial index,
/// so a scrape stays cheap however many finished jobs the table keeps.
pub async fn job_counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    // Every queue and waiting state is listed, with 0 when it has no job: a
    // gauge that vanished when its queue emptied would read as "no data".
    sqlx::query_as(
        "SELECT q.queue, s.state, count(j.id)
           FROM unnest($1::text[]) AS q(queue)
          CROSS JOIN unnest(ARRAY['Pending', 'Queued', 'Running', 'Failed']) AS s(state)
           LEFT JOIN apalis.jobs j ON j.job_type = q.queue AND j.status = s.state AND j.status <> 'Done'
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(crate::domain::jobs::QUEUES.as_slice())
    .fetch_all(pool)
    .await
}

/// Deletes up to `batch` jobs that ended (done, or failed for good) more than
/// `days` ago; how many. Their payloads go with them (rendered emails included).
pub async fn prune_finished(pool: &PgPool, days: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM apalis.jobs WHERE id IN (
            SELECT id FROM apalis.jobs
             WHERE status IN ('Done', 'Killed', 'Failed') AND done_at < now() - make_interval(days => $1::int)
               AND (status <> 'Failed' OR attempts >= max_attempts)
             LIMIT $2)",
    )
    .bind(days)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The newest job of `queue` whose payload's `field` is `id`: (status,
/// attempts, max attempts, last result). For the housekeeping pass that
/// finds work nothing works on.
pub async fn last_job(
    db: impl sqlx::PgExecutor<'_>,
    queue: &str,
    field: &str,
    id: uuid::Uuid,
) -> Result<Option<(String, i32, i32, Option<serde_json::Value>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, attempts, max_attempts, last_result FROM apalis.jobs
          WHERE job_type = $1 AND convert_from(job, 'UTF8')::jsonb ->> $2 = $3::text
          ORDER BY run_at DESC LIMIT 1",
    )
    .bind(queue)
    .bind(field)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Whether a job is still to run (waiting, running, or failed with attempts left).
pub fn job_alive(status: &str, attempts: i32, max_attempts: i32) -> bool {
    matches!(status, "Pending" | "Queued" | "Running")
        || (status == "Failed" && attempts < max_attempts)
}
