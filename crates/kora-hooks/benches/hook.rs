//! Writes per second through one HTTP hook, against none, and the HTTP floor beside them.
//!
//! `cargo bench -p kora-hooks --bench hook [-- SECONDS WRITERS]` starts a real server on the
//! embedded store (a fresh temporary directory per row) and a hook endpoint (axum, in the same
//! process, answering at once), then has WRITERS concurrent HTTP clients (keep-alive) `PUT`
//! small documents for SECONDS each:
//!
//! - floor: the same load against the endpoint alone (what HTTP round trips cost here);
//! - no hook;
//! - a hook on the written path that passes (`{}`);
//! - a hook that adds a write to each (`add`: an index entry, committed with the write).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{post, put};
use axum::{Json, Router};
use kora_engine::Kora;
use kora_hooks::{HookConfig, HookKind};
use kora_server::ServerConfig;
use serde_json::{json, Value};

#[tokio::main]
async fn main() {
    let arg = |n: usize, default: u64| {
        let given = std::env::args().nth(n).and_then(|a| a.parse().ok());
        given.unwrap_or(default)
    };
    let (seconds, writers) = (arg(1, 5), arg(2, 32) as usize);
    let endpoint = start_endpoint().await;
    println!("{writers} writers, {seconds} s per row, embedded store");
    let floor = drive(&format!("{endpoint}/floor"), seconds, writers).await;
    println!(
        "{:<32} {floor:>9.0} requests/s",
        "floor (HTTP PUT to the endpoint)"
    );
    let rows: [(&str, Option<&str>); 3] = [
        ("no hook", None),
        ("one hook, passing", Some("pass")),
        ("one hook, adding a write", Some("add")),
    ];
    for (what, answer) in rows {
        let dir = std::env::temp_dir().join(format!("kora-hook-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hooks: Vec<HookConfig> = answer
            .map(|answer| HookConfig {
                url: format!("{endpoint}/{answer}"),
                path: Some("items/$id".into()),
                on: vec![HookKind::BeforeMutation],
                ..HookConfig::default()
            })
            .into_iter()
            .collect();
        let builder = kora_hooks::register(Kora::builder(), &hooks).expect("hooks");
        let config = ServerConfig {
            bind: "127.0.0.1:0".into(),
            store: Some(format!("embedded:{}", dir.display())),
            ..ServerConfig::default()
        };
        let running = kora_server::start(config, builder).await.expect("server");
        let base = format!("http://{}/v1/data/items", running.addr);
        let rate = drive(&base, seconds, writers).await;
        println!(
            "{what:<32} {rate:>9.0} writes/s ({:.2} of the floor)",
            rate / floor
        );
        running.stop().await.ok();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// An endpoint answering hooks at once: `/pass` with `{}`, `/add` with an index entry for the
/// written item; `/floor` takes a PUT and answers `{}` (the load's floor).
async fn start_endpoint() -> String {
    async fn pass() -> Json<Value> {
        Json(json!({}))
    }
    async fn add(Json(request): Json<Value>) -> Json<Value> {
        let id = request["captures"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let entry: serde_json::Map<String, Value> = [(id, json!(true))].into_iter().collect();
        Json(json!({"add": {"merge": {"index": entry}}}))
    }
    let app = Router::new()
        .route("/pass", post(pass))
        .route("/add", post(add))
        .route("/floor/{id}", put(pass));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `writers` clients PUTting `{"n": i}` to `<base>/<writer>-<i>` one after another for
/// `seconds`: answered requests per second (every answer must be a success).
async fn drive(base: &str, seconds: u64, writers: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (base, done) = (base.to_string(), done.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let response = http
                    .put(format!("{base}/w{writer}-{i}"))
                    .json(&json!({"n": i}))
                    .send()
                    .await
                    .expect("the server answers");
                assert!(response.status().is_success(), "{}", response.status());
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a writer");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
