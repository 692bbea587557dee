//! Settings read from the environment: defaults, problems named, fail closed.

use super::*;
use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_need_no_variables() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(s.base_url.as_str(), "http://127.0.0.1:8080/");
    assert!(s.database_url.is_none());
    assert!(
        !s.mail_goes_to_outbox() && !s.dev_sign_in,
        "only `up` turns them on"
    );
    assert_eq!(s.log_format, LogFormat::Pretty);
    assert_eq!(s.mail_from.as_str(), "switchboard@localhost");
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let err = settings(&[
        ("SWITCHBOARD_BIND", "nowhere"),
        ("SWITCHBOARD_LOG_FORMAT", "xml"),
        ("SWITCHBOARD_SESSION_KEY", "short"),
        ("DATABASE_URL", "mysql://x@y/z"),
        ("SWITCHBOARD_SMTP_URL", "http://mail"),
        ("SWITCHBOARD_MAIL_FROM", "not an address"),
        ("SWITCHBOARD_BASE_URL", "ftp://x"),
        ("SWITCHBOARD_LOG", "=[="),
    ])
    .unwrap_err();
    let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
    assert_eq!(
        vars,
        [
            "DATABASE_URL",
            "SWITCHBOARD_BIND",
            "SWITCHBOARD_BASE_URL",
            "SWITCHBOARD_SMTP_URL",
            "SWITCHBOARD_MAIL_FROM",
            "SWITCHBOARD_SESSION_KEY",
            "SWITCHBOARD_LOG",
            "SWITCHBOARD_LOG_FORMAT",
        ]
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let err = settings(&[
        ("DATABASE_URL", "postgres://u:hunter2@[bad"),
        ("SWITCHBOARD_SESSION_KEY", "hunter2"),
    ])
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let ok = settings(&[("SWITCHBOARD_SMTP_URL", "smtp://u:hunter2@mail:25")]).unwrap();
    assert!(!format!("{ok:?}").contains("hunter2"));
}

#[test]
fn mail_from_accepts_name_and_address() {
    let s = settings(&[("SWITCHBOARD_MAIL_FROM", "Net Team <net@example.com>")]).unwrap();
    assert_eq!(s.mail_from_name, "Net Team");
    assert_eq!(s.mail_from.as_str(), "net@example.com");
}

#[test]
fn development_conveniences_exist_only_under_up_or_a_switch() {
    let up = settings(&[]).unwrap().for_process(Process::Up).unwrap();
    assert!(up.dev_sign_in && up.outbox);

    let db = ("DATABASE_URL", "postgres://db/sb");
    let err = settings(&[db])
        .unwrap()
        .for_process(Process::Serve)
        .unwrap_err();
    assert_eq!(err.0[0].variable, "SWITCHBOARD_OIDC_ISSUER");
    assert!(
        err.to_string().contains("SWITCHBOARD_DEV_SIGN_IN=1"),
        "{err}"
    );
    let err = settings(&[db])
        .unwrap()
        .for_process(Process::Work)
        .unwrap_err();
    assert_eq!(err.0[0].variable, "SWITCHBOARD_SMTP_URL");
    let err = settings(&[])
        .unwrap()
        .for_process(Process::Work)
        .unwrap_err();
    let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
    assert_eq!(vars, ["DATABASE_URL", "SWITCHBOARD_SMTP_URL"]);
    // The web server sends no mail; the workers sign nobody in.
    let serve = settings(&[db, ("SWITCHBOARD_DEV_SIGN_IN", "1")])
        .unwrap()
        .for_process(Process::Serve)
        .unwrap();
    assert!(serve.dev_sign_in && !serve.outbox);
    let work = settings(&[db, ("SWITCHBOARD_OUTBOX", "1")])
        .unwrap()
        .for_process(Process::Work)
        .unwrap();
    assert!(work.outbox && !work.dev_sign_in);
    let idp = [
        ("SWITCHBOARD_OIDC_ISSUER", "https://idp.example"),
        ("SWITCHBOARD_OIDC_CLIENT_ID", "sb"),
        ("SWITCHBOARD_SESSION_KEY", &"k".repeat(64)),
        ("SWITCHBOARD_SMTP_URL", "smtp://mail:25"),
    ];
    let up = settings(&idp).unwrap().for_process(Process::Up).unwrap();
    assert!(settings(&idp).unwrap().for_process(Process::Other).is_ok());
    assert!(
        !up.dev_sign_in && !up.outbox,
        "never alongside what production uses"
    );

    let mut both = idp.to_vec();
    both.push(("SWITCHBOARD_DEV_SIGN_IN", "1"));
    both.push(("SWITCHBOARD_OUTBOX", "true"));
    let vars: Vec<_> = settings(&both)
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.variable)
        .collect();
    assert_eq!(vars, ["SWITCHBOARD_DEV_SIGN_IN", "SWITCHBOARD_OUTBOX"]);
    let err = settings(&[("SWITCHBOARD_OUTBOX", "yes")]).unwrap_err();
    assert_eq!(err.0[0].variable, "SWITCHBOARD_OUTBOX");
}

#[test]
fn empty_values_count_as_unset() {
    let s = settings(&[("DATABASE_URL", ""), ("SWITCHBOARD_BIND", " ")]).unwrap();
    assert!(s.database_url.is_none());
    assert_eq!(s.bind.to_string(), DEFAULT_BIND);
}
