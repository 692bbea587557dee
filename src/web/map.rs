//! `/map`: the networks, grouped by team (and provider account), and the
//! connections between them, colored by status, drawn as SVG on the server.
//! Every network and every connection is a link.

use std::collections::{BTreeMap, HashMap, HashSet};

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use uuid::Uuid;

use super::Chrome;
use crate::error::Error;
use crate::services::networks::{self, NetworkFilter};
use crate::services::{Caller, Context, connections};

const COLUMN: f64 = 230.0;
const NODE_WIDTH: f64 = 190.0;
const NODE_HEIGHT: f64 = 40.0;
const ROW: f64 = 58.0;
const TOP: f64 = 44.0;
const MARGIN: f64 = 20.0;

/// A network to place: its id, name, team and provider account.
pub(super) struct Place {
    pub id: Uuid,
    pub name: String,
    pub team: String,
    pub account: String,
}

/// A connection to draw between two networks.
pub(super) struct Link {
    pub id: Uuid,
    pub from: Uuid,
    pub to: Uuid,
    pub status: String,
    pub summary: String,
}

pub(super) struct Column {
    x: f64,
    team: String,
}

pub(super) struct Node {
    id: Uuid,
    x: f64,
    y: f64,
    name: String,
    account: String,
}

pub(super) struct Edge {
    id: Uuid,
    /// The SVG path from one network's middle to the other's.
    path: String,
    status: String,
    title: String,
}

