//! The web client (clients/web) against this build's `kora serve`: its unit tests under
//! Node (the shared conformance vectors, and that the committed bundle served at
//! /v1/client.js is what its source builds), then its behaviour tests in a real Chromium
//! (Debian's `chromium`, driven by puppeteer-core): offline writes across reloads, tabs,
//! rollback, transactions, resume, a randomized schedule.
//!
//! It installs the npm packages (`npm ci`) when they are missing. Without Node.js or Chromium
//! it says it was skipped and passes, except in CI (`CI=true`), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/web")
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Option<ExitStatus> {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("KORA_BIN", env!("CARGO_BIN_EXE_kora"))
        .status()
        .ok()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Passes with a note outside CI; fails in CI, where everything must run.
fn missing(what: &str) {
    assert!(!in_ci(), "CI=true but {what}");
    println!("skipped: web client browser tests need chromium and node ({what})");
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.exists().then_some(path)
}

#[test]
fn web_client_unit_and_browser_tests() {
    let dir = client_dir();
    if !run(&dir, "node", &["--version"]).is_some_and(|s| s.success()) {
        return missing("node was not found");
    }
    if !dir.join("node_modules").exists() {
        let installed = run(
            &dir,
            "npm",
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        );
        if !installed.is_some_and(|s| s.success()) {
            return missing(&format!("`npm ci` in clients/web failed: {installed:?}"));
        }
    }
    let unit = run(&dir, "node", &["--test", "test/unit/"]).expect("node runs");
    assert!(unit.success(), "the web client's unit tests failed: {unit}");

    if chromium().is_none() {
        return missing("chromium was not found (apt-get install -y chromium, or set CHROMIUM)");
    }
    let browser = run(
        &dir,
        "node",
        &[
            "--test",
            "--test-concurrency=1",
            "--test-timeout=300000",
            "test/browser/",
        ],
    )
    .expect("node runs");
    assert!(
        browser.success(),
        "the web client's browser tests failed: {browser}"
    );
}
