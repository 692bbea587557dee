//! `/`: the landing page for visitors; for a signed-in person, their day:
//! what waits for their decision, what needs attention, their requests, what
//! expires soon (kept fresh by htmx).

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Chrome;
use crate::error::Error;
use crate::services::{Caller, Context, connections};
use crate::store::connections::Connection;

/// One connection as the home page lists it.
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
        let first_difference = serde_json::from_value::<Vec<String>>(c.observed_detail.clone())
            .ok()
            .and_then(|d| d.into_iter().next());
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

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
pub(super) struct Home {
    chrome: Chrome,
    /// None for a visitor: the landing page.
    day: Option<Day>,
}

pub(super) struct Day {
    waiting: Vec<Line>,
    attention: Vec<Line>,
    mine: Vec<Line>,
    expiring: Vec<Line>,
    expiring_days: i64,
}

pub(super) async fn landing(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Option<Caller>,
) -> Result<Home, Error> {
    let day = match caller {
        None => None,
        Some(caller) => {
            let o = connections::overview(&ctx, &caller).await?;
            Some(Day {
                waiting: o
                    .waiting
                    .iter()
                    .map(|c| Line::of(c, c.created_at))
                    .collect(),
                attention: o
                    .attention
                    .iter()
                    .map(|c| Line::of(c, c.updated_at))
                    .collect(),
                mine: o.mine.iter().map(|c| Line::of(c, c.created_at)).collect(),
                expiring: o
                    .expiring
                    .iter()
                    .map(|c| Line::of(c, c.expires_at.unwrap_or(c.updated_at)))
                    .collect(),
                expiring_days: connections::EXPIRING_WITHIN_DAYS,
            })
        }
    };
    Ok(Home { chrome, day })
}
