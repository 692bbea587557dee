//! What text Switchboard accepts at its edge: no NUL (PostgreSQL refuses it in
//! text, so one such value would fail a whole transaction) and no other control
//! character, except line breaks and tabs in the few fields that hold several
//! lines. Checked once for every form, JSON body, query and path, so a field
//! added later is covered too.

/// Fields whose value may span lines (a reason, a comment…): the leaf name of
/// a form field or a JSON key.
const MULTI_LINE: &[&str] = &["reason", "comment", "description", "settings"];

/// The rule as a regular expression (ECMA and Python syntax), for the API
/// document: one line without control characters…
pub const ONE_LINE_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// …and, for the fields that hold several lines, line breaks and tabs allowed.
pub const LINES_PATTERN: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";

/// Whether `field` (a form field, a JSON key or path) may span lines.
pub fn holds_lines(field: &str) -> bool {
    MULTI_LINE.contains(&leaf(field))
}

/// Why `value` of `field` is refused, if it is.
pub fn refusal(field: &str, value: &str) -> Option<String> {
    let multi_line = holds_lines(field);
    let bad = value
        .chars()
        .find(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t')))?;
    Some(match bad {
        '\0' => "contains a NUL character (U+0000), which is not text".into(),
        '\n' | '\r' => "must be one line".into(),
        c => format!("contains the control character U+{:04X}", u32::from(c)),
    })
}

/// `tags.env` → `env`, `regions[2]` → `regions`.
fn leaf(field: &str) -> &str {
    let last = field.rsplit('.').next().unwrap_or(field);
    last.split('[').next().unwrap_or(last)
}

/// A JSON value's strings and keys that are refused: (field path, reason).
pub fn json_refusals(value: &serde_json::Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    walk(value, "", &mut found);
    found
}

fn walk(value: &serde_json::Value, path: &str, found: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let field = if path.is_empty() { "body" } else { path };
            if let Some(why) = refusal(field, s) {
                found.push((field.to_owned(), why));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                // Shown escaped: the name itself may hold what is refused.
                let shown = key.escape_debug();
                let field = if path.is_empty() {
                    shown.to_string()
                } else {
                    format!("{path}.{shown}")
                };
                // A key is a single line, whatever it names.
                if let Some(why) = refusal("key", key) {
                    found.push((field.clone(), format!("its name {why}")));
                }
                walk(item, &field, found);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Turns every number of `value` written with a fraction of zero (`24.0`)
/// into the integer it is, as JSON Schema reads it; whether any was.
pub fn whole_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let Some(f) = n.as_f64() else { return false };
            // Within ±2^53 an f64 holds every integer exactly.
            if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        // Every one is turned, so no short cut once one was.
        Value::Array(items) => {
            let mut any = false;
            for item in items {
                any |= whole_numbers_as_integers(item);
            }
            any
        }
        Value::Object(map) => {
            let mut any = false;
            for item in map.values_mut() {
                any |= whole_numbers_as_integers(item);
            }
            any
        }
        _ => false,
    }
}

/// One `name=value` pair of a form or query string, decoded.
pub type Pair = (String, String);

/// Decodes `application/x-www-form-urlencoded` bytes (a form or a query), refusing
/// what is not UTF-8 once decoded (the name of the field, or `None` when the
/// name itself is not), instead of turning it into U+FFFD as lenient decoders do.
pub fn form_pairs(bytes: &[u8]) -> Result<Vec<Pair>, Option<String>> {
    let mut pairs = Vec::new();
    for part in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match part.iter().position(|b| *b == b'=') {
            Some(at) => (&part[..at], &part[at + 1..]),
            None => (part, &b""[..]),
        };
        let name = String::from_utf8(unescape(name)).map_err(|_| None)?;
        let value = String::from_utf8(unescape(value)).map_err(|_| Some(name.clone()))?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `+` is a space and `%XX` a byte; a `%` not followed by two hex digits stays.
fn unescape(bytes: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_refused_but_lines_where_a_field_has_lines() {
        assert_eq!(refusal("name", "payments"), None);
        assert_eq!(refusal("name", "café ☕"), None);
        assert!(refusal("name", "a\0b").unwrap().contains("NUL"));
        assert_eq!(refusal("name", "a\nb").unwrap(), "must be one line");
        assert!(refusal("name", "a\u{7}b").unwrap().contains("U+0007"));
        assert!(refusal("name", "a\u{7f}").unwrap().contains("U+007F"));
        assert!(refusal("name", "a\u{85}").unwrap().contains("U+0085"));
        assert_eq!(refusal("reason", "first line\nsecond\tline\r\n"), None);
        assert!(
            refusal("reason", "no\0pe").is_some(),
            "not even in several lines"
        );
        assert_eq!(refusal("tags.reason", "a\nb"), None);
    }

    #[test]
    fn whole_numbers_written_with_a_fraction_are_integers() {
        let mut value = json!({"size": 24.0, "list": [1.5, -3.0, 7], "deep": {"n": 1e3}});
        assert!(whole_numbers_as_integers(&mut value));
        assert_eq!(
            value,
            json!({"size": 24, "list": [1.5, -3, 7], "deep": {"n": 1000}})
        );
        let mut plain = json!({"size": 24, "ratio": 0.5});
        assert!(!whole_numbers_as_integers(&mut plain));
        // Beyond 2^53 a float is not an exact integer: left to the field's own check.
        let mut huge = json!({"n": 1e300});
        assert!(!whole_numbers_as_integers(&mut huge));
    }

    /// The document's patterns say what `refusal` does, character by character.
    #[test]
    fn the_patterns_accept_exactly_what_the_rule_accepts() {
        // regex-lite writes \u{…} where the document's syntax writes \u….
        let compile = |pattern: &str| {
            let mut rust = String::new();
            let mut rest = pattern;
            while let Some(at) = rest.find("\\u") {
                rust.push_str(&rest[..at]);
                rust.push_str(&format!("\\x{{{}}}", &rest[at + 2..at + 6]));
                rest = &rest[at + 6..];
            }
            rust.push_str(rest);
            regex_lite::Regex::new(&rust).unwrap()
        };
        let (one_line, lines) = (compile(ONE_LINE_PATTERN), compile(LINES_PATTERN));
        for c in (0u32..0x2100).filter_map(char::from_u32) {
            let text = format!("a{c}b");
            assert_eq!(
                one_line.is_match(&text),
                refusal("name", &text).is_none(),
                "{c:?}"
            );
            assert_eq!(
                lines.is_match(&text),
                refusal("reason", &text).is_none(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn json_bodies_are_walked_and_fields_named_by_their_path() {
        let body = json!({
            "name": "ok",
            "tags": {"env": "pr\u{0}od", "ok": "yes"},
            "regions": ["eu", "u\u{1b}s"],
            "reason": "two\nlines",
            "a\u{0}b": 1
        });
        let mut found: Vec<String> = json_refusals(&body).into_iter().map(|(f, _)| f).collect();
        found.sort();
        assert_eq!(found, ["a\\0b", "regions[1]", "tags.env"]);
        assert!(json_refusals(&json!("\u{0}"))[0].0 == "body");
    }

    #[test]
    fn forms_decode_strictly() {
        assert_eq!(
            form_pairs(b"name=a+b&team=pay%2Fments&flag").unwrap(),
            [
                ("name".to_owned(), "a b".to_owned()),
                ("team".to_owned(), "pay/ments".to_owned()),
                ("flag".to_owned(), String::new())
            ]
        );
        assert_eq!(form_pairs(b"name=%FF%FE"), Err(Some("name".to_owned())));
        assert_eq!(form_pairs(b"%FF=x"), Err(None));
        assert_eq!(form_pairs(b"name=a%00b").unwrap()[0].1, "a\0b");
        assert_eq!(form_pairs(b"p=100%").unwrap()[0].1, "100%");
    }
}
