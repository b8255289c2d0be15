//! Firebase's long polling (`/.lp`) at the wire: a connection started, requests carried in
//! segments and answered in numbered packets, a wrong password refused, the page's
//! disconnect running onDisconnect writes, and a WebSocket naming no polling session told
//! to reset. (The SDK itself runs over it in Chromium: tests/firebase 19-long-polling.)

mod common;

use base64::Engine;
use common::{server, text, url};
use futures_util::StreamExt;
use kora_testkit::eventually;
use serde_json::{json, Value};

/// A polling client: its connection's id and password, and its next segment number.
struct Poller {
    http: reqwest::Client,
    base: String,
    id: String,
    pw: String,
    segment: u64,
    serial: u64,
}

impl Poller {
    async fn start(running: &kora_server::Running) -> (Poller, String) {
        let base = url(running, "/.lp");
        let http = reqwest::Client::new();
        let script = text(http.get(format!("{base}?start=t&ser=1&cb=7&v=5&ns=demo"))).await;
        let start = script
            .split("pLPCommand('start',")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .expect("a start command");
        let ids: Vec<String> = serde_json::from_str(&format!("[{start}]")).unwrap();
        let poller = Poller {
            http,
            base,
            id: ids[0].clone(),
            pw: ids[1].clone(),
            segment: 0,
            serial: 1,
        };
        (poller, script)
    }

    /// A poll carrying `messages` (one segment each); its answer.
    async fn poll(&mut self, messages: &[Value]) -> String {
        self.serial += 1;
        let mut query = format!(
            "{}?id={}&pw={}&ser={}",
            self.base, self.id, self.pw, self.serial
        );
        for (i, message) in messages.iter().enumerate() {
            let data = base64::engine::general_purpose::URL_SAFE
                .encode(message.to_string())
                .replace('=', ".");
            query.push_str(&format!("&seg{i}={}&ts{i}=1&d{i}={data}", self.segment));
            self.segment += 1;
        }
        self.http
            .get(query)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends `messages`, then polls until the packets answered hold a message matching
    /// `wanted`; every message answered meanwhile.
    async fn exchange(
        &mut self,
        messages: &[Value],
        wanted: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let mut seen = packet_messages(&self.poll(messages).await);
        for _ in 0..5 {
            if seen.iter().any(&wanted) {
                return seen;
            }
            seen.extend(packet_messages(&self.poll(&[]).await));
        }
        panic!("never answered as wanted; seen {seen:?}");
    }
}

/// The messages of the packets (`pRTLPCB(n,[…]);`) in a poll's answer.
fn packet_messages(answer: &str) -> Vec<Value> {
    answer
        .split("pRTLPCB(")
        .skip(1)
        .filter_map(|packet| {
            let list = &packet[packet.find(',')? + 1..packet.rfind(");")?];
            serde_json::from_str::<Vec<Value>>(list).ok()
        })
        .flatten()
        .collect()
}

fn request(r: u64, action: &str, body: Value) -> Value {
    json!({"t": "d", "d": {"r": r, "a": action, "b": body}})
}

fn reply_to(r: u64) -> impl Fn(&Value) -> bool {
    move |m| m["d"]["r"] == r
}

#[tokio::test]
async fn a_polling_client_starts_sends_and_receives_in_numbered_packets() {
    let running = server().await;
    let (mut client, script) = Poller::start(&running).await;
    assert!(
        script.contains(r#"parent.window["pLPCommand7"]"#),
        "{script}"
    );
    let hello = packet_messages(&script);
    assert_eq!(hello[0]["d"]["t"], "h", "{script}");

    let write = request(1, "p", json!({"p": "/lp/a", "d": {"n": 1}}));
    let seen = client.exchange(&[write], reply_to(1)).await;
    let reply = seen.iter().find(|m| reply_to(1)(m)).unwrap();
    assert_eq!(reply["d"]["b"]["s"], "ok");

    // A listen: its data, then its ok, across however many packets.
    let listen = request(2, "q", json!({"p": "/lp", "h": ""}));
    let seen = client.exchange(&[listen], reply_to(2)).await;
    assert!(
        seen.iter()
            .any(|m| m["d"]["b"]["d"] == json!({"a": {"n": 1}})),
        "{seen:?}"
    );
    running.stop().await.ok();
}

#[tokio::test]
async fn a_wrong_password_is_told_to_close() {
    let running = server().await;
    let (client, _) = Poller::start(&running).await;
    let answer = text(
        client
            .http
            .get(format!("{}?id={}&pw=wrong&ser=9", client.base, client.id)),
    )
    .await;
    assert_eq!(answer, "pLPCommand('close');");
    running.stop().await.ok();
}

#[tokio::test]
async fn the_page_going_away_runs_its_ondisconnect_writes() {
    let running = server().await;
    let (mut client, _) = Poller::start(&running).await;
    let register = request(1, "o", json!({"p": "/lp/presence", "d": "gone"}));
    client.exchange(&[register], reply_to(1)).await;
    let frame = text(client.http.get(format!(
        "{}?dframe=t&id={}&pw={}",
        client.base, client.id, client.pw
    )))
    .await;
    assert!(frame.contains("disconn=t"), "{frame}");
    client
        .http
        .get(format!(
            "{}?disconn=t&id={}&pw={}",
            client.base, client.id, client.pw
        ))
        .send()
        .await
        .unwrap();
    let presence = url(&running, "/lp/presence.json");
    eventually("the onDisconnect write", || async {
        let Ok(response) = reqwest::get(&presence).await else {
            return false;
        };
        response.json::<Value>().await.is_ok_and(|v| v == "gone")
    })
    .await;
    running.stop().await.ok();
}

#[tokio::test]
async fn a_websocket_naming_no_polling_session_is_told_to_reset() {
    let running = server().await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/.ws?v=5&s=nosuchsession", running.addr))
            .await
            .unwrap();
    let message = ws.next().await.unwrap().unwrap();
    let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
    assert_eq!(message["t"], "c");
    assert_eq!(message["d"]["t"], "r");
    running.stop().await.ok();
}
