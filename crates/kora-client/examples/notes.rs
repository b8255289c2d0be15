//! A note list that works offline: the example program of docs/client.md.
//!
//! `KORA_URL=http://127.0.0.1:4000 cargo run -p kora-client --example notes -- "buy milk"`

use std::collections::BTreeMap;
use std::time::Duration;

use kora_client::{Client, Options, Path, PathQuery};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Note {
    text: String,
    done: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("KORA_URL").unwrap_or_else(|_| "http://127.0.0.1:4000".into());
    let cache = std::env::var("NOTES_CACHE").unwrap_or_else(|_| "./notes-cache".into());
    let text = std::env::args().nth(1).unwrap_or_else(|| "buy milk".into());

    // Opens (or creates) the cache on disk and starts connecting in the background.
    let client = Client::connect(&url, Options::cached(cache)).await?;

    // Followed until unsubscribed, across reconnections and restarts.
    let notes = client
        .subscribe(PathQuery::new(Path::parse("notes")?))
        .await?;

    // Applied to the cache at once and queued on disk; sent when connected.
    let id = kora_core::id::new();
    let note = Note { text, done: false };
    let written = client.set_as(&format!("notes/{id}"), &note).await?;
    println!("written locally with stamp {}", written.stamp);

    // The server's answer (this waits through disconnections).
    let ack = written.acknowledged().await?;
    println!("committed as #{}", ack.seq);

    // Read from the cache: this works offline too.
    client.synced(Duration::from_secs(10)).await?;
    let all: BTreeMap<String, Note> = notes.value_as().await?.unwrap_or_default();
    for (id, note) in &all {
        let mark = if note.done { "x" } else { " " };
        println!("[{mark}] {} ({id})", note.text);
    }
    client.close().await;
    Ok(())
}
