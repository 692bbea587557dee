//! Every page action has its API operation and CLI verb: the README's table
//! says which, and this test holds the table to the route tables and the CLI.

use clap::Subcommand;

/// The rows of the README's table: page route, API operation, CLI verb.
fn table() -> Vec<[String; 3]> {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("### Every page action in the API and the CLI")
        .expect("the README has the parity table");
    readme[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("## ") && !l.starts_with("### "))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            [cells[0].clone(), cells[1].clone(), cells[2].clone()]
        })
        .collect()
}

fn cli_has(words: &[&str]) -> bool {
    let mut command = crate::cli::Command::augment_subcommands(clap::Command::new("switchboard"));
    for word in words {
        match command.find_subcommand(word) {
            Some(sub) => command = sub.clone(),
            None => return false,
        }
    }
    true
}

#[test]
fn every_page_route_has_its_api_operation_and_cli_verb_in_the_readme() {
    let rows = table();
    let mut missing = Vec::new();
    for (method, path) in crate::web::ROUTES {
        let route = format!("{} {path}", method.to_uppercase());
        let Some(row) = rows.iter().find(|r| r[0] == route) else {
            missing.push(format!("{route}: no row in the README's parity table"));
            continue;
        };
        let api = &row[1];
        if !api.starts_with("none:") {
            let known = super::ROUTES
                .iter()
                .any(|(m, p)| format!("{} {p}", m.to_uppercase()) == *api);
            if !known {
                missing.push(format!("{route}: {api} is not an operation of /api/v1"));
            }
        }
        let cli = &row[2];
        if !cli.starts_with("none:") {
            let words: Vec<&str> = cli.split_whitespace().skip(1).collect();
            if !cli.starts_with("switchboard ") || !cli_has(&words) {
                missing.push(format!("{route}: `{cli}` is not a CLI verb"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
