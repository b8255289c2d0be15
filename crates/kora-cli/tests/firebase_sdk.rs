//! Firebase's own SDK against `kora serve`: runs the Node suite in `tests/firebase`
//! (`@firebase/app` + `@firebase/database` from npm, REST with plain HTTP) with this build's
//! binary. It installs the suite's packages (`npm ci`) when they are missing; without Node.js
//! it says it was skipped (in CI, where `.ci/run` installs them, it fails instead).

use std::path::PathBuf;
use std::process::Command;

fn npm(suite: &PathBuf, args: &[&str]) -> Option<std::process::ExitStatus> {
    Command::new("npm")
        .args(args)
        .current_dir(suite)
        .env("KORA_BIN", env!("CARGO_BIN_EXE_kora"))
        .status()
        .ok()
}

#[test]
fn firebase_sdk_suite() {
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/firebase");
    if !suite.join("node_modules").exists() {
        let installed = npm(
            &suite,
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        );
        if !installed.is_some_and(|s| s.success()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "`npm ci` in tests/firebase failed: {installed:?}"
            );
            println!(
                "skipped: the Firebase SDK suite needs Node.js and npm (npm ci in tests/firebase)"
            );
            return;
        }
    }
    let status = npm(&suite, &["test", "--silent"]).expect("npm runs");
    assert!(status.success(), "the Firebase SDK suite failed: {status}");
}
