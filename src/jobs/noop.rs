use apalis::prelude::BoxDynError;

use crate::domain::jobs::Noop;

/// Does nothing: lets the benchmark measure the queue alone.
pub async fn handle(_job: Noop) -> Result<(), BoxDynError> {
    Ok(())
}
