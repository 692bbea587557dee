//! Connections as pages list them in a few words: the home page's lists, and
//! a network's or a team's latest connections (templates/partials/connection_lines.html).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;
use crate::services::{Caller, Context, connections};
use crate::store::connections::Connection;

/// One connection as a list of them shows it.
pub(super) struct Line {
    pub(super) id: Uuid,
    pub(super) summary: String,
    /// The status's badge class and words.
    pub(super) category: String,
    pub(super) label: String,
    pub(super) who: String,
    pub(super) at: DateTime<Utc>,
    /// Why it needs attention (a difference, a failure), if it does.
    pub(super) why: Option<String>,
}

/// How many connections a network's or a team's page lists (it links to the rest).
const RELATED: u32 = 20;

/// The latest connections matching `filter` that the person can see, and
/// whether there are more.
pub(super) async fn related(
    ctx: &Context,
    caller: &Caller,
    filter: connections::ConnectionFilter,
) -> Result<(Vec<Line>, bool), Error> {
    let page = crate::domain::page::Page::parse(Some(RELATED), None)
        .map_err(|e| Error::invalid(e.field, e.reason))?;
    let found = connections::list(ctx, caller, &filter, &page).await?;
    Ok((
        found
            .items
            .iter()
            .map(|c| Line::of(c, c.created_at))
            .collect(),
        found.next.is_some(),
    ))
}

impl Line {
    pub(super) fn of(c: &Connection, at: DateTime<Utc>) -> Self {
        let category = super::monitoring::category(c);
        let label = super::monitoring::label(&category);
        let first_difference = c.first_difference();
        let why = match category.as_str() {
            "failed" => c.failure.clone(),
            "drifted" | "unknown" => first_difference,
            _ => None,
        };
        Self {
            id: c.id,
            summary: c.summary().to_owned(),
            category,
            label,
            who: c.requester_name.clone(),
            at,
            why,
        }
    }
}
