//! Firebase's own SDKs against `kora serve`: runs the Node suite in `tests/firebase`
//! (`@firebase/app` + `@firebase/database` and the Node Admin SDK from npm, the Python Admin
//! SDK from PyPI, the Java Admin SDK from Maven Central, REST with plain HTTP) with this
//! build's binary. It installs the suite's packages (`npm ci`, a virtual environment with
//! `pip`, `mvn package`) when they are missing; without Node.js it says it was skipped (in
//! CI, where `.ci/run` installs them, it fails instead), and the suite's Python and Java
//! tests say so when theirs could not be installed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `program args` ran in `dir` and succeeded.
fn run(dir: &Path, program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes `tests/firebase/.venv` with the Python Admin SDK unless it is there; false when it
/// cannot (no Python, no network).
fn python_admin_sdk(suite: &Path) -> bool {
    let python = suite.join(".venv/bin/python");
    if run(suite, &python, &["-c", "import firebase_admin"]) {
        return true;
    }
    run(suite, Path::new("python3"), &["-m", "venv", ".venv"])
        && run(
            suite,
            &python,
            &[
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                "admin-python/requirements.txt",
            ],
        )
}

/// Builds `tests/firebase/admin-java` (the Java Admin SDK's check) with Maven; false when it
/// cannot (no Maven, no network).
fn java_admin_sdk(suite: &Path) -> bool {
    run(
        &suite.join("admin-java"),
        Path::new("mvn"),
        &["-q", "-B", "package", "-DskipTests"],
    )
}

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
    // Without them, the suite's Python and Java tests say they were skipped (and fail under
    // CI=true).
    if !python_admin_sdk(&suite) {
        println!("the Python Admin SDK could not be installed in tests/firebase/.venv");
    }
    if !java_admin_sdk(&suite) {
        println!("the Java Admin SDK check could not be built in tests/firebase/admin-java");
    }
    let status = npm(&suite, &["test", "--silent"]).expect("npm runs");
    assert!(status.success(), "the Firebase SDK suite failed: {status}");
}
