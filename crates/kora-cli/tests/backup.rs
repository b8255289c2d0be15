//! `kora backup` against a running `kora serve` taking writes, `kora restore` into a new
//! directory, and `kora serve` on it: every write acknowledged at or before the backup's
//! sequence is there, none after it. Killed with SIGKILL mid-way, `kora backup` leaves a
//! complete backup or a `.partial` file that `kora restore` refuses.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::serve::{get, kora, put, Server, KORA};
use serde_json::{json, Value};

const ADMIN: &str = "an-admin-secret-of-at-least-32-bytes!";
const WRITERS: usize = 4;

fn start(data: &std::path::Path) -> Server {
    Server::start_with(data, &[("KORA_AUTH__ADMIN_SECRET", ADMIN)])
}

/// `n` leaves of about 1 KB under `base/`, in bodies of 2,000.
fn load(server: &Server, n: usize) {
    for start in (0..n).step_by(2_000) {
        let mut page = serde_json::Map::new();
        for i in start..(start + 2_000).min(n) {
            page.insert(format!("k{i:06}"), json!("x".repeat(1_000)));
        }
        let body = json!({"merge": {"base": page}}).to_string();
        let reply = put_raw(server, "/v1/mutate", "POST", &body);
        assert!(reply["seq"].is_u64(), "{reply}");
    }
}

fn put_raw(server: &Server, path: &str, method: &str, body: &str) -> Value {
    let output = Command::new("curl")
        .args(["-s", "-X", method, &server.url(path), "--data-binary", "@-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .expect("curl");
    serde_json::from_slice(&output.stdout).expect("a JSON reply")
}

fn run(args: &[&str]) -> (bool, String) {
    let output = Command::new(KORA).args(args).output().expect("kora runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_backup_taken_under_writes_restores_every_write_up_to_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("source"));
    load(&server, 4_000);
    // Writers keep committing while the backup runs, each remembering its acknowledgements.
    // The last write of each starts after the backup ended.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (stop, written, url) = (stop.clone(), written.clone(), server.url(""));
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut n = 0;
                loop {
                    let stopping = stop.load(Ordering::Relaxed);
                    let path = format!("load/w{w}_{n}");
                    let output = Command::new("curl")
                        .args([
                            "-s",
                            "-X",
                            "PUT",
                            &format!("{url}/v1/data/{path}"),
                            "-d",
                            &n.to_string(),
                        ])
                        .output()
                        .expect("curl");
                    let reply: Value = serde_json::from_slice(&output.stdout).expect("a reply");
                    acknowledged.push((path, n, reply["seq"].as_u64().expect("a seq")));
                    written.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    if stopping {
                        return acknowledged;
                    }
                }
            })
        })
        .collect();
    while written.load(Ordering::Relaxed) < 5 * WRITERS {
        std::thread::yield_now();
    }
    let dest = dir.path().join("kora.backup");
    let url = server.url("");
    let (ok, said) = run(&[
        "backup",
        dest.to_str().unwrap(),
        "--url",
        &url,
        "--token",
        ADMIN,
    ]);
    stop.store(true, Ordering::Relaxed);
    assert!(ok, "{said}");
    let acknowledged: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let seq: u64 = said
        .split("backup at sequence ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the sequence in {said:?}"));
    assert!(!dir.path().join("kora.backup.partial").exists());
    // Only the administrator may take one, and not over an existing file.
    let (ok, said) = run(&[
        "backup",
        dir.path().join("b2").to_str().unwrap(),
        "--url",
        &url,
        "--token",
        "nope",
    ]);
    assert!(!ok && said.contains("permission_denied"), "{said}");
    let (ok, said) = run(&[
        "backup",
        dest.to_str().unwrap(),
        "--url",
        &url,
        "--token",
        ADMIN,
    ]);
    assert!(!ok && said.contains("exists"), "{said}");
    server.stop();

    let restored_dir = dir.path().join("restored");
    let (ok, said) = run(&[
        "restore",
        dest.to_str().unwrap(),
        "--data",
        restored_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    let (ok, said) = run(&[
        "restore",
        dest.to_str().unwrap(),
        "--data",
        restored_dir.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("not empty"), "{said}");
    let restored = start(&restored_dir);
    assert_eq!(
        get(&restored, "base").as_object().map(|m| m.len()),
        Some(4_000)
    );
    let load = get(&restored, "load");
    let (mut before, mut after) = (0, 0);
    for (path, n, at) in &acknowledged {
        let key = path.trim_start_matches("load/");
        if *at <= seq {
            assert_eq!(
                load[key],
                json!(n),
                "{path} (seq {at}) is in the backup at {seq}"
            );
            before += 1;
        } else {
            assert!(
                load.get(key).is_none(),
                "{path} (seq {at}) came after the backup at {seq}"
            );
            after += 1;
        }
    }
    println!("{before} writes before the backup's sequence {seq}, {after} after");
    assert!(
        before > 0 && after > 0,
        "the backup was taken while writes went on"
    );
    // The restored server continues the sequence.
    assert_eq!(put(&restored, "after/restore", "1")["seq"], json!(seq + 1));
    restored.stop();
}

#[test]
fn a_killed_backup_leaves_a_complete_file_or_one_restore_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("source"));
    load(&server, 40_000);
    let dest = dir.path().join("kora.backup");
    let partial = dir.path().join("kora.backup.partial");
    let mut backup = Command::new(KORA)
        .args([
            "backup",
            dest.to_str().unwrap(),
            "--url",
            &server.url(""),
            "--token",
            ADMIN,
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as it has written something (or has finished).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dest.exists() && std::fs::metadata(&partial).map_or(0, |m| m.len()) < 1_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "kora backup wrote nothing"
        );
        std::thread::yield_now();
    }
    backup.kill().unwrap(); // SIGKILL
    backup.wait().unwrap();
    let target = dir.path().join("restored");
    if dest.exists() {
        println!("the backup finished before the kill: it must be complete");
        let (ok, said) = run(&[
            "restore",
            dest.to_str().unwrap(),
            "--data",
            target.to_str().unwrap(),
        ]);
        assert!(ok, "{said}");
    } else {
        println!(
            "killed after {} bytes",
            std::fs::metadata(&partial).unwrap().len()
        );
        let (ok, said) = run(&[
            "restore",
            partial.to_str().unwrap(),
            "--data",
            target.to_str().unwrap(),
        ]);
        assert!(!ok, "a cut backup is refused");
        assert!(said.contains("incomplete"), "{said}");
        assert!(!target.exists(), "and leaves no directory behind");
    }
    server.stop();
}

