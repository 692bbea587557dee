//! The binary refuses bad configuration with one message and exit code 2.

use std::process::Command;

fn switchboard(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn bad_values_are_all_listed_with_exit_code_2_and_no_secret() {
    let out = switchboard(
        &[
            ("DATABASE_URL", "postgres://admin:hunter2@db:5432/x"),
            ("SWITCHBOARD_BIND", "localhost"),
            ("SWITCHBOARD_LOG_FORMAT", "yaml"),
            ("SWITCHBOARD_SESSION_KEY", "hunter2-too-short"),
            ("SWITCHBOARD_SMTP_URL", "imap://mail"),
        ],
        &["serve"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid configuration"), "{stderr}");
    assert!(
        stderr.contains("SWITCHBOARD_BIND: \"localhost\" is not an address:port"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SWITCHBOARD_LOG_FORMAT: \"yaml\" is not one of: pretty, json"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SWITCHBOARD_SESSION_KEY: must be at least 64 characters"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SWITCHBOARD_SMTP_URL: must look like smtp://"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("DATABASE_URL"),
        "a valid variable is not reported: {stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "secrets stay out of messages: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn serve_without_a_database_or_a_way_to_sign_in_says_what_to_set() {
    let out = switchboard(&[], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATABASE_URL: must be set for `serve`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SWITCHBOARD_OIDC_ISSUER: must be set for `serve`"),
        "{stderr}"
    );
}

/// A production web process whose identity-provider settings went missing
/// refuses to start instead of letting anyone in through the development
/// sign-in; a worker without SMTP refuses instead of hiding the mail.
#[test]
fn serve_and_work_fail_closed_without_sign_in_or_mail() {
    let db = ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none");
    let out = switchboard(&[db, ("SWITCHBOARD_BIND", "127.0.0.1:0")], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SWITCHBOARD_OIDC_ISSUER: must be set for `serve`")
            && stderr.contains("SWITCHBOARD_DEV_SIGN_IN=1"),
        "{stderr}"
    );
    let out = switchboard(&[db], &["work"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SWITCHBOARD_SMTP_URL: must be set for `work`")
            && stderr.contains("SWITCHBOARD_OUTBOX=1"),
        "{stderr}"
    );
    // The switches cannot be turned on beside what production uses.
    let out = switchboard(
        &[
            db,
            ("SWITCHBOARD_OIDC_ISSUER", "https://idp.example"),
            ("SWITCHBOARD_OIDC_CLIENT_ID", "sb"),
            ("SWITCHBOARD_SESSION_KEY", &"k".repeat(64)),
            ("SWITCHBOARD_DEV_SIGN_IN", "1"),
        ],
        &["serve"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SWITCHBOARD_DEV_SIGN_IN: cannot be on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let out = switchboard(&[], &["launch"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'launch'"),
        "{stderr}"
    );
}
