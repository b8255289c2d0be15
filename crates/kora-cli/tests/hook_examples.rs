//! The HTTP hook examples (examples/hooks: Python and Node.js, standard library only) beside
//! the stock `kora serve`, configured by the examples' own kora.toml: an order without items
//! is refused and nothing is written; a valid order commits with its `by_user` entry, which
//! follows the order to another user; the `quote` call answers; a request with the wrong
//! secret is refused by the hook, so the write is too.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::serve::{get, put, Server};
use serde_json::{json, Value};

const SECRET: &str = "example-secret-3f1c";

/// A hook example listening on a free port, killed when dropped.
struct Hook {
    child: Child,
    port: u16,
}

impl Hook {
    fn start(program: &str, script: &str) -> Option<Hook> {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hooks");
        let spawned = Command::new(program)
            .arg(examples.join(script))
            .env("HOOK_SECRET", SECRET)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var_os("CI").is_none() => {
                println!("skipped: {program} is not available ({e})");
                return None;
            }
            Err(e) => panic!("CI runs the {script} example: {program}: {e}"),
        };
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("a line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not start: {line:?}"));
        Some(Hook { child, port })
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kora serve` with the examples' kora.toml pointed at `port`, and `secret` in its
/// environment.
fn kora_for(port: u16, secret: &str, dir: &Path) -> Server {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hooks");
    let config = std::fs::read_to_string(examples.join("kora.toml")).expect("the example config");
    let config = config.replace("127.0.0.1:8088", &format!("127.0.0.1:{port}"));
    let file = dir.join("kora.toml");
    std::fs::write(&file, config).unwrap();
    let config_arg = file.to_string_lossy().to_string();
    Server::start_args(
        &dir.join("data"),
        &["--config", &config_arg],
        &[("HOOK_SECRET", secret)],
    )
}

fn quote(server: &Server, items: Value) -> Result<Value, String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kora_client::Client::connect(&server.url(""), Default::default())
            .await
            .map_err(|e| e.to_string())?;
        client
            .call("quote", json!({"items": items}))
            .await
            .map_err(|e| e.to_string())
    })
}

fn check_example(program: &str, script: &str) {
    let Some(hook) = Hook::start(program, script) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = kora_for(hook.port, SECRET, dir.path());

    let refused = put(&server, "orders/o1", r#"{"user": "ada"}"#);
    assert_eq!(
        refused["error"]["code"], "validation_failed",
        "{script}: {refused}"
    );
    assert_eq!(get(&server, "orders"), Value::Null, "{script}");

    let ok = put(&server, "orders/o1", r#"{"user": "ada", "items": ["tea"]}"#);
    assert!(ok.get("seq").is_some(), "{script}: {ok}");
    assert_eq!(
        get(&server, "by_user"),
        json!({"ada": {"o1": true}}),
        "{script}"
    );
    put(
        &server,
        "orders/o1",
        r#"{"user": "bob", "items": ["cake"]}"#,
    );
    assert_eq!(
        get(&server, "by_user"),
        json!({"bob": {"o1": true}}),
        "{script}"
    );

    assert_eq!(
        quote(&server, json!(["tea", "cake"])),
        Ok(json!({"total": 8}))
    );
    let unknown = quote(&server, json!(["caviar"])).unwrap_err();
    assert!(
        unknown.contains("no price for caviar"),
        "{script}: {unknown}"
    );
    server.stop();

    // A server with another secret: the hook refuses its requests (401), and the failure
    // policy refuses the write.
    let dir = tempfile::tempdir().unwrap();
    let wrong = kora_for(hook.port, "not the secret", dir.path());
    let refused = put(&wrong, "orders/o2", r#"{"user": "ada", "items": ["tea"]}"#);
    assert_eq!(
        refused["error"]["code"], "unavailable",
        "{script}: {refused}"
    );
    assert_eq!(get(&wrong, "orders"), Value::Null, "{script}");
    wrong.stop();
}

#[test]
fn the_python_hook_example_validates_denormalises_and_serves_a_call() {
    check_example("python3", "hook.py");
}

#[test]
fn the_node_hook_example_validates_denormalises_and_serves_a_call() {
    check_example("node", "hook.mjs");
}
