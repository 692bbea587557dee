//! Plain-text output: aligned columns, `Key  value` blocks, and indented JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&headers).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One object as `Key  value` lines, keys aligned; `-` for an empty value.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max();
    let mut out = String::new();
    for (key, value) in pairs {
        let value = if value.is_empty() { "-" } else { value };
        let _ = writeln!(out, "{key:<width$}  {value}", width = width.unwrap_or(0));
    }
    out
}

/// `k=v, k=v`, or `-` when there are none.
pub fn key_values(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Indents compact JSON without parsing it, so keys keep the API's order and
/// numbers their exact text.
pub fn indent_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                while chars.next_if(|n| n.is_whitespace()).is_some() {}
                if chars.next_if_eq(&close).is_some() {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_by_their_widest_cell() {
        let rows = vec![
            vec!["corp".to_owned(), "10.0.0.0/8".to_owned(), "-".to_owned()],
            vec![
                "corp/eu-west".to_owned(),
                "10.16.0.0/12".to_owned(),
                "region=eu-west-1".to_owned(),
            ],
        ];
        assert_eq!(
            table(&["PATH", "CIDR", "LABELS"], &rows),
            "PATH          CIDR          LABELS\n\
             corp          10.0.0.0/8    -\n\
             corp/eu-west  10.16.0.0/12  region=eu-west-1\n"
        );
    }

    #[test]
    fn json_is_indented_with_keys_and_strings_untouched() {
        let compact = r#"{"id":"b","a":[1,2.50],"s":"x, {y}: \"z\"","e":{},"l":[]}"#;
        let pretty = indent_json(compact);
        assert_eq!(
            pretty,
            "{\n  \"id\": \"b\",\n  \"a\": [\n    1,\n    2.50\n  ],\n  \"s\": \"x, {y}: \\\"z\\\"\",\n  \"e\": {},\n  \"l\": []\n}\n"
        );
        let reparsed: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(
            reparsed,
            serde_json::from_str::<serde_json::Value>(compact).unwrap()
        );
    }
}