#[test]
fn kora_restore_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_backup = dir.path().join("notes.txt");
    std::fs::write(&not_a_backup, "hello").unwrap();
    let target = dir.path().join("data");
    let (ok, said) = run(&[
        "restore",
        not_a_backup.to_str().unwrap(),
        "--data",
        target.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("not a Kora backup"), "{said}");
    let (ok, said) = run(&[
        "restore",
        "/no/such/file",
        "--data",
        target.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("/no/such/file"), "{said}");
    // A server on another store says to use that database's tools.
    let server = Server::start_with(
        &dir.path().join("unused"),
        &[
            ("KORA_AUTH__ADMIN_SECRET", ADMIN),
            ("KORA_STORE", "memory:"),
        ],
    );
    let (ok, said) = run(&[
        "backup",
        dir.path().join("m.backup").to_str().unwrap(),
        "--url",
        &server.url(""),
        "--token",
        ADMIN,
    ]);
    assert!(!ok && said.contains("own tools"), "{said}");
    let _ = kora(&server, &["get", ""]);
    server.stop();
}

/// Writes `mutation` to `server` with the stamp `millis` ms after `base`, as the administrator.
fn stamped(server: &Server, base: u64, millis: u64, mutation: Value) {
    let mut body = mutation;
    let stamp = kora_core::Stamp::new(base + millis, 0, 77);
    body["stamp"] = json!(stamp.to_string());
    let output = Command::new("curl")
        .args(["-s", "-X", "POST", &server.url("/v1/mutate"), "-H"])
        .arg(format!("Authorization: Bearer {ADMIN}"))
        .args(["-d", &body.to_string()])
        .output()
        .expect("curl");
    let reply: Value = serde_json::from_slice(&output.stdout).expect("a JSON reply");
    assert!(reply["seq"].is_u64(), "{reply}");
}

fn cli_with_input(args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
    use std::io::Write as _;
    let mut child = Command::new(KORA)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kora runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    let output = child.wait_with_output().expect("kora exits");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), output.stdout, stderr)
}

#[test]
fn a_full_export_merged_into_a_live_server_keeps_last_writer_wins() {
    let dir = tempfile::tempdir().unwrap();
    let base = kora_core::stamp::wall_millis() - 60_000;
    let a = start(&dir.path().join("a"));
    stamped(
        &a,
        base,
        1_000,
        json!({"merge": {"a": {"x": 1, "y": 2}, "b": "A"}}),
    );
    stamped(&a, base, 3_000, json!({"delete": {"a": {"y": 1}}}));
    stamped(&a, base, 5_000, json!({"merge": {"c": "A"}}));
    let b = start(&dir.path().join("b"));
    stamped(&b, base, 2_000, json!({"merge": {"a": {"x": 9, "y": 7}}}));
    stamped(&b, base, 500, json!({"merge": {"b": "B"}}));
    stamped(&b, base, 9_000, json!({"merge": {"c": "B"}}));

    let (ok, _, said) = cli_with_input(&["export", "--full", "--url", &a.url("")], b"");
    assert!(
        !ok && said.contains("permission_denied"),
        "only the administrator: {said}"
    );
    let (ok, dump, said) = cli_with_input(
        &["export", "--full", "--url", &a.url(""), "--token", ADMIN],
        b"",
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("exported 3 leaves and 1 tombstones"),
        "{said}"
    );
    let text = String::from_utf8_lossy(&dump).into_owned();
    let tombstone = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .find(|l| l["path"] == json!("a/y"))
        .expect("a line for a/y");
    assert!(
        tombstone["deleted"].is_string() && tombstone.get("value").is_none(),
        "{text}"
    );

    let (ok, _, said) = cli_with_input(&["import", "--url", &b.url(""), "--token", ADMIN], &dump);
    assert!(ok, "{said}");
    assert!(
        said.contains("imported 3 leaves and 1 tombstones"),
        "{said}"
    );
    // The newer of each pair won: B's newer a/x and c, A's newer delete of a/y and b.
    let tree = json!({"a": get(&b, "a"), "b": get(&b, "b"), "c": get(&b, "c")});
    assert_eq!(tree, json!({"a": {"x": 9}, "b": "A", "c": "B"}));
    // And b kept A's stamp: exported again from B, its line is A's line.
    let (ok, again, _) = cli_with_input(
        &[
            "export",
            "b",
            "--full",
            "--url",
            &b.url(""),
            "--token",
            ADMIN,
        ],
        b"",
    );
    assert!(ok);
    let line_of = |dump: &str, path: &str| {
        dump.lines()
            .find(|l| l.contains(&format!(r#""path":"{path}""#)))
            .map(str::to_string)
    };
    let again = String::from_utf8_lossy(&again).into_owned();
    assert_eq!(line_of(&again, "b"), line_of(&text, "b"));
    a.stop();
    b.stop();
}
