use super::*;

/// The shape AWS documents for `CustomerGatewayConfiguration` (trimmed):
/// each tunnel's AWS-side outside address and its pre-shared key.
#[test]
fn each_tunnel_is_read_from_the_customer_gateway_configuration() {
    let tunnel = |outside: &str, key: &str| {
        format!(
            "<ipsec_tunnel><customer_gateway><tunnel_outside_address><ip_address>198.51.100.7</ip_address></tunnel_outside_address></customer_gateway>\
             <vpn_gateway><tunnel_outside_address><ip_address>{outside}</ip_address></tunnel_outside_address>\
             <tunnel_inside_address><ip_address>169.254.44.41</ip_address></tunnel_inside_address></vpn_gateway>\
             <ike><mode>main</mode><pre_shared_key>{key}</pre_shared_key></ike></ipsec_tunnel>"
        )
    };
    let config = format!(
        "<?xml version=\"1.0\"?><vpn_connection id=\"vpn-1\">{}{}</vpn_connection>",
        tunnel("52.2.144.13", "key_one"),
        tunnel("52.2.144.14", "key_two")
    );
    let vpn = VpnConnection::builder()
        .customer_gateway_configuration(config)
        .build();
    assert_eq!(
        tunnels_of(&vpn),
        [
            ("52.2.144.13".to_owned(), "key_one".to_owned()),
            ("52.2.144.14".to_owned(), "key_two".to_owned())
        ]
    );
    assert!(tunnels_of(&VpnConnection::builder().build()).is_empty());
}
