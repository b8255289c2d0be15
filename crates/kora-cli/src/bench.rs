//! `kora bench`: a load generator over real WebSockets.
//!
//! Opens `--connections` WebSockets (spread over the source addresses 127.0.0.1, 127.0.0.2, …
//! when the server is on loopback, so many connections do not run out of ports). Of those,
//! `--writers` write in a loop (each with `--in-flight` writes outstanding) and
//! `--subscribers` subscribe to the benchmark path; the rest stay idle. Every written value
//! carries its send time, so a subscriber measures write-to-delivery latency on the same
//! clock. Prints throughput and percentiles; progress every second while it runs.
//!
//! `--protocol firebase` speaks Firebase's WebSocket protocol instead (`/.ws?v=5`: a write
//! is a `p` set, a subscription a `q` listen), so Kora's two transports — and any other
//! server speaking Firebase's protocol — are measured by the same client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use kora_firebase::wire::Reassembly;
use kora_protocol::{QueryPath, Request};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

mod frames;
mod increments;

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// The server's URL (http:// or ws://).
    #[arg(long, env = "KORA_URL", default_value = "http://127.0.0.1:4000")]
    url: String,
    /// WebSocket connections to open in all.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Connections that write.
    #[arg(long, default_value_t = 100)]
    writers: usize,
    /// Where subscribers (and idle connections) connect, when not to `--url`: another node of
    /// a cluster, to measure write-to-delivery latency across nodes.
    #[arg(long)]
    subscriber_url: Option<String>,
    /// Connections that subscribe to the benchmark path (every write reaches each).
    #[arg(long, default_value_t = 0)]
    subscribers: usize,
    /// Writes each writer keeps outstanding.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Leaves per write (`l0`…: each `{"t": send time}`).
    #[arg(long, default_value_t = 1)]
    leaves: usize,
    /// Write a small document instead of leaves: about 100 bytes of JSON in five fields
    /// (`t`, the send time, among them).
    #[arg(long, conflicts_with = "leaves")]
    document: bool,
    /// Every writer rewrites one key of its own (`w<writer>`) instead of writing a new key
    /// each time: the hot-key load (presence, cursors, counters, game state).
    #[arg(long)]
    hot: bool,
    /// Writes per second per writer (0: as fast as acknowledged).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long to write, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The path the benchmark writes under.
    #[arg(long, default_value = "bench")]
    path: String,
    /// Keep the connections open this many seconds after writing (to measure idle memory).
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Source addresses to spread connections over (127.0.0.1 … 127.0.0.N on loopback).
    #[arg(long, default_value_t = 8)]
    source_addresses: u8,
    /// The protocol to speak: `kora` (`/v1/ws`) or `firebase` (`/.ws?v=5`).
    #[arg(long, value_enum, default_value_t = Protocol::Kora)]
    protocol: Protocol,
    /// Kora's protocol: each write replaces its key (delete + merge), as a Firebase `set`
    /// does, instead of merging into it.
    #[arg(long)]
    replace: bool,
    /// Instead of writing keys, every writer increments one counter (`<path>/counter`) by
    /// transactions — read, write on condition, retry on conflict — as a `kora-client`
    /// (`Client::transaction`); writers alternate between `--url` and `--other-url`.
    #[arg(long)]
    increments: bool,
    /// A second node of the same cluster, for `--increments`.
    #[arg(long, requires = "increments")]
    other_url: Option<String>,
}

/// Which WebSocket protocol the benchmark speaks.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Kora,
    Firebase,
}

