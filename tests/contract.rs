//! The contract in `docs/DESIGN.md` is what scrapers, alerts and clients outside this repository
//! read: every metric the service exports and every error code it can answer must be there, and
//! nothing may be there that the service no longer has.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{get, repo_path, test_config, Served, TestApp};

fn design() -> String {
    std::fs::read_to_string(repo_path("docs/DESIGN.md"))
        .expect("docs/DESIGN.md is in the repository")
}

/// The first backticked name of each table row under `heading`, with the row's last column.
fn table(doc: &str, heading: &str) -> BTreeMap<String, String> {
    let section = doc
        .split("\n### ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/DESIGN.md has a `### {heading}` section"));
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let name = cells[0].trim_matches('`').to_string();
            (name, cells.last().unwrap().to_string())
        })
        .collect()
}

#[actix_web::test]
async fn every_metric_exported_is_in_the_contract_with_its_help_and_back() {
    let service = TestApp::start(test_config());
    // A fresh process: the contract's names are there before any of their series has a sample.
    let text = String::from_utf8(get(service.url("/metrics")).await.body.to_vec()).unwrap();
    let exported: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .map(|l| {
            let (name, help) = l.split_once(' ').unwrap();
            (name.to_string(), help.to_string())
        })
        .collect();
    let documented = table(&design(), "Metrics");
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        names(&exported),
        names(&documented),
        "/metrics and docs/DESIGN.md name the same metrics"
    );
    for (name, help) in &exported {
        assert_eq!(help, &documented[name], "help of {name}");
    }
}

/// The string each `fn code` of an error enum can answer, read from the source: a new kind
/// whose code the document does not name fails here.
fn codes_in(dir: &std::path::Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            codes_in(&path, out);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for body in text.split("fn code(&self) -> &'static str {").skip(1) {
            let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
            for literal in body.split('"').skip(1).step_by(2) {
                out.insert(literal.to_string());
            }
        }
    }
}

#[test]
fn every_error_code_is_in_the_contract_and_back() {
    let mut emitted = BTreeSet::new();
    codes_in(&repo_path("src"), &mut emitted);
    assert!(
        emitted.len() > 30,
        "the source was read: {} codes",
        emitted.len()
    );
    let documented: BTreeSet<String> = table(&design(), "Error codes").into_keys().collect();
    assert_eq!(
        emitted, documented,
        "the source and docs/DESIGN.md name the same codes"
    );
}

#[test]
fn nothing_points_outside_the_repository() {
    let mut files = vec![repo_path("README.md")];
    for dir in ["src", "docs", "benches", "tests"] {
        let mut stack = vec![repo_path(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with("node_modules") {
                        stack.push(path);
                    }
                } else if path
                    .extension()
                    .is_some_and(|e| e == "rs" || e == "md" || e == "html" || e == "js")
                {
                    files.push(path);
                }
            }
        }
    }
    let needle = ["..", "/shared/"].concat();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains(&needle),
            "{} points outside the repository",
            file.display()
        );
    }
}

#[test]
fn every_setting_is_in_the_contract_with_its_variable_and_back() {
    let help = oip_resolver::config::Config::variables_help();
    let settings: BTreeMap<String, String> = help
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (name, key) = (words.next()?, words.next()?);
            (name.starts_with("OIP_") && key.contains('.'))
                .then(|| (key.to_string(), name.to_string()))
        })
        .collect();
    assert!(
        settings.len() > 50,
        "the settings were read: {}",
        settings.len()
    );
    let documented = table(&design(), "Configuration keys");
    let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        keys(&settings),
        keys(&documented),
        "--help and docs/DESIGN.md name the same settings"
    );
    for (key, variable) in &settings {
        assert!(
            documented[key].contains(variable),
            "{key}: {variable} in {}",
            documented[key]
        );
    }
}
