//! Every form of the portal says what is wrong at its field, in the person's
//! words, all at once, keeping what was typed; a conflict ("already exists",
//! "overlaps") is said at the top of the form; nothing is saved.

use crate::helpers::spawn_app;

/// The summary line linking to a field by its label, and the error under it.
fn at_field(page: &str, input: &str, label: &str, reason: &str) {
    assert!(
        page.contains(&format!("<a href=\"#{input}\">{label}</a>: {reason}")),
        "summary names {label}: {page}"
    );
    assert!(
        page.contains(&format!(
            "<p class=\"field-error\" id=\"{input}-error\">{reason}"
        )),
        "{label} says why at its field: {page}"
    );
    assert!(
        page.contains(&format!(
            "id=\"{input}\" aria-invalid=\"true\" aria-describedby=\"{input}-error\""
        )) || page.contains(&format!(
            "aria-invalid=\"true\" aria-describedby=\"{input}-error\""
        )),
        "{label} is marked invalid: {page}"
    );
}

#[tokio::test]
async fn the_admin_forms_say_every_mistake_at_its_field_and_keep_the_input() {
    let app = spawn_app().await;
    app.sign_in_admin().await;

    // A provider account with no name and settings that are not key=value.
    let res = app
        .post_form(
            "/admin/provider-accounts",
            &[
                ("kind", "sandbox"),
                ("name", ""),
                ("regions", "eu-west-1"),
                ("settings", "endpoint"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("2 things to correct"), "{page}");
    at_field(&page, "pa-name", "Name", "is required");
    at_field(
        &page,
        "pa-settings",
        "Settings",
        "&#34;endpoint&#34; is not key=value",
    );
    assert!(page.contains(r#"value="eu-west-1""#), "{page}");
    let made = app
        .post_form(
            "/admin/provider-accounts",
            &[
                ("kind", "sandbox"),
                ("name", "cloud"),
                ("regions", "eu-west-1"),
            ],
        )
        .await;
    assert_eq!(made.status(), 303);

    // A new network with four mistakes: all four at once, none by internal name.
    let res = app
        .post_form(
            "/networks",
            &[
                ("name", ""),
                ("team", ""),
                ("provider_account_id", ""),
                ("region", "eu-west-1"),
                ("cidr", "10.1.2.300/24"),
                ("external_id", "vpc-0abc"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("4 things to correct"), "{page}");
    at_field(&page, "n-name", "Name", "must be 1 to 100 characters");
    at_field(
        &page,
        "n-team",
        "Team",
        "is required: the team that will own the network",
    );
    at_field(
        &page,
        "n-account",
        "Provider account",
        "no provider account has this id",
    );
    assert!(
        page.contains("<a href=\"#n-cidr\">Existing CIDR</a>:"),
        "{page}"
    );
    assert!(
        !page.contains("provider_account_id:"),
        "no internal names: {page}"
    );
    assert!(
        page.contains(r#"name="cidr" value="10.1.2.300/24""#),
        "{page}"
    );
    assert!(
        page.contains(r#"name="external_id" value="vpc-0abc""#),
        "{page}"
    );

    // A new pool: a parse error of the form and the service's at once.
    let res = app
        .post_form(
            "/address-plan/pools",
            &[
                ("name", ""),
                ("cidr", "10.0.0.0/8"),
                ("default_prefix_length", "twenty"),
                ("labels", "region eu-west"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("3 things to correct"), "{page}");
    at_field(&page, "pool-name", "Name", "is required");
    at_field(
        &page,
        "pool-len",
        "Default prefix length",
        "must be a number such as 24",
    );
    at_field(
        &page,
        "pool-labels",
        "Labels",
        "&#34;region eu-west&#34; is not key=value",
    );
    assert!(
        page.contains(r#"name="labels" value="region eu-west""#),
        "{page}"
    );

    // The same pool twice: the second is a conflict, said in the form, input kept.
    let made = app
        .post_form(
            "/address-plan/pools",
            &[("name", "corp"), ("cidr", "10.0.0.0/8")],
        )
        .await;
    assert_eq!(made.status(), 303);
    let pool = made.headers()["location"].to_str().unwrap().to_owned();
    let res = app
        .post_form(
            "/address-plan/pools",
            &[
                ("name", "corp"),
                ("cidr", "172.16.0.0/12"),
                ("labels", "region=x"),
            ],
        )
        .await;
    let status = res.status();
    let page = res.text().await.unwrap();
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("One thing to correct"), "{page}");
    assert!(
        page.contains("<li>a pool named &#34;corp&#34; already exists at this level</li>"),
        "the conflict in the summary: {page}"
    );
    assert!(
        page.contains(r#"name="cidr" value="172.16.0.0/12""#),
        "{page}"
    );
    assert!(
        page.contains("<h2>New pool</h2>"),
        "still the plan page: {page}"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pools")
            .fetch_one(&app.pool)
            .await
            .unwrap(),
        1,
        "nothing saved"
    );

    // Allocating by hand: the typed length stays.
    let res = app
        .post_form(
            &format!("{pool}/allocations"),
            &[("prefix_length", "abc"), ("description", "staging VPC")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    at_field(
        &page,
        "alloc-len",
        "Prefix length",
        "must be a number such as 24",
    );
    assert!(
        page.contains(r#"name="prefix_length" value="abc""#),
        "{page}"
    );
    assert!(
        page.contains(r#"name="description" value="staging VPC""#),
        "{page}"
    );

    // An API token with no name and a bad expiry: both at once.
    let res = app
        .post_form(
            "/me/tokens",
            &[("name", " "), ("expires_in_days", "ninety")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("2 things to correct"), "{page}");
    at_field(
        &page,
        "token-name",
        "Name",
        "is required: say what uses the token",
    );
    at_field(
        &page,
        "token-days",
        "Expires after",
        "must be a whole number of days, or empty for no expiry",
    );
    assert!(page.contains(r#"value="ninety""#), "{page}");

    // A team member with a bad address: the chosen role stays chosen.
    let made = app
        .post_form("/teams", &[("slug", "payments"), ("name", "Payments")])
        .await;
    assert_eq!(made.status(), 303);
    let res = app
        .post_form(
            "/teams/payments/members",
            &[("email", "not-an-address"), ("role", "lead")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<a href=\"#member-email\">Email</a>:"),
        "{page}"
    );
    assert!(page.contains(r#"<option value="lead" selected>"#), "{page}");
    assert!(page.contains(r#"value="not-an-address""#), "{page}");

    // The same team again: a conflict at the top of the form.
    let res = app
        .post_form(
            "/teams",
            &[("slug", "payments"), ("name", "Payments again")],
        )
        .await;
    assert_eq!(res.status(), 409);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<li>a team named payments already exists</li>"),
        "{page}"
    );
    assert!(page.contains(r#"value="Payments again""#), "{page}");
}
