//! Lists come a page at a time, in a stable order, with the filters people
//! use; a script following `Link: rel="next"` sees every item exactly once.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{World, world};
use crate::helpers::spawn_app;

/// One GET with its `Link` and `Next-Cursor` headers.
async fn get_page(
    w: &World,
    token: &str,
    path: &str,
) -> (u16, Value, Option<String>, Option<String>) {
    let res = w
        .app
        .client
        .get(w.app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (link, cursor) = (header("link"), header("next-cursor"));
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body, link, cursor)
}

/// Follows `Link: <…>; rel="next"` from `path` to the last page.
async fn every_page(w: &World, token: &str, path: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next.take() {
        let (status, body, link, cursor) = get_page(w, token, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        pages.push(body.as_array().unwrap().clone());
        if let Some(link) = link {
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
                .map(|(url, _)| url.to_owned())
                .unwrap_or_else(|| panic!("not a next link: {link}"));
            assert!(target.contains(&format!("cursor={}", cursor.unwrap())));
            next = Some(target);
        }
        assert!(pages.len() < 100, "pages never end");
    }
    pages
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn connections_come_newest_first_in_pages_that_hold_each_once() {
    let w = world(spawn_app().await).await;
    let mut made = Vec::new();
    for _ in 0..7 {
        made.push(w.request().await["id"].as_str().unwrap().to_owned());
    }
    let pages = every_page(&w, &w.requester, "/api/v1/connections?limit=3").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1],
        "{pages:?}"
    );
    let seen: Vec<String> = pages.iter().flat_map(|p| ids(p)).collect();
    made.reverse();
    assert_eq!(seen, made, "newest first, each once");

    // A page of exactly what is left has no next page.
    let (_, body, link, cursor) = get_page(&w, &w.requester, "/api/v1/connections?limit=7").await;
    assert_eq!(body.as_array().unwrap().len(), 7);
    assert_eq!((link, cursor), (None, None));

    // One made while a script pages does not shift what it sees.
    let (_, first, _, cursor) = get_page(&w, &w.requester, "/api/v1/connections?limit=3").await;
    w.request().await;
    let (_, second, _, _) = get_page(
        &w,
        &w.requester,
        &format!("/api/v1/connections?limit=3&cursor={}", cursor.unwrap()),
    )
    .await;
    let both: HashSet<String> = ids(first.as_array().unwrap())
        .into_iter()
        .chain(ids(second.as_array().unwrap()))
        .collect();
    assert_eq!(both.len(), 6);
    assert!(both.iter().all(|id| made.contains(id)));
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_refused_naming_it() {
    let w = world(spawn_app().await).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        // A cursor of another list (teams sort by name, not by time).
        ("cursor=InBheW1lbnRzIg", "cursor"),
        ("status=sleeping", "status"),
        ("kind=teleport", "kind"),
        ("network=nope", "network"),
        ("created_after=yesterday", "created_after"),
    ] {
        let (status, body) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/connections?{query}"),
                None,
            )
            .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let (status, body) = w
        .call(&w.requester, Method::GET, "/api/v1/teams?limit=0", None)
        .await;
    assert_eq!(
        (status, &body["errors"][0]["field"]),
        (422, &json!("limit")),
        "{body}"
    );
}

