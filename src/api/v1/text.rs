//! The server's text rule (`domain::text`: no control characters, line breaks
//! only in the fields that hold lines) written into the document: every string
//! a caller sends (in a body, the query or the path) that has no pattern,
//! format or enum of its own gets the rule's pattern. Clients and fuzzers then
//! know what is refused before they send it.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::domain::text::{LINES_PATTERN, ONE_LINE_PATTERN, holds_lines};

pub(super) fn add_patterns(doc: &mut Value) {
    let mut wanted = BTreeSet::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut().filter_map(Value::as_object_mut) {
                for p in op
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    if name == "Idempotency-Key"
                        && let Some(schema) = p.get_mut("schema").and_then(Value::as_object_mut)
                    {
                        // As `IdempotencyKey::parse` reads it.
                        schema.insert("pattern".into(), "^[!-~]{1,255}$".into());
                    }
                    if let Some(schema) = p.get_mut("schema") {
                        refs_in(schema, &mut wanted);
                        patch(schema, &name);
                    }
                }
                let bodies = op
                    .get_mut("requestBody")
                    .and_then(|b| b.get_mut("content"))
                    .and_then(Value::as_object_mut);
                for media in bodies.into_iter().flat_map(|c| c.values_mut()) {
                    if let Some(schema) = media.get_mut("schema") {
                        refs_in(schema, &mut wanted);
                        patch(schema, "body");
                    }
                }
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // Whatever a request's schema refers to, and what that refers to.
    let mut todo: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        let mut found = BTreeSet::new();
        if let Some(schema) = schemas.get(&name) {
            refs_in(schema, &mut found);
        }
        for other in found {
            if wanted.insert(other.clone()) {
                todo.push(other);
            }
        }
    }
    for name in &wanted {
        if let Some(schema) = schemas.get_mut(name) {
            patch(schema, "");
        }
    }
}

/// `^[allowed]*$` → `^[allowed]*[allowed but not space][allowed]*$`.
fn not_blank(pattern: &str) -> String {
    let class = pattern
        .strip_prefix("^[^")
        .and_then(|p| p.strip_suffix("]*$"))
        .unwrap_or_default();
    format!("^[^{class}]*[^\\s{class}][^{class}]*$")
}

/// The component names `schema` refers to.
fn refs_in(schema: &Value, found: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                found.insert(name.to_owned());
            }
            map.values().for_each(|v| refs_in(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, found)),
        _ => {}
    }
}

fn is_string(schema: &Map<String, Value>) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    }
}

/// Gives the strings of `schema` (named `field` where it is a property) the rule's pattern.
fn patch(schema: &mut Value, field: &str) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let own_rule = ["pattern", "format", "enum", "const", "$ref"];
    if is_string(map) && !own_rule.iter().any(|k| map.contains_key(*k)) {
        let pattern = if holds_lines(field) {
            LINES_PATTERN
        } else {
            ONE_LINE_PATTERN
        };
        // A required text is trimmed by the server: only spaces count as empty.
        let required = map.get("minLength").and_then(Value::as_u64).unwrap_or(0) > 0;
        let pattern = if required {
            not_blank(pattern)
        } else {
            pattern.to_owned()
        };
        map.insert("pattern".into(), pattern.into());
    }
    if let Some(properties) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            patch(property, name);
        }
    }
    if let Some(items) = map.get_mut("items") {
        patch(items, field);
    }
    // A map's keys and values are each one line.
    if let Some(values) = map.get_mut("additionalProperties")
        && values.is_object()
    {
        patch(values, "");
        map.insert(
            "propertyNames".into(),
            serde_json::json!({ "pattern": ONE_LINE_PATTERN }),
        );
    }
    for combined in ["allOf", "oneOf", "anyOf"] {
        for part in map
            .get_mut(combined)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            patch(part, field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_strings_get_the_rule_and_responses_keep_theirs() {
        let mut doc =
            serde_json::to_value(<super::super::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        add_patterns(&mut doc);
        let schema = |name: &str| doc["components"]["schemas"][name].clone();
        let request = schema("ConnectionRequest");
        let reason = &request["properties"]["reason"]["pattern"];
        assert_eq!(reason.as_str().unwrap(), not_blank(LINES_PATTERN));
        assert_eq!(
            request["properties"]["hostname"]["pattern"],
            ONE_LINE_PATTERN
        );
        // An id keeps its format, an enum its values.
        assert!(
            request["properties"]["source_network_id"]
                .get("pattern")
                .is_none()
        );
        // Only what is sent: a network as answered has no pattern added.
        assert!(
            schema("NetworkOut")["properties"]["name"]
                .get("pattern")
                .is_none()
        );
        // A required text must hold more than spaces.
        let comment = &schema("RejectionIn")["properties"]["comment"]["pattern"];
        assert_eq!(comment.as_str().unwrap(), not_blank(LINES_PATTERN));
        let blank = regex_lite::Regex::new(&not_blank("^[^a]*$")).unwrap();
        assert!(!blank.is_match(" \t ") && blank.is_match(" x ") && !blank.is_match("xa"));
        // Query and path parameters too.
        let list = &doc["paths"]["/api/v1/connections"]["get"]["parameters"];
        let team = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "team")
            .unwrap();
        assert_eq!(team["schema"]["pattern"], ONE_LINE_PATTERN);
    }
}
