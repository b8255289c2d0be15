//! Backup and restore of the embedded store, beside the floor: copying the same data
//! directory's files with `cp -r` and syncing them, in the same run.
//!
//! ```sh
//! cargo bench -p kora-store --bench backup                  # 1M leaves
//! cargo bench -p kora-store --bench backup -- --leaves 100000
//! ```
//!
//! The store holds `--leaves` leaves of about 100 bytes (`items/<k>/{name,n,tags}`), written
//! in mutations of 1,000 leaves. Measured: `backup` (one snapshot streamed to a file, then
//! fsynced), `restore` (the file into a new directory, flushed and fsynced), and the floor
//! (`cp -r` of the data directory, then `sync`). A Markdown table goes to stdout.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kora_core::{Mutation, Path as KoraPath, Stamp};
use kora_store::{EmbeddedStore, Store, Write};
use serde_json::{json, Map};

const LEAVES_PER_MUTATION: usize = 1_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fill(store: &EmbeddedStore, leaves: usize) {
    let items = KoraPath::parse("items").expect("a path");
    let mut written = 0;
    let mut n = 0u64;
    while written < leaves {
        let mut page = Map::new();
        for _ in 0..LEAVES_PER_MUTATION / 3 {
            page.insert(
                format!("k{n:08}"),
                json!({"name": format!("item number {n} with some text"), "n": n, "tags": "a,b,c"}),
            );
            n += 1;
        }
        written += page.len() * 3;
        let m = Mutation::merge(&items, serde_json::Value::Object(page)).expect("a mutation");
        store
            .commit(Write::new(Stamp::new(1_000 + n, 0, 1), m))
            .await
            .expect("commit");
    }
}

fn size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return std::fs::metadata(dir).map_or(0, |m| m.len());
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let leaves = arg("--leaves", 1_000_000);
    let temp = tempfile::tempdir().expect("a temporary directory");
    let source_dir = temp.path().join("source");
    let store = EmbeddedStore::open(&source_dir).await.expect("open");
    eprintln!("writing {leaves} leaves");
    fill(&store, leaves).await;

    let file = temp.path().join("kora.backup");
    let started = Instant::now();
    let out = std::fs::File::create(&file).expect("create");
    let synced = out.try_clone().expect("a handle");
    let backup = store.backup(Box::new(out)).await.expect("backup");
    synced.sync_all().expect("fsync");
    let backup_time = started.elapsed();
    store.close().await.expect("close");

    let copy = temp.path().join("copy");
    let started = Instant::now();
    let status = Command::new("cp")
        .arg("-r")
        .arg(&source_dir)
        .arg(&copy)
        .status();
    assert!(status.is_ok_and(|s| s.success()), "cp -r");
    let status = Command::new("sync").status();
    assert!(status.is_ok_and(|s| s.success()), "sync");
    let copy_time = started.elapsed();

    let target = temp.path().join("restored");
    let started = Instant::now();
    let input = std::fs::File::open(&file).expect("open the backup");
    let restored = EmbeddedStore::restore(input, &target).expect("restore");
    let restore_time = started.elapsed();
    assert_eq!(restored.seq, backup.seq);

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("| {leaves} leaves | time | bytes | × floor |");
    println!("|---|---:|---:|---:|");
    println!(
        "| floor: `cp -r` of the data directory + `sync` | {} | {:.0} MiB | 1 |",
        secs(copy_time),
        mib(size(&source_dir))
    );
    let ratio = |d: Duration| d.as_secs_f64() / copy_time.as_secs_f64();
    println!(
        "| backup (one snapshot, {} entries, fsynced) | {} | {:.0} MiB | {:.1} |",
        backup.entries,
        secs(backup_time),
        mib(backup.bytes),
        ratio(backup_time)
    );
    println!(
        "| restore (into a new directory, flushed) | {} | {:.0} MiB | {:.1} |",
        secs(restore_time),
        mib(size(&target)),
        ratio(restore_time)
    );
}