#[tokio::test]
async fn connections_filter_by_status_kind_team_network_requester_and_time() {
    let w = world(spawn_app().await).await;
    let first = w.request().await;
    let id = first["id"].as_str().unwrap();
    let (status, _) = w
        .call(
            &w.requester,
            Method::POST,
            &format!("/api/v1/connections/{id}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let pending = w.request().await;
    let count = |query: String| {
        let w = &w;
        async move {
            let (status, body) = w
                .call(
                    &w.requester,
                    Method::GET,
                    &format!("/api/v1/connections?{query}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            ids(body.as_array().unwrap())
        }
    };
    assert_eq!(count("status=cancelled".into()).await, [id]);
    assert_eq!(
        count("status=pending_approval".into()).await,
        [pending["id"].as_str().unwrap()]
    );
    assert_eq!(count("kind=network-to-network".into()).await.len(), 2);
    assert_eq!(count("kind=dns-record".into()).await.len(), 0);
    assert_eq!(count("team=search".into()).await.len(), 2);
    assert_eq!(count("team=billing".into()).await.len(), 0);
    assert_eq!(count(format!("network={}", w.search_net)).await.len(), 2);
    assert_eq!(
        count("requested_by=RITA@example.test".into()).await.len(),
        2
    );
    assert_eq!(
        count("requested_by=olga@example.test".into()).await.len(),
        0
    );
    assert_eq!(
        count("created_after=2999-01-01T00:00:00Z".into())
            .await
            .len(),
        0
    );
    assert_eq!(
        count("created_before=2999-01-01T00:00:00Z".into())
            .await
            .len(),
        2
    );

    // Someone outside both teams sees none of them, whatever the filter.
    let (_, theirs) = w
        .call(
            &w.outsider,
            Method::GET,
            "/api/v1/connections?team=search",
            None,
        )
        .await;
    assert_eq!(theirs, json!([]));
}

#[tokio::test]
async fn the_audit_log_pages_and_filters_for_admins_only() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    let admin = w.app.token("root@example.test", true).await;
    let (status, events) = w
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/audit?object_type=connection&object_id={id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events[0]["action"], "connection.requested", "{events}");
    assert_eq!(events[0]["actor"], "rita <rita@example.test>", "{events}");
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    let (_, hers) = w
        .call(
            &admin,
            Method::GET,
            "/api/v1/audit?actor=Rita@example.test",
            None,
        )
        .await;
    assert!(
        hers.as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_id"] == events[0]["actor_id"]),
        "{hers}"
    );
    assert!(!hers.as_array().unwrap().is_empty());

    let pages = every_page(&w, &admin, "/api/v1/audit?limit=2").await;
    let all: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(all.len() > 2, "{all:?}");
    assert!(all.windows(2).all(|p| p[0] > p[1]), "newest first: {all:?}");

    let (status, _) = w
        .call(
            &admin,
            Method::GET,
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = w
        .call(&w.requester, Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn networks_and_allocations_filter_by_team_and_address() {
    let w = world(spawn_app().await).await;
    let admin = w.app.token("root@example.test", true).await;
    let (_, net) = w
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/networks/{}", w.payments_net),
            None,
        )
        .await;
    let prefix = net["prefixes"][0]["cidr"].as_str().unwrap().to_owned();
    let inside = prefix.split('/').next().unwrap().to_owned();

    let (status, found) = w
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/networks?contains={inside}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(ids(found.as_array().unwrap()), [w.payments_net.as_str()]);
    let (status, found) = w
        .call(
            &admin,
            Method::GET,
            "/api/v1/networks?contains=192.0.2.1",
            None,
        )
        .await;
    assert_eq!((status, found), (200, json!([])));
    let (status, body) = w
        .call(
            &admin,
            Method::GET,
            "/api/v1/networks?contains=over-there",
            None,
        )
        .await;
    assert_eq!(
        (status, &body["errors"][0]["field"]),
        (422, &json!("contains"))
    );

    let pages = every_page(&w, &admin, "/api/v1/networks?limit=1").await;
    assert_eq!(pages.len(), 2, "{pages:?}");

    let (status, held) = w
        .call(
            &admin,
            Method::GET,
            "/api/v1/allocations?team=payments",
            None,
        )
        .await;
    assert_eq!(status, 200, "{held}");
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["cidr"], prefix.as_str());
    assert_eq!(held[0]["network_id"], w.payments_net.as_str());
    let (_, all) = w
        .call(&admin, Method::GET, "/api/v1/allocations", None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
}

/// The audit page filters like the API, links each entry to its object, shows
/// what changed as before → after, and says at the field which date it could
/// not read, keeping what was typed.
#[tokio::test]
async fn the_audit_page_filters_links_and_shows_before_and_after() {
    let w = world(spawn_app().await).await;
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    let admin = w.app.token("root@example.test", true).await;
    let (status, _) = w
        .call(
            &admin,
            Method::PATCH,
            &format!("/api/v1/networks/{}", w.search_net),
            Some(json!({"name": "search-main"})),
        )
        .await;
    assert_eq!(status, 200);
    w.app.sign_in_admin().await;

    let page = w
        .app
        .get(&format!(
            "/admin/audit?object_type=connection&object_id={id}"
        ))
        .await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("connection.requested"), "{page}");
    assert!(
        page.contains(&format!("<a href=\"/connections/{id}\">")),
        "{page}"
    );
    assert!(
        !page.contains("network.changed"),
        "filtered to the connection"
    );

    let page = w
        .app
        .get("/admin/audit?action=network.changed")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("<a href=\"/networks/{}\">", w.search_net)),
        "{page}"
    );
    assert!(
        page.contains("<del>search-prod</del> → <ins>search-main</ins>"),
        "the rename as before → after: {page}"
    );
    assert!(
        !page.contains("connection.requested"),
        "filtered to the rename"
    );

    let res = w.app.get("/admin/audit?since=yesterday&actor=rita").await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("id=\"a-since-error\""),
        "the error at its field: {page}"
    );
    assert!(
        page.contains("value=\"yesterday\""),
        "what was typed is kept"
    );
    assert!(page.contains("value=\"rita\""), "what was typed is kept");
}

/// A network's page lists its connections, a team's page its networks and
/// connections, and the networks list shows prefixes and finds the network
/// holding an address (a mistyped one is refused at its field, kept).
#[tokio::test]
async fn networks_teams_and_connections_link_to_each_other() {
    let w = world(spawn_app().await).await;
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    w.app
        .sign_in_dev("rita@example.test", "payments", "member", false)
        .await;
    let link = format!("<a href=\"/connections/{id}\">");

    let page = w
        .app
        .get(&format!("/networks/{}", w.search_net))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&link),
        "the network lists its connection: {page}"
    );

    let page = w.app.get("/teams/payments").await.text().await.unwrap();
    assert!(
        page.contains(&link),
        "the team lists its connection: {page}"
    );
    assert!(
        page.contains(&format!(
            "<a href=\"/networks/{}\">payments-prod</a>",
            w.payments_net
        )),
        "the team lists its network: {page}"
    );
    let page = w.app.get("/teams/billing").await.text().await.unwrap();
    assert!(!page.contains(&link), "not a side of it: {page}");

    let (_, net) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/networks/{}", w.payments_net),
            None,
        )
        .await;
    let cidr = net["prefixes"][0]["cidr"].as_str().unwrap().to_owned();
    let address = cidr.split('/').next().unwrap();
    let page = w
        .app
        .get(&format!("/networks?contains={address}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("<code>{cidr}</code>")), "{page}");
    assert!(page.contains(">payments-prod</a>"), "{page}");
    assert!(
        !page.contains(">search-prod</a>"),
        "only the network holding it: {page}"
    );

    let res = w.app.get("/networks?contains=10.999.0.1").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"f-contains-error\""), "{page}");
    assert!(page.contains("value=\"10.999.0.1\""), "kept: {page}");

    let page = w
        .app
        .get(&format!("/connections?network={}", w.search_net))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&link), "{page}");
    assert!(page.contains("Only those from or to"), "{page}");
}

