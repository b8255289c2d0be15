//! ARCHITECTURE.md's crate table tells the truth: each workspace crate's dependencies within
//! the workspace are exactly those `cargo metadata` reports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Each crate's folder and its normal dependencies on other workspace crates, by short name
/// (`kora-core` → `core`), from `cargo metadata`.
fn from_metadata(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let manifest = Path::new(package["manifest_path"].as_str().expect("manifest path"));
        let folder = manifest
            .parent()
            .expect("a folder")
            .strip_prefix(root)
            .expect("inside");
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null() && d["path"].is_string())
            .map(|d| short(d["name"].as_str().expect("a name")))
            .collect();
        crates.insert(folder.display().to_string(), deps);
    }
    crates
}

fn short(name: &str) -> String {
    name.trim_start_matches("kora-").to_string()
}

/// The crate table's rows: folder → the names in its "depends on" column (words before any
/// parenthesis; `—` is none). Rows outside the Cargo workspace (clients, fuzz) are left out.
fn from_table(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        let folder = cells[0].trim().trim_matches('`').to_string();
        let deps = cells.last().expect("a depends-on cell");
        let names = deps
            .split(',')
            .map(|d| d.split('(').next().unwrap_or_default().trim())
            .filter(|d| !d.is_empty() && *d != "—")
            .map(String::from)
            .collect();
        rows.insert(folder, names);
    }
    rows
}

#[test]
fn the_crate_table_matches_cargo_metadata() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("the workspace root");
    let actual = from_metadata(&root);
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let table = from_table(&text);
    for (folder, deps) in &actual {
        let listed = table
            .get(folder)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md has no row for {folder}"));
        assert_eq!(listed, deps, "ARCHITECTURE.md's dependencies of {folder}");
    }
}