/// The drawing: its size, team columns, networks and connections.
pub(super) struct Drawing {
    width: f64,
    height: f64,
    columns: Vec<Column>,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// Lays the networks out in one column per team (teams by name; in a column,
/// by account then name) and draws each connection as a curve between the
/// two networks' middles; one whose end is not on the map is left out.
pub(super) fn draw(places: &[Place], links: &[Link]) -> Drawing {
    let mut teams: BTreeMap<&str, Vec<&Place>> = BTreeMap::new();
    for p in places {
        teams.entry(p.team.as_str()).or_default().push(p);
    }
    let mut columns = Vec::new();
    let mut nodes = Vec::new();
    let mut middle: HashMap<Uuid, (f64, f64)> = HashMap::new();
    let mut tallest = 0usize;
    for (i, (team, mut members)) in teams.into_iter().enumerate() {
        members.sort_by(|a, b| (&a.account, &a.name).cmp(&(&b.account, &b.name)));
        let x = MARGIN + i as f64 * COLUMN;
        columns.push(Column {
            x,
            team: team.to_owned(),
        });
        tallest = tallest.max(members.len());
        for (row, p) in members.into_iter().enumerate() {
            let y = TOP + row as f64 * ROW;
            middle.insert(p.id, (x + NODE_WIDTH / 2.0, y + NODE_HEIGHT / 2.0));
            nodes.push(Node {
                id: p.id,
                x,
                y,
                name: p.name.clone(),
                account: p.account.clone(),
            });
        }
    }
    let edges = links
        .iter()
        .filter_map(|l| {
            let (&(mut x1, y1), &(mut x2, y2)) = (middle.get(&l.from)?, middle.get(&l.to)?);
            // Between columns: from the facing sides, not hidden under the boxes.
            let half = NODE_WIDTH / 2.0;
            if x1 + 1.0 < x2 {
                (x1, x2) = (x1 + half, x2 - half);
            } else if x2 + 1.0 < x1 {
                (x1, x2) = (x1 - half, x2 + half);
            }
            // Same column: bow out to the right so the curve is not hidden.
            let bow = if (x1 - x2).abs() < 1.0 {
                NODE_WIDTH * 0.75
            } else {
                0.0
            };
            let (cx, cy) = ((x1 + x2) / 2.0 + bow, (y1 + y2) / 2.0 - 18.0);
            Some(Edge {
                id: l.id,
                path: format!("M{x1:.0} {y1:.0} Q{cx:.0} {cy:.0} {x2:.0} {y2:.0}"),
                status: l.status.clone(),
                title: format!("{} ({})", l.summary, l.status.replace('_', " ")),
            })
        })
        .collect();
    Drawing {
        width: (MARGIN * 2.0 + columns.len().max(1) as f64 * COLUMN).max(320.0),
        height: TOP + tallest.max(1) as f64 * ROW + MARGIN,
        columns,
        nodes,
        edges,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/map.html")]
pub(super) struct MapPage {
    chrome: Chrome,
    drawing: Drawing,
    teams: Vec<String>,
    team: String,
    /// Statuses on the map, for the key.
    statuses: Vec<String>,
    limit: i64,
}

#[derive(Deserialize)]
pub(super) struct MapQuery {
    #[serde(default)]
    team: String,
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    query: web::Query<MapQuery>,
) -> Result<MapPage, Error> {
    let team = query.into_inner().team.trim().to_owned();
    let all = networks::list_networks(&ctx, &caller, &NetworkFilter::default()).await?;
    let connections = connections::live(&ctx, &caller).await?;
    let ends = |c: &crate::store::connections::Connection| {
        // A kind without two networks (DNS, exposure from a CIDR) is not drawn.
        let id = |k: &str| c.spec.get(k)?.as_str()?.parse::<Uuid>().ok();
        Some((id("source_network_id")?, id("destination_network_id")?))
    };
    let team_of: HashMap<Uuid, &str> = all
        .iter()
        .map(|n| (n.network.id, n.network.team_slug.as_str()))
        .collect();
    let links: Vec<Link> = connections
        .iter()
        .filter_map(|c| {
            let (from, to) = ends(c)?;
            let involves = team.is_empty()
                || team_of.get(&from) == Some(&team.as_str())
                || team_of.get(&to) == Some(&team.as_str());
            involves.then(|| Link {
                id: c.id,
                from,
                to,
                status: c.status.as_str().to_owned(),
                summary: c.summary().to_owned(),
            })
        })
        .collect();
    // With a team chosen: its networks and those its connections reach.
    let reached: HashSet<Uuid> = links.iter().flat_map(|l| [l.from, l.to]).collect();
    let places: Vec<Place> = all
        .iter()
        .filter(|n| {
            team.is_empty() || n.network.team_slug == team || reached.contains(&n.network.id)
        })
        .map(|n| Place {
            id: n.network.id,
            name: n.network.name.clone(),
            team: n.network.team_slug.clone(),
            account: n.network.provider_account_name.clone(),
        })
        .collect();
    let mut teams: Vec<String> = all.iter().map(|n| n.network.team_slug.clone()).collect();
    teams.sort();
    teams.dedup();
    let mut statuses: Vec<String> = links.iter().map(|l| l.status.clone()).collect();
    statuses.sort();
    statuses.dedup();
    Ok(MapPage {
        drawing: draw(&places, &links),
        chrome,
        teams,
        team,
        statuses,
        limit: connections::MAP_LIMIT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(n: u128, name: &str, team: &str) -> Place {
        Place {
            id: Uuid::from_u128(n),
            name: name.into(),
            team: team.into(),
            account: "aws".into(),
        }
    }

    #[test]
    fn teams_are_columns_and_connections_join_their_networks() {
        let places = [
            place(1, "search-prod", "search"),
            place(2, "payments-prod", "payments"),
            place(3, "payments-dev", "payments"),
        ];
        let links = [
            Link {
                id: Uuid::from_u128(10),
                from: Uuid::from_u128(2),
                to: Uuid::from_u128(1),
                status: "active".into(),
                summary: "payments to search".into(),
            },
            // An end that is not on the map: not drawn.
            Link {
                id: Uuid::from_u128(11),
                from: Uuid::from_u128(2),
                to: Uuid::from_u128(99),
                status: "drifted".into(),
                summary: "elsewhere".into(),
            },
        ];
        let d = draw(&places, &links);
        let teams: Vec<&str> = d.columns.iter().map(|c| c.team.as_str()).collect();
        assert_eq!(teams, ["payments", "search"]);
        let at = |n: u128| {
            let node = d.nodes.iter().find(|x| x.id == Uuid::from_u128(n)).unwrap();
            (node.x, node.y)
        };
        assert_eq!(at(3), (MARGIN, TOP), "payments-dev first in its column");
        assert_eq!(at(2), (MARGIN, TOP + ROW));
        assert_eq!(at(1), (MARGIN + COLUMN, TOP));
        assert_eq!(d.edges.len(), 1);
        assert_eq!(d.edges[0].title, "payments to search (active)");
        // From payments-prod's right side to search-prod's left side.
        assert!(
            d.edges[0].path.starts_with("M210 122 "),
            "{}",
            d.edges[0].path
        );
        assert!(d.edges[0].path.ends_with(" 250 64"), "{}", d.edges[0].path);
        assert!(d.height >= TOP + 2.0 * ROW);
    }

    #[test]
    fn an_empty_map_still_has_a_size() {
        let d = draw(&[], &[]);
        assert!(d.width > 0.0 && d.height > 0.0);
        assert!(d.nodes.is_empty() && d.edges.is_empty());
    }
}
