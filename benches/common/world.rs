//! Two teams with a sandbox network each, their people, and the portal's context
//! on a scratch database: what the provisioning and monitoring benchmarks start from.

use std::sync::Arc;

use switchboard::config::Settings;
use switchboard::domain::team::{Role, TeamSlug};
use switchboard::services::connections::ConnectionRequest;
use switchboard::services::networks::{self, AccountRequest, NetworkRequest};
use switchboard::services::{Caller, Context, address_plan};

use super::ScratchDatabase;

pub struct World {
    pub db: ScratchDatabase,
    pub ctx: Context,
    pub settings: Arc<Settings>,
    pub requester: Caller,
    pub payments_lead: Caller,
    pub search_lead: Caller,
    pub admin: Caller,
    /// A request for a connection between the two networks (tcp 443).
    pub ask: ConnectionRequest,
}

/// Waits until `n` connections are active, failing if one ended otherwise or
/// if `limit` after `started` has passed.
pub async fn until_active(
    pool: &sqlx::PgPool,
    n: usize,
    started: std::time::Instant,
    limit: std::time::Duration,
) {
    loop {
        let active: i64 =
            sqlx::query_scalar("SELECT count(*) FROM connections WHERE status = 'active'")
                .fetch_one(pool)
                .await
                .unwrap();
        if active as usize == n {
            return;
        }
        let failed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM connections WHERE status NOT IN ('approved', 'provisioning', 'active')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(failed, 0, "a connection did not make it");
        assert!(started.elapsed() < limit, "timed out");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `--name value` from the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// A person with `role` in `team` (or an admin), as a caller of the services.
async fn person(ctx: &Context, email: &str, team: Option<(&str, Role)>, admin: bool) -> Caller {
    let mut conn = ctx.pool.acquire().await.unwrap();
    let (user, _) = switchboard::store::users::upsert(&mut conn, "bench", email, email, email)
        .await
        .unwrap();
    switchboard::store::users::set_admin(&mut *conn, user.id, admin)
        .await
        .unwrap();
    if let Some((slug, role)) = team {
        let slug = TeamSlug::parse(slug).unwrap();
        let team = switchboard::store::teams::ensure(&mut conn, &slug, slug.as_str())
            .await
            .unwrap();
        switchboard::store::teams::set_membership(&mut *conn, user.id, team.id, role, "manual")
            .await
            .unwrap();
    }
    let actor = switchboard::store::users::actor(&mut conn, user.id)
        .await
        .unwrap()
        .unwrap();
    Caller {
        actor,
        request_id: None,
    }
}

/// The world, with `env` added to the settings (e.g. an SMTP server).
pub async fn world(env: &[(&str, String)]) -> World {
    let db = ScratchDatabase::create().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(40)
        .connect(&db.url)
        .await
        .unwrap();
    switchboard::store::migrate(&pool).await.unwrap();
    let settings = Arc::new(
        Settings::from_lookup(|k| match k {
            "DATABASE_URL" => Some(db.url.clone()),
            // Mail stays in the outbox unless the benchmark sends it over SMTP.
            "SWITCHBOARD_OUTBOX"
                if !env.iter().any(|(name, _)| *name == "SWITCHBOARD_SMTP_URL") =>
            {
                Some("1".into())
            }
            _ => env
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.clone()),
        })
        .unwrap(),
    );
    let ctx = Context::new(pool, settings.clone()).unwrap();
    let admin = person(&ctx, "admin@bench.test", None, true).await;
    let member = Some(("payments", Role::Member));
    let requester = person(&ctx, "rita@bench.test", member, false).await;
    let lead = Some(("payments", Role::Lead));
    let payments_lead = person(&ctx, "pat@bench.test", lead, false).await;
    let lead = Some(("search", Role::Lead));
    let search_lead = person(&ctx, "sam@bench.test", lead, false).await;
    address_plan::create_pool(
        &ctx,
        &admin,
        address_plan::PoolRequest {
            name: "corp".into(),
            cidr: "10.0.0.0/8".into(),
            parent_id: None,
            labels: serde_json::json!({}),
            default_prefix_length: None,
        },
        None,
    )
    .await
    .unwrap();
    let account = networks::create_account(
        &ctx,
        &admin,
        AccountRequest {
            kind: "sandbox".into(),
            name: "demo".into(),
            regions: vec!["local".into()],
            settings: serde_json::json!({}),
            credentials_ref: None,
        },
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (team, cidr) in [("payments", "10.1.0.0/16"), ("search", "10.2.0.0/16")] {
        let net = networks::create_network(
            &ctx,
            &admin,
            NetworkRequest {
                name: format!("{team}-prod"),
                team: team.into(),
                provider_account_id: Some(account.id),
                region: "local".into(),
                environment: None,
                pool_id: None,
                prefix_length: None,
                cidr: Some(cidr.into()),
                external_id: None,
                tags: serde_json::json!({}),
            },
            None,
        )
        .await
        .unwrap();
        ids.push(net.network.id);
    }
    let ask = ConnectionRequest {
        kind: "network-to-network".into(),
        reason: "benchmark".into(),
        source_network_id: Some(ids[0]),
        destination_network_id: Some(ids[1]),
        protocol: Some("tcp".into()),
        ports: Some("443".into()),
        ..ConnectionRequest::default()
    };
    World {
        db,
        ctx,
        settings,
        requester,
        payments_lead,
        search_lead,
        admin,
        ask,
    }
}