/// The map draws every network in its team's column and each connection the
/// person can see as a link between them; a team filter keeps its networks
/// and those its connections reach.
#[tokio::test]
async fn the_map_shows_networks_by_team_and_the_connections_between_them() {
    let w = world(spawn_app().await).await;
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    w.app
        .sign_in_dev("rita@example.test", "payments", "member", false)
        .await;
    let map = w.app.get("/map").await.text().await.unwrap();
    for team in ["payments", "search"] {
        assert!(map.contains(&format!(">{team}</text>")), "{map}");
    }
    assert!(
        map.contains(&format!("href=\"/networks/{}\"", w.payments_net)),
        "{map}"
    );
    assert!(
        map.contains(&format!("href=\"/networks/{}\"", w.search_net)),
        "{map}"
    );
    assert!(
        map.contains(&format!(
            "<a href=\"/connections/{id}\" class=\"map-edge edge-pending_approval\""
        )),
        "the request, waiting: {map}"
    );

    let filtered = w.app.get("/map?team=search").await.text().await.unwrap();
    assert!(
        filtered.contains(&format!("href=\"/connections/{id}\"")),
        "{filtered}"
    );
    assert!(
        filtered.contains(&format!("href=\"/networks/{}\"", w.payments_net)),
        "reached: {filtered}"
    );

    // Someone in neither team sees the networks but not the request.
    w.app
        .sign_in_dev("olga@example.test", "billing", "member", false)
        .await;
    let map = w.app.get("/map").await.text().await.unwrap();
    assert!(
        map.contains(&format!("href=\"/networks/{}\"", w.payments_net)),
        "{map}"
    );
    assert!(
        !map.contains(&format!("href=\"/connections/{id}\"")),
        "{map}"
    );
}
