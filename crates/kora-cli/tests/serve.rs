//! The real `kora` binary: it serves, keeps data across restarts and `kill -9`, and its
//! client commands talk to it.

mod common;

use common::serve::{get, kora, put, Server, KORA};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

#[test]
fn data_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    assert_eq!(
        put(&server, "todos/t1", r#"{"text": "kept"}"#)["seq"],
        json!(1)
    );
    server.stop();
    let server = Server::start(dir.path());
    assert_eq!(get(&server, "todos/t1"), json!({"text": "kept"}));
    assert_eq!(
        put(&server, "todos/t2", r#"{"text": "next"}"#)["seq"],
        json!(2)
    );
    server.stop();
}

#[test]
fn an_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let server = Server::start(dir.path());
        let reply = put(&server, &format!("rounds/r{round}"), &round.to_string());
        assert!(reply["seq"].is_u64(), "{reply}");
        server.kill_9(); // right after the acknowledgement
    }
    let server = Server::start(dir.path());
    assert_eq!(
        get(&server, "rounds"),
        json!({"r0": 0, "r1": 1, "r2": 2, "r3": 3, "r4": 4})
    );
    server.stop();
}

#[test]
fn the_cli_sets_merges_gets_deletes_and_watches() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut watch = Command::new(KORA)
        .args(["watch", "todos", "--url", &server.url("")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let _watch = Killed(watch);
    let mut events = BufReader::new(stdout).lines();
    let first: Value = serde_json::from_str(&events.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], json!("value"));

    assert!(kora(&server, &["set", "todos/t1", r#"{"text": "a"}"#])
        .status
        .success());
    assert!(kora(&server, &["merge", "todos/t1", r#"{"done": true}"#])
        .status
        .success());
    let got = kora(&server, &["get", "todos/t1"]);
    let value: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(value, json!({"text": "a", "done": true}));
    let bad = kora(&server, &["set", "todos//x", "1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("segment 1 is empty"));
    let refused = kora(&server, &["merge", "todos/t1", "[1]"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("bad_request"),
        "the server's code is shown"
    );
    assert!(kora(&server, &["delete", "todos/t1"]).status.success());

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event: Value = serde_json::from_str(&events.next().unwrap().unwrap()).unwrap();
        seen.push(event["event"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen, ["change", "change", "change"]);
    server.stop();
}

#[test]
fn the_cli_writes_on_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ok = |args: &[&str]| {
        let out = kora(&server, args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?}: {stderr}");
    };
    ok(&["set", "stock/a", "3", "--if-absent"]);
    let taken = kora(&server, &["set", "stock/a", "9", "--if-absent"]);
    assert!(!taken.status.success());
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(
        stderr.contains("conflict") && stderr.contains("stock/a now holds 3"),
        "{stderr}"
    );
    ok(&["set", "stock/a", "2", "--if-equals", "3"]);
    let stale = kora(
        &server,
        &["merge", "stock", r#"{"a": 7}"#, "--if-equals", "{}"],
    );
    assert!(!stale.status.success());
    let got = kora(&server, &["get", "stock/a", "--seq"]);
    let read: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(read["value"], json!(2));
    let seq = read["seq"].to_string();
    ok(&["set", "stock/a", "1", "--if-unchanged-since", &seq]);
    let late = kora(
        &server,
        &["delete", "stock/a", "--if-unchanged-since", &seq],
    );
    assert!(!late.status.success(), "stock/a changed after {seq}");
    ok(&["delete", "stock/a", "--if-equals", "1"]);
    assert_eq!(get(&server, "/v1/data/stock/a"), Value::Null);
    server.stop();
}

/// Kills its process when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tree of `users` leaves spread over several export pages, with keys and values that
/// need escaping.
fn sample_tree(users: usize) -> Value {
    let mut tree = serde_json::Map::new();
    for i in 0..users {
        tree.insert(
            format!("u{i:05}"),
            json!({
                "name": format!("user \"{i}\"\nsecond line"),
                "age": i % 90,
                "score": i as f64 / 7.0,
                "active": i % 2 == 0,
                "tags": {"ä ö": "unicode", "a b": i},
            }),
        );
    }
    json!({"users": tree, "config": {"title": "dump", "max": 185446744703709540000.0}})
}

fn kora_with_io(
    server: &Server,
    args: &[&str],
    stdin: Stdio,
    stdout: Stdio,
) -> std::process::Output {
    Command::new(KORA)
        .args(args)
        .args(["--url", &server.url("")])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("kora runs")
}

#[test]
fn export_then_import_copies_the_tree_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let source = Server::start(&dir.path().join("source"));
    let tree = sample_tree(500); // 3,002 leaves: four pages
    let body = dir.path().join("body.json");
    std::fs::write(&body, json!({"merge": tree, "delete": {}}).to_string()).unwrap();
    let output = Command::new("curl")
        .args(["-s", "-X", "POST", &source.url("/v1/mutate"), "-d"])
        .arg(format!("@{}", body.display()))
        .output()
        .expect("curl");
    assert!(output.status.success());

    let dump = dir.path().join("dump.jsonl");
    let out = kora_with_io(
        &source,
        &["export"],
        Stdio::null(),
        std::fs::File::create(&dump).unwrap().into(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&dump).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3_003, "every leaf, then the end line");
    assert_eq!(lines.last().unwrap(), &json!({"end": {"leaves": 3_002}}));
    assert_eq!(
        lines[0],
        json!({"path": "config/max", "value": 185446744703709540000.0})
    );

    // A subtree exports only its own leaves.
    let out = kora_with_io(
        &source,
        &["export", "users/u00001"],
        Stdio::null(),
        Stdio::piped(),
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);

    let target = Server::start(&dir.path().join("target"));
    let out = kora_with_io(
        &target,
        &["import"],
        std::fs::File::open(&dump).unwrap().into(),
        Stdio::null(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = |server: &Server| {
        let output = Command::new("curl")
            .args(["-s", &server.url("/v1/data")])
            .output()
            .expect("curl");
        serde_json::from_slice::<Value>(&output.stdout).expect("a JSON reply")
    };
    // Not assert_eq: a difference would print 3,000 leaves twice.
    assert!(
        root(&target) == tree,
        "the import differs from the tree written"
    );
    assert!(
        root(&target) == root(&source),
        "the copy differs from its source"
    );
}

#[test]
fn import_refuses_a_bad_or_inconsistent_dump_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let cases = [
        ("{\"path\": \"a\", \"value\": 1}\nnot json\n", "line 2"),
        ("{\"path\": \"a//b\", \"value\": 1}\n", "invalid path"),
        ("{\"path\": \"a\", \"value\": null}\n", "null"),
        (
            "{\"path\": \"a\", \"value\": 1}\n{\"end\": {\"leaves\": 2}}\n",
            "counts 2",
        ),
        (
            "{\"end\": {\"leaves\": 0}}\n{\"path\": \"a\", \"value\": 1}\n",
            "after the end",
        ),
    ];
    for (dump, expected) in cases {
        let file = dir.path().join("bad.jsonl");
        std::fs::write(&file, dump).unwrap();
        let out = kora_with_io(
            &server,
            &["import"],
            std::fs::File::open(&file).unwrap().into(),
            Stdio::null(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{dump:?} was accepted");
        assert!(stderr.contains(expected), "{dump:?}: {stderr}");
    }
}

#[test]
fn the_cli_lists_retries_and_drops_dead_effects() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("kora.rules.yaml");
    // Port 9 (discard) is closed on loopback: every webhook try fails at once.
    std::fs::write(
        &rules,
        "rules:\n  orders/$id:\n    read: true\n    write: true\n    effects:\n      - webhook: http://127.0.0.1:9/hook\n",
    )
    .unwrap();
    let admin = "an-admin-secret-of-at-least-32-bytes!";
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            ("KORA_RULES", rules.to_str().unwrap()),
            ("KORA_AUTH__ADMIN_SECRET", admin),
            ("KORA_EFFECTS__MAX_ATTEMPTS", "1"),
        ],
    );
    let effects = |args: &[&str], token: &str| -> (bool, Value, String) {
        let mut all = vec!["effects"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--token", token]);
        let output = kora(&server, &all);
        let stdout = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stdout, stderr)
    };
    let dead_ids = || -> Vec<u64> {
        let (ok, listed, stderr) = effects(&["dead"], admin);
        assert!(ok, "{stderr}");
        listed["effects"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| e["id"].as_u64().expect("an id"))
            .collect()
    };
    let wait_for_dead = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ids = dead_ids();
            if ids.len() == n {
                return ids;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dead effects: {ids:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };

    put(&server, "orders/o1", r#"{"n": 1}"#);
    put(&server, "orders/o2", r#"{"n": 2}"#);
    let ids = wait_for_dead(2);

    let (ok, _, stderr) = effects(&["dead"], "wrong");
    assert!(!ok, "another token is refused");
    assert!(stderr.contains("permission_denied"), "{stderr}");

    let (ok, answer, stderr) = effects(&["drop", &ids[0].to_string()], admin);
    assert!(ok, "{stderr}");
    assert_eq!(answer, json!({"discarded": ids[0]}));
    // Retried, it fails its one try again and is back among the dead.
    let (ok, answer, stderr) = effects(&["retry", &ids[1].to_string()], admin);
    assert!(ok, "{stderr}");
    assert_eq!(answer, json!({"retried": ids[1]}));
    assert_eq!(wait_for_dead(1), vec![ids[1]]);
    let (ok, _, stderr) = effects(&["drop", &ids[0].to_string()], admin);
    assert!(!ok);
    assert!(stderr.contains("not_found"), "{stderr}");
    server.stop();
}

#[test]
fn serve_over_tls_and_the_cli_trusts_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let files = kora_testkit::tls::TestCa::new("cli").server_files(dir.path(), "server");
    let mut child = Command::new(KORA)
        .args(["serve", "--bind", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&files.cert)
        .arg("--tls-key")
        .arg(&files.key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kora serve starts");
    let addr = common::listening_address(&mut child);
    let server = Server { child, addr };
    let url = format!(
        "https://localhost:{}",
        server.addr.rsplit(':').next().unwrap()
    );
    let cli = |args: &[&str], ca: bool| {
        let mut command = Command::new(KORA);
        command.args(args).args(["--url", &url]);
        if ca {
            command.arg("--ca-cert").arg(&files.ca);
        }
        command.output().expect("kora runs")
    };
    let set = cli(&["set", "ships/pearl", r#"{"captain": "Jack"}"#], true);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let get = cli(&["get", "ships/pearl"], true);
    assert!(
        get.status.success(),
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    let value: Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(value, json!({"captain": "Jack"}));
    // Without the CA the certificate is not trusted.
    let refused = cli(&["get", "ships/pearl"], false);
    assert!(!refused.status.success());
    server.stop();
}
