//! docs/client.md's example program runs against a real server, and the page shows it
//! verbatim.

mod common;

use common::server_in;

const EXAMPLE: &str = include_str!("../examples/notes.rs");
const DOC: &str = include_str!("../../../docs/client.md");

#[test]
fn the_docs_show_the_example_verbatim() {
    let body = EXAMPLE
        .split_once("\n\n")
        .map(|(_, rest)| rest)
        .expect("the example has a header");
    assert!(
        DOC.contains(body),
        "docs/client.md must include examples/notes.rs (after its header) verbatim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_program_runs() {
    // `cargo test` builds the examples beside the test binaries.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/notes");
    if !example.exists() {
        panic!(
            "{} not built: run the tests with cargo test",
            example.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let output = tokio::process::Command::new(&example)
        .arg("water the plants")
        .env("KORA_URL", format!("http://{}", running.addr))
        .env("NOTES_CACHE", dir.path().join("cache"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("committed as #1"), "{stdout}");
    assert!(stdout.contains("[ ] water the plants"), "{stdout}");
}
