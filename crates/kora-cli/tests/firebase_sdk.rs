//! Firebase's own SDK against `kora serve`: runs the Node suite in `tests/firebase`
//! (`@firebase/app` + `@firebase/database` from npm, REST with plain HTTP) with this build's
//! binary. It needs Node.js and `npm ci` in that directory, which `.ci/run` does; elsewhere
//! without them it says it was skipped.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn firebase_sdk_suite() {
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/firebase");
    if !suite.join("node_modules").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tests/firebase/node_modules is missing: run `npm ci` in tests/firebase"
        );
        println!("skipped: the Firebase SDK suite needs `npm ci` in tests/firebase");
        return;
    }
    let status = Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(&suite)
        .env("KORA_BIN", env!("CARGO_BIN_EXE_kora"))
        .status()
        .expect("npm runs");
    assert!(status.success(), "the Firebase SDK suite failed: {status}");
}