impl Protocol {
    fn endpoint(self) -> &'static str {
        match self {
            Protocol::Kora => "/v1/ws",
            Protocol::Firebase => "/.ws?v=5&ns=bench",
        }
    }

    fn listen(self, path: &str) -> Value {
        match self {
            Protocol::Kora => {
                let path = QueryPath {
                    path: path.to_string(),
                    subscribe: true,
                    ..QueryPath::default()
                };
                json!(Request::Query {
                    id: json!(0),
                    paths: vec![path]
                })
            }
            Protocol::Firebase => {
                json!({"t": "d", "d": {"r": 0, "a": "q", "b": {"p": format!("/{path}"), "h": ""}}})
            }
        }
    }

    fn write(self, id: u64, path: &str, key: &str, leaves: Value, replace: bool) -> Value {
        match self {
            Protocol::Kora => {
                let mut mutation = json!({"merge": {path: {key: leaves}}});
                if replace {
                    mutation["delete"] = json!({path: {key: 1}});
                }
                json!(Request::Mutate {
                    id: json!(id),
                    mutation,
                    stamp: None,
                    conditions: Vec::new(),
                })
            }
            Protocol::Firebase => {
                json!({"t": "d", "d": {"r": id, "a": "p", "b": {"p": format!("/{path}/{key}"), "d": leaves}}})
            }
        }
    }
}

/// Whole messages, read for what the generator needs ([`frames`]): Firebase's fragmented
/// messages are reassembled by the server's own reader (`firebase::wire::Reassembly`: a
/// frame holding only a number announces that many frames making up the next message);
/// Kora's frames pass through whole.
struct Fragments {
    protocol: Protocol,
    reassembly: Reassembly,
}

impl Fragments {
    fn new(protocol: Protocol) -> Self {
        Fragments {
            protocol,
            reassembly: Reassembly::default(),
        }
    }

    /// What the message `frame` completes says, if it completes one.
    fn feed(&mut self, frame: &str) -> Result<Option<frames::Seen>> {
        if self.protocol == Protocol::Kora {
            return Ok(Some(frames::read(self.protocol, frame)?));
        }
        match self.reassembly.feed(frame).map_err(|e| anyhow!("{e}"))? {
            Some(text) => Ok(Some(frames::read(self.protocol, &text)?)),
            None => Ok(None),
        }
    }
}

/// Results shared by every connection task.
struct Totals {
    acked: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    ack_latency: Mutex<Histogram<u64>>,
    delivery_latency: Mutex<Histogram<u64>>,
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e}"))
}

fn now_us(origin: Instant) -> u64 {
    origin.elapsed().as_micros() as u64
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(url: &str, server: SocketAddr, source: Option<IpAddr>) -> Result<Socket> {
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    // Small buffers: tungstenite zero-fills its read buffer, and its 128 KiB default costs
    // more than the frames do.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

async fn ws_url(url: &str, protocol: Protocol) -> Result<(String, SocketAddr)> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow!("--url has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(4000);
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {host}"))?;
    let scheme = if parsed.scheme() == "https" || parsed.scheme() == "wss" {
        "wss"
    } else {
        "ws"
    };
    Ok((
        format!("{scheme}://{host}:{port}{}", protocol.endpoint()),
        addr,
    ))
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if args.increments {
        return increments::run(&args).await;
    }
    let (url, server) = ws_url(&args.url, args.protocol).await?;
    let (subscriber_url, subscriber_server) = match &args.subscriber_url {
        Some(other) => ws_url(other, args.protocol).await?,
        None => (url.clone(), server),
    };
    let origin = Instant::now();
    let totals = Arc::new(Totals {
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        ack_latency: Mutex::new(histogram()?),
        delivery_latency: Mutex::new(histogram()?),
    });
    let sources: Vec<Option<IpAddr>> = if server.ip().is_loopback() && server.is_ipv4() {
        (1..=args.source_addresses.max(1))
            .map(|n| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))))
            .collect()
    } else {
        vec![None]
    };
    eprintln!(
        "kora bench: opening {} connections to {url}",
        args.connections
    );
    let mut sockets = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let source = sources[i % sources.len()];
        let (url, server) = if i < args.writers {
            (&url, server)
        } else {
            (&subscriber_url, subscriber_server)
        };
        let socket = connect(url, server, source)
            .await
            .with_context(|| format!("connection {i}"))?;
        sockets.push(socket);
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} connected", i + 1);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let schedule = Schedule {
        origin,
        deadline,
        hold_until: deadline + Duration::from_secs(args.hold),
    };
    let mut tasks = Vec::new();
    let mut subscribers = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let role = if i < args.writers {
            Role::Writer(i)
        } else if i < args.writers + args.subscribers {
            Role::Subscriber
        } else {
            Role::Idle
        };
        let args = args.clone();
        let totals = totals.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = drive(socket, role, &args, &totals, schedule).await {
                totals.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("connection {i}: {error}");
            }
        });
        match role {
            Role::Subscriber => subscribers.push(task),
            _ => tasks.push(task),
        }
    }
    let progress = tokio::spawn(report_progress(totals.clone(), deadline));
    let started = Instant::now();
    // Deliveries count until `hold_until`, as long as the connections stay open.
    let stop_subscribers = tokio::spawn(async move {
        tokio::time::sleep_until(schedule.hold_until.into()).await;
        for task in subscribers {
            task.abort();
        }
    });
    for task in tasks {
        let _ = task.await;
    }
    let _ = stop_subscribers.await;
    progress.abort();
    let elapsed = started
        .elapsed()
        .min(Duration::from_secs(args.seconds.max(1)) + Duration::from_secs(args.hold));
    summary(&args, &totals, elapsed);
    Ok(())
}

