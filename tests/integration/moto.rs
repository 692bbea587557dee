//! The moto EC2 emulator on loopback (started by tests/run), seen from the tests
//! through the same SDK the aws provider uses: making VPCs, and reading back
//! what Switchboard built.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::Filter;
use serde_json::{Value, json};

pub(crate) fn url() -> String {
    std::env::var("MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".into())
}

pub(crate) fn ec2(region: &str) -> Client {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(url())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// A credentials file for moto, as an operator would write one (mode 600).
pub(crate) fn credentials_ref() -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("switchboard-moto-{}", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("file:{}", path.display())
}

/// An aws provider account pointing at moto.
pub(crate) fn account(name: &str, settings: Value) -> Value {
    let mut settings = settings;
    settings["endpoint_url"] = json!(url());
    json!({"kind": "aws", "name": name, "regions": ["us-east-1", "us-west-2"],
           "settings": settings, "credentials_ref": credentials_ref()})
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// A new VPC with one subnet; its id.
pub(crate) async fn vpc(ec2: &Client, cidr: &str) -> String {
    let vpc = ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
    let id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    ec2.create_subnet()
        .vpc_id(&id)
        .cidr_block(cidr)
        .send()
        .await
        .unwrap();
    id
}

/// The peerings between two VPCs that are not gone: (id, state).
pub(crate) async fn peerings(ec2: &Client, vpc: &str, peer: &str) -> Vec<(String, String)> {
    let found = ec2.describe_vpc_peering_connections().send().await.unwrap();
    found
        .vpc_peering_connections()
        .iter()
        .filter(|p| {
            let ends = [
                p.requester_vpc_info().and_then(|v| v.vpc_id()),
                p.accepter_vpc_info().and_then(|v| v.vpc_id()),
            ];
            ends == [Some(vpc), Some(peer)] || ends == [Some(peer), Some(vpc)]
        })
        .map(|p| {
            (
                p.vpc_peering_connection_id().unwrap().to_owned(),
                p.status()
                    .and_then(|s| s.code())
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .filter(|(_, state)| state != "deleted")
        .collect()
}

/// Where the VPC's route tables send `destination` (one target per table that has it).
pub(crate) async fn routes_to(ec2: &Client, vpc: &str, destination: &str) -> Vec<String> {
    let found = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .unwrap();
    found
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some(destination))
        .map(|r| {
            r.vpc_peering_connection_id()
                .or(r.transit_gateway_id())
                .unwrap_or("other")
                .to_owned()
        })
        .collect()
}

/// The VPC's default network ACL.
pub(crate) async fn default_acl(ec2: &Client, vpc: &str) -> String {
    let found = ec2
        .describe_network_acls()
        .filters(filter("vpc-id", vpc))
        .filters(filter("default", "true"))
        .send()
        .await
        .unwrap();
    found.network_acls()[0].network_acl_id().unwrap().to_owned()
}

/// The VPC's first route table.
pub(crate) async fn route_table(ec2: &Client, vpc: &str) -> String {
    let found = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .unwrap();
    found.route_tables()[0].route_table_id().unwrap().to_owned()
}

/// The ingress of the VPC's default security group: "tcp 443-443 from 10.2.0.0/16".
pub(crate) async fn ingress(ec2: &Client, vpc: &str) -> Vec<String> {
    let found = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for p in found.security_groups()[0].ip_permissions() {
        for r in p.ip_ranges() {
            out.push(format!(
                "{} {}-{} from {}",
                p.ip_protocol().unwrap_or_default(),
                p.from_port().unwrap_or(-1),
                p.to_port().unwrap_or(-1),
                r.cidr_ip().unwrap_or_default()
            ));
        }
    }
    out
}

/// A transit gateway, with its default route-table association and propagation.
pub(crate) async fn transit_gateway(ec2: &Client) -> String {
    let tgw = ec2.create_transit_gateway().send().await.unwrap();
    tgw.transit_gateway()
        .unwrap()
        .transit_gateway_id()
        .unwrap()
        .to_owned()
}

/// The attachments of a transit gateway that are not gone: (id, vpc).
pub(crate) async fn attachments(ec2: &Client, tgw: &str) -> Vec<(String, String)> {
    let found = ec2
        .describe_transit_gateway_vpc_attachments()
        .send()
        .await
        .unwrap();
    found
        .transit_gateway_vpc_attachments()
        .iter()
        .filter(|a| a.transit_gateway_id() == Some(tgw))
        .filter(|a| a.state().is_none_or(|s| s.as_str() != "deleted"))
        .map(|a| {
            (
                a.transit_gateway_attachment_id().unwrap().to_owned(),
                a.vpc_id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
