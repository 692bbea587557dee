//! `/`: the landing page for visitors; for a signed-in person, their day:
//! what waits for their decision, what needs attention, their requests, what
//! expires soon (kept fresh by htmx).

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use super::Chrome;
use super::connection_lines::Line;
use crate::error::Error;
use crate::services::{Caller, Context, connections};

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
pub(super) struct Home {
    chrome: Chrome,
    /// None for a visitor: the landing page.
    day: Option<Day>,
}

pub(super) struct Day {
    waiting: Vec<Line>,
    /// Renewals this person decides.
    renewals: Vec<crate::store::renewals::Renewal>,
    /// Changes this person decides for their side.
    changes: Vec<crate::store::changes::Change>,
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
                renewals: o.renewals.clone(),
                changes: o.changes.clone(),
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