/// When a run's clock started (latencies are measured from it), when writers stop, and
/// when the last deliveries stop counting.
#[derive(Clone, Copy)]
struct Schedule {
    origin: Instant,
    deadline: Instant,
    hold_until: Instant,
}

#[derive(Clone, Copy)]
enum Role {
    Writer(usize),
    Subscriber,
    Idle,
}

async fn report_progress(totals: Arc<Totals>, deadline: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut acked, mut delivered) = (0, 0);
    while Instant::now() < deadline {
        tick.tick().await;
        let a = totals.acked.load(Ordering::Relaxed);
        let d = totals.delivered.load(Ordering::Relaxed);
        eprintln!(
            "  {:>9} writes/s {:>10} deliveries/s",
            a - acked,
            d - delivered
        );
        (acked, delivered) = (a, d);
    }
}

async fn drive(
    mut socket: Socket,
    role: Role,
    args: &BenchArgs,
    totals: &Totals,
    schedule: Schedule,
) -> Result<()> {
    match role {
        Role::Idle => {
            tokio::time::sleep_until(schedule.hold_until.into()).await;
            Ok(())
        }
        Role::Subscriber => {
            let request = args.protocol.listen(&args.path);
            socket
                .send(Message::Text(request.to_string().into()))
                .await?;
            // No timer: `run` stops subscribers when the time is up (a timer polled on
            // every frame costs the client more than reading the frame does).
            subscribe_loop(socket, args, totals, schedule.origin).await
        }
        Role::Writer(n) => write_loop(socket, n, args, totals, schedule).await,
    }
}

