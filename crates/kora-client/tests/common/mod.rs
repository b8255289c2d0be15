//! A real Kora server (the code `kora serve` runs, on the embedded store, on a random
//! loopback port), a TCP proxy between it and each client that the test can cut, stall and
//! restore, and clients that reconnect quickly.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::time::Duration;

use kora_client::{Client, Options, PathQuery, Stamp, Status, Value};
use kora_engine::Kora;
use kora_server::{Running, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const SYNC: Duration = Duration::from_secs(60);

/// Starts a server on an embedded store in `dir`; `tweak` adjusts its configuration.
pub async fn server_in(dir: &FsPath, tweak: impl FnOnce(&mut ServerConfig)) -> Running {
    server_with(dir, Kora::builder(), tweak).await
}

/// [`server_in`] with `builder`'s handlers and interceptors.
pub async fn server_with(
    dir: &FsPath,
    builder: kora_engine::KoraBuilder,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Running {
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        data: dir.join("server"),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    kora_server::start(config, builder)
        .await
        .expect("server starts")
}

/// The server's value at `path`, read from its store.
pub async fn server_value(running: &Running, path: &str) -> Option<Value> {
    let query = PathQuery::new(kora_client::Path::parse(path).unwrap());
    running.kora.store().get(&query).await.expect("server read")
}

/// Options for test clients: a persistent cache in `dir`, quick reconnection, and a short
/// heartbeat so that a stalled link is noticed within seconds.
pub fn options(dir: &FsPath) -> Options {
    Options {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(300),
        heartbeat: Duration::from_millis(500),
        ..Options::cached(dir)
    }
}

pub async fn client(proxy: &Proxy, dir: &FsPath) -> Client {
    Client::connect(&proxy.url(), options(dir))
        .await
        .expect("client opens its cache")
}

/// Waits until `client` reports `status`.
pub async fn wait_status(client: &Client, status: Status) {
    let mut rx = client.watch_status();
    tokio::time::timeout(SYNC, rx.wait_for(|s| *s == status))
        .await
        .expect("status reached")
        .expect("client running");
}

/// Cuts `proxy` and waits until `client`, behind it, knows it is offline.
pub async fn cut_off(proxy: &Proxy, client: &Client) {
    proxy.cut();
    wait_status(client, Status::Offline).await;
}

/// Makes the server forget its whole change log: a client that missed changes must now
/// take a fresh value (`reset`) instead of a replay.
pub async fn forget_log(running: &Running) {
    let now = kora_core::stamp::wall_millis();
    running
        .kora
        .store()
        .compact(Stamp::new(0, 0, 0), now + 1)
        .await
        .expect("compact the change log");
}

/// The JSON text of a value, for byte-for-byte comparisons.
pub fn text(value: &Option<Value>) -> String {
    serde_json::to_string(value).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    /// Bytes are held, connections stay open.
    Stalled,
    /// Connections are closed and new ones refused.
    Down,
}

/// A TCP proxy in front of a server (which [`Proxy::redirect`] can change).
pub struct Proxy {
    pub addr: SocketAddr,
    link: watch::Sender<Link>,
    upstream: watch::Sender<SocketAddr>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (link, _) = watch::channel(Link::Up);
        let (upstream, to) = watch::channel(upstream);
        let rx = link.subscribe();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if *rx.borrow() == Link::Down {
                    drop(socket);
                    continue;
                }
                tokio::spawn(forward(socket, *to.borrow(), rx.clone()));
            }
        });
        Proxy {
            addr,
            link,
            upstream,
        }
    }

    /// Sends new connections to another server (those open stay where they are).
    pub fn redirect(&self, upstream: SocketAddr) {
        self.upstream.send_replace(upstream);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&self) {
        self.link.send_replace(Link::Down);
    }

    pub fn stall(&self) {
        self.link.send_replace(Link::Stalled);
    }

    pub fn restore(&self) {
        self.link.send_replace(Link::Up);
    }

    pub fn state(&self) -> Link {
        *self.link.borrow()
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, link: watch::Receiver<Link>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // When either direction ends, the other is dropped and both sockets close.
    tokio::select! {
        _ = pipe(client_read, server_write, link.clone()) => {}
        _ = pipe(server_read, client_write, link) => {}
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut link: watch::Receiver<Link>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = link.wait_for(|l| *l == Link::Down) => return,
        };
        match link.wait_for(|l| *l != Link::Stalled).await {
            Ok(state) if *state == Link::Up => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
