//! Is a new version of the v1 document still v1? What a program written
//! against the old one relies on must hold in the new one: every path and
//! operation, every parameter where it was and no new required one, every
//! field an answer had with its type and enum values, no new required field in
//! a request and nothing a request could send refused. Additions are fine.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Which way a schema travels: what the server must keep accepting, or what
/// clients rely on getting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Request,
    Response,
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The breaking changes from `old` to `new`, each said in a line.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let empty = Map::new();
    let paths = |doc: &Value| doc["paths"].as_object().cloned().unwrap_or_default();
    let (old_paths, new_paths) = (paths(old), paths(new));
    for (path, old_item) in &old_paths {
        let Some(new_item) = new_paths.get(path) else {
            found.push(format!("{path}: the path was removed"));
            continue;
        };
        for method in METHODS {
            let Some(old_op) = old_item.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            let Some(new_op) = new_item.get(method) else {
                found.push(format!("{at}: the operation was removed"));
                continue;
            };
            let docs = Docs { old, new };
            docs.parameters(&at, old_op, new_op, &mut found);
            docs.request_body(&at, old_op, new_op, &mut found);
            let responses = |op: &Value| op["responses"].as_object().unwrap_or(&empty).clone();
            let new_responses = responses(new_op);
            for (status, old_answer) in responses(old_op) {
                if !status.starts_with('2') {
                    continue;
                }
                let Some(new_answer) = new_responses.get(&status) else {
                    found.push(format!("{at}: the {status} answer was removed"));
                    continue;
                };
                let schema = |a: &Value| a["content"]["application/json"]["schema"].clone();
                docs.schema(
                    &format!("{at} → {status}"),
                    &schema(&old_answer),
                    &schema(new_answer),
                    Way::Response,
                    &mut found,
                    0,
                );
            }
        }
    }
    found
}

struct Docs<'a> {
    old: &'a Value,
    new: &'a Value,
}

/// A schema reduced to what a client can rely on.
#[derive(Default)]
struct Shape {
    types: BTreeSet<String>,
    enumeration: Option<BTreeSet<String>>,
    properties: Map<String, Value>,
    required: BTreeSet<String>,
    items: Option<Value>,
    /// Any other `oneOf` member with a shape of its own is kept whole.
    open: bool,
}

fn resolve<'v>(doc: &'v Value, schema: &'v Value) -> &'v Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix("#/components/schemas/") {
                Some(name) => s = &doc["components"]["schemas"][name],
                None => return s,
            },
            None => return s,
        }
    }
    s
}

fn shape(doc: &Value, schema: &Value) -> Shape {
    let mut out = Shape::default();
    add_shape(doc, schema, &mut out, 0);
    out
}