async fn subscribe_loop(
    mut socket: Socket,
    args: &BenchArgs,
    totals: &Totals,
    origin: Instant,
) -> Result<()> {
    let mut fragments = Fragments::new(args.protocol);
    let mut listening = args.protocol == Protocol::Kora;
    loop {
        let frame = match socket.next().await {
            None => return Err(anyhow!("closed by the server")),
            Some(frame) => frame?,
        };
        let Message::Text(text) = frame else { continue };
        let Some(seen) = fragments.feed(text.as_str())? else {
            continue;
        };
        if !listening {
            // Firebase's protocol sends the listened value before the listen's reply.
            listening = seen.reply.is_some();
            continue;
        }
        let Some(newest) = seen.change else {
            continue;
        };
        let now = now_us(origin);
        // The newest write in the push is the one it delivers (a server may send the whole
        // listened value each time).
        if let Some(t) = newest {
            let mut histogram = totals
                .delivery_latency
                .lock()
                .map_err(|_| anyhow!("poisoned"))?;
            let _ = histogram.record(now.saturating_sub(t).max(1));
        }
        totals.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

async fn write_loop(
    mut socket: Socket,
    writer: usize,
    args: &BenchArgs,
    totals: &Totals,
    schedule: Schedule,
) -> Result<()> {
    let Schedule {
        origin,
        deadline,
        hold_until,
    } = schedule;
    let mut next_id: u64 = 1;
    let mut fragments = Fragments::new(args.protocol);
    let mut outstanding: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let pause = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut next_send = Instant::now();
    loop {
        let writing = Instant::now() < deadline;
        while writing && outstanding.len() < args.in_flight.max(1) && Instant::now() >= next_send {
            let t = now_us(origin);
            let key = match args.hot {
                true => format!("w{writer}"),
                false => format!("w{writer}-{next_id}"),
            };
            let request = args.protocol.write(
                next_id,
                &args.path,
                &key,
                payload(args, t, next_id),
                args.replace,
            );
            socket
                .send(Message::Text(request.to_string().into()))
                .await?;
            outstanding.insert(next_id, t);
            next_id += 1;
            if let Some(pause) = pause {
                next_send += pause;
            }
        }
        if !writing && outstanding.is_empty() {
            tokio::time::sleep_until(hold_until.into()).await;
            return Ok(());
        }
        let wait_until = if writing && pause.is_some() {
            next_send.min(deadline)
        } else {
            deadline + Duration::from_secs(30)
        };
        let frame = match tokio::time::timeout_at(wait_until.into(), socket.next()).await {
            Err(_) if writing => continue,
            Err(_) => return Err(anyhow!("{} writes never acknowledged", outstanding.len())),
            Ok(None) => return Err(anyhow!("closed by the server")),
            Ok(Some(frame)) => frame?,
        };
        let Message::Text(text) = frame else { continue };
        let Some(seen) = fragments.feed(text.as_str())? else {
            continue;
        };
        let Some((id, ok)) = seen.reply else {
            continue;
        };
        let Some(sent) = outstanding.remove(&id) else {
            continue;
        };
        if !ok {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        totals.acked.fetch_add(1, Ordering::Relaxed);
        let latency = now_us(origin).saturating_sub(sent).max(1);
        if let Ok(mut histogram) = totals.ack_latency.lock() {
            let _ = histogram.record(latency);
        }
    }
}

/// What one write writes at its key, carrying its send time `t`.
fn payload(args: &BenchArgs, t: u64, n: u64) -> Value {
    if args.document {
        // About 100 bytes of JSON in five fields, as a small real-world document.
        return json!({"t": t, "name": "Elizabeth Swann", "score": n, "online": true,
            "place": "Port Royal, Jamaica"});
    }
    let mut leaves = serde_json::Map::new();
    for leaf in 0..args.leaves.max(1) {
        leaves.insert(format!("l{leaf}"), json!({"t": t}));
    }
    Value::Object(leaves)
}

fn percentiles(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "-".into();
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  max {:.2} ms",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0
    )
}

fn summary(args: &BenchArgs, totals: &Totals, elapsed: Duration) {
    let seconds = args.seconds.max(1) as f64;
    let acked = totals.acked.load(Ordering::Relaxed);
    let delivered = totals.delivered.load(Ordering::Relaxed);
    let shape = match args.document {
        true => "document".to_string(),
        false => format!("leaves {}", args.leaves),
    };
    println!(
        "connections {}  writers {}  subscribers {}  in-flight {}  {shape}{}  ({:.1} s)",
        args.connections,
        args.writers,
        args.subscribers,
        args.in_flight,
        if args.hot { "  hot keys" } else { "" },
        elapsed.as_secs_f64()
    );
    println!(
        "acknowledged writes: {acked} ({:.0}/s)",
        acked as f64 / seconds
    );
    if let Ok(h) = totals.ack_latency.lock() {
        println!("  ack latency:       {}", percentiles(&h));
    }
    if args.subscribers > 0 {
        println!(
            "deliveries: {delivered} ({:.0}/s)",
            delivered as f64 / seconds
        );
        if let Ok(h) = totals.delivery_latency.lock() {
            println!("  write→delivery:    {}", percentiles(&h));
        }
    }
    let errors = totals.errors.load(Ordering::Relaxed);
    if errors > 0 {
        println!("errors: {errors}");
    }
}