fn add_shape(doc: &Value, schema: &Value, out: &mut Shape, depth: usize) {
    if depth > 8 {
        return;
    }
    let s = resolve(doc, schema);
    match &s["type"] {
        Value::String(t) => {
            out.types.insert(t.clone());
        }
        Value::Array(ts) => out
            .types
            .extend(ts.iter().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    if let Some(values) = s["enum"].as_array() {
        let values = values.iter().map(|v| v.to_string());
        match &mut out.enumeration {
            Some(set) => set.extend(values),
            None => out.enumeration = Some(values.collect()),
        }
    }
    if let Some(props) = s["properties"].as_object() {
        out.types.insert("object".into());
        for (k, v) in props {
            out.properties.insert(k.clone(), v.clone());
        }
    }
    if let Some(req) = s["required"].as_array() {
        out.required
            .extend(req.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if !s["items"].is_null() {
        out.items = Some(s["items"].clone());
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for member in s[key].as_array().into_iter().flatten() {
            add_shape(doc, member, out, depth + 1);
        }
    }
    if s.as_object().is_some_and(|o| o.is_empty()) {
        out.open = true;
    }
}

impl Docs<'_> {
    fn parameters(&self, at: &str, old_op: &Value, new_op: &Value, found: &mut Vec<String>) {
        let list = |doc: &Value, op: &Value| -> Vec<Value> {
            op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(doc, p).clone())
                .collect()
        };
        let (old_params, new_params) = (list(self.old, old_op), list(self.new, new_op));
        let key = |p: &Value| (p["name"].as_str().unwrap_or("").to_owned(), p["in"].clone());
        for new_param in &new_params {
            let was = old_params.iter().any(|p| key(p) == key(new_param));
            if !was && new_param["required"] == Value::Bool(true) {
                found.push(format!(
                    "{at}: the new parameter {} is required",
                    new_param["name"]
                ));
            }
        }
        for old_param in &old_params {
            let name = old_param["name"].as_str().unwrap_or("");
            match new_params.iter().find(|p| key(p) == key(old_param)) {
                None => {
                    let moved = new_params.iter().find(|p| p["name"] == old_param["name"]);
                    match moved {
                        Some(m) => found.push(format!(
                            "{at}: the parameter {name} moved from {} to {}",
                            old_param["in"], m["in"]
                        )),
                        None => found.push(format!("{at}: the parameter {name} was removed")),
                    }
                }
                Some(new_param) => {
                    if old_param["required"] != Value::Bool(true)
                        && new_param["required"] == Value::Bool(true)
                    {
                        found.push(format!("{at}: the parameter {name} became required"));
                    }
                    self.schema(
                        &format!("{at} parameter {name}"),
                        &old_param["schema"],
                        &new_param["schema"],
                        Way::Request,
                        found,
                        0,
                    );
                }
            }
        }
    }

    fn request_body(&self, at: &str, old_op: &Value, new_op: &Value, found: &mut Vec<String>) {
        let (old_body, new_body) = (&old_op["requestBody"], &new_op["requestBody"]);
        if old_body.is_null() {
            if new_body["required"] == Value::Bool(true) {
                found.push(format!("{at}: a body became required"));
            }
            return;
        }
        let schema = |b: &Value| b["content"]["application/json"]["schema"].clone();
        self.schema(
            &format!("{at} body"),
            &schema(old_body),
            &schema(new_body),
            Way::Request,
            found,
            0,
        );
    }

    fn schema(
        &self,
        at: &str,
        old: &Value,
        new: &Value,
        way: Way,
        found: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 12 || old.is_null() {
            return;
        }
        if new.is_null() {
            found.push(format!("{at}: its schema was removed"));
            return;
        }
        let (o, n) = (shape(self.old, old), shape(self.new, new));
        if o.open {
            return;
        }
        // "integer" is a kind of "number": narrowing a response to it is fine.
        let widen = |t: &BTreeSet<String>| -> BTreeSet<String> {
            let mut t = t.clone();
            if t.contains("number") {
                t.insert("integer".into());
            }
            t
        };
        if !o.types.is_empty() && !n.open {
            let lost: Vec<_> = match way {
                // Every type the server accepted, it still accepts.
                Way::Request => o.types.difference(&widen(&n.types)).cloned().collect(),
                // Every type it answers with, a client already expects.
                Way::Response => n.types.difference(&widen(&o.types)).cloned().collect(),
            };
            if !lost.is_empty() && !n.types.is_empty() {
                found.push(format!(
                    "{at}: the type changed from {} to {}",
                    list(&o.types),
                    list(&n.types)
                ));
            }
        }
        if let Some(old_values) = &o.enumeration {
            let new_values = n.enumeration.clone().unwrap_or_default();
            let removed: BTreeSet<_> = old_values.difference(&new_values).cloned().collect();
            if n.enumeration.is_some() && !removed.is_empty() {
                found.push(format!("{at}: the values {} were removed", list(&removed)));
            }
        }
        for (name, old_prop) in &o.properties {
            let field = format!("{at}.{name}");
            match n.properties.get(name) {
                None => found.push(format!("{field}: the field was removed")),
                Some(new_prop) => {
                    if way == Way::Response
                        && o.required.contains(name)
                        && !n.required.contains(name)
                    {
                        found.push(format!("{field}: the field may now be absent"));
                    }
                    self.schema(&field, old_prop, new_prop, way, found, depth + 1);
                }
            }
        }
        if way == Way::Request {
            for name in n.required.difference(&o.required) {
                found.push(format!("{at}.{name}: a new required field"));
            }
        }
        if let (Some(oi), Some(ni)) = (&o.items, &n.items) {
            self.schema(&format!("{at}[]"), oi, ni, way, found, depth + 1);
        }
    }
}

fn list(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The document as committed when v1 was frozen; `switchboard openapi >
    /// src/api/v1/snapshot.json` records an addition on purpose.
    const SNAPSHOT: &str = include_str!("snapshot.json");

    fn live() -> Value {
        serde_json::from_str(&super::super::document()).unwrap()
    }

    #[test]
    fn the_live_document_keeps_every_promise_of_the_frozen_v1() {
        let frozen: Value = serde_json::from_str(SNAPSHOT).unwrap();
        let broken = breaking_changes(&frozen, &live());
        assert!(
            broken.is_empty(),
            "the v1 document broke what it promised (v1 only grows):\n  {}",
            broken.join("\n  ")
        );
    }

    fn doc(connection: Value, query: Value) -> Value {
        json!({
            "paths": {"/api/v1/connections": {
                "get": {"parameters": query,
                        "responses": {"200": {"content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}}}}}}},
                "post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ask"}}}},
                         "responses": {"201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Connection"}}}}}}
            }},
            "components": {"schemas": {
                "Connection": connection,
                "Ask": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}, "ports": {"type": ["string", "null"]}}}
            }}
        })
    }

    fn connection() -> Value {
        json!({"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending_approval", "active"]}}})
    }

    fn status_param() -> Value {
        json!([{"name": "status", "in": "query", "required": false, "schema": {"type": "string"}}])
    }

    #[test]
    fn a_removed_response_field_is_breaking_and_an_added_one_is_not() {
        let old = doc(connection(), status_param());
        let mut fewer = connection();
        fewer["properties"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        let broken = breaking_changes(&old, &doc(fewer, status_param()));
        assert!(
            broken
                .iter()
                .any(|b| b == "GET /api/v1/connections → 200[].status: the field was removed"),
            "{broken:?}"
        );
        let mut more = connection();
        more["properties"]["summary"] = json!({"type": "string"});
        assert_eq!(
            breaking_changes(&old, &doc(more, status_param())),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_removed_enum_value_and_a_changed_type_are_breaking() {
        let old = doc(connection(), status_param());
        let mut changed = connection();
        changed["properties"]["status"]["enum"] = json!(["active"]);
        changed["properties"]["id"] = json!({"type": "integer"});
        let broken = breaking_changes(&old, &doc(changed, status_param()));
        assert!(
            broken
                .iter()
                .any(|b| b.contains("status: the values \"pending_approval\" were removed")),
            "{broken:?}"
        );
        assert!(
            broken
                .iter()
                .any(|b| b.contains("id: the type changed from string to integer")),
            "{broken:?}"
        );
        let mut added = connection();
        added["properties"]["status"]["enum"] = json!(["pending_approval", "active", "drifted"]);
        assert!(breaking_changes(&old, &doc(added, status_param())).is_empty());
    }

    #[test]
    fn a_moved_or_new_required_parameter_and_a_new_required_field_are_breaking() {
        let old = doc(connection(), status_param());
        let moved = json!([{"name": "status", "in": "path", "required": true, "schema": {"type": "string"}}]);
        let broken = breaking_changes(&old, &doc(connection(), moved));
        assert!(
            broken
                .iter()
                .any(|b| b.contains("the parameter status moved from \"query\" to \"path\"")),
            "{broken:?}"
        );
        let mut new = doc(connection(), status_param());
        new["components"]["schemas"]["Ask"]["required"] = json!(["reason", "ports"]);
        let broken = breaking_changes(&old, &new);
        assert!(
            broken
                .iter()
                .any(|b| b == "POST /api/v1/connections body.ports: a new required field"),
            "{broken:?}"
        );
        // A request type no longer accepting null is a narrowing.
        let mut narrowed = doc(connection(), status_param());
        narrowed["components"]["schemas"]["Ask"]["properties"]["ports"] = json!({"type": "string"});
        assert!(!breaking_changes(&old, &narrowed).is_empty());
    }

    #[test]
    fn a_removed_path_or_operation_is_breaking() {
        let old = doc(connection(), status_param());
        let mut new = old.clone();
        new["paths"]["/api/v1/connections"]
            .as_object_mut()
            .unwrap()
            .remove("post");
        assert_eq!(
            breaking_changes(&old, &new),
            ["POST /api/v1/connections: the operation was removed"]
        );
        let gone = json!({"paths": {}, "components": old["components"].clone()});
        assert_eq!(
            breaking_changes(&old, &gone),
            ["/api/v1/connections: the path was removed"]
        );
    }
}
