//! Allowed and denied reads, writes and subscriptions under a realistic rules file
//! (tests/data/kora.rules.yaml: the todo app, the seed user/company model, a guestbook),
//! end to end: real tokens, a real server, real WebSocket and HTTP requests.

mod common;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::tokens::{key_file, now, sign, SECRET};
use common::{server_with, url, Client};
use kora_core::{Mutation, Path};
use kora_engine::Kora;
use kora_server::Running;
use serde_json::{json, Value};

/// Who makes a request.
#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    User(&'static str),
    Admin,
    Expired,
    Forged,
    Unsigned,
    WrongKey,
}

fn token(who: Who) -> Option<String> {
    let claims = |sub: &str| json!({"sub": sub, "exp": now() + 3600});
    match who {
        Who::Anonymous => None,
        Who::User(sub) => Some(sign(claims(sub), SECRET)),
        Who::Admin => Some(sign(
            json!({"sub": "root", "admin": true, "exp": now() + 3600}),
            SECRET,
        )),
        Who::Expired => Some(sign(json!({"sub": "jack", "exp": now() - 120}), SECRET)),
        Who::Forged => Some(sign(
            claims("jack"),
            "the-wrong-secret-of-at-least-32-bytes!!",
        )),
        Who::Unsigned => {
            let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string().as_bytes());
            Some(format!(
                "{}.{}.",
                b64(json!({"alg": "none"})),
                b64(claims("jack"))
            ))
        }
        Who::WrongKey => {
            // RS256 signed by a key the server does not trust (only HS256 is configured).
            let rsa = std::fs::read(key_file("rsa-private.pem")).unwrap();
            Some(
                encode(
                    &Header::new(Algorithm::RS256),
                    &claims("jack"),
                    &EncodingKey::from_rsa_pem(&rsa).unwrap(),
                )
                .unwrap(),
            )
        }
    }
}

/// The outcome a case expects.
#[derive(Debug, PartialEq)]
enum Expect {
    Ok,
    /// The reply's error code.
    Refused(&'static str),
}
use Expect::{Ok as Allowed, Refused};

/// A request.
enum Op {
    Read(&'static str),
    Set(&'static str, Value),
    Merge(&'static str, Value),
    Delete(&'static str),
    Subscribe(&'static str),
}

async fn server() -> Running {
    let running = server_with(Kora::builder(), |config| {
        config.rules = Some(key_file("kora.rules.yaml"));
        config.auth.hs256_secret = Some(SECRET.into());
    })
    .await;
    // Seed data written by the server itself (the rules do not apply to it).
    let system = running.kora.system_context();
    let seed = json!({
        "company:info": {
            "pearl": {"name": "Black Pearl", "admins": {"jack": true}},
            "dutchman": {"name": "Flying Dutchman", "admins": {"davy": true}}
        },
        "user:info": {
            "jack": {"name": "Jack", "company": "pearl", "email": "jack@pearl.sea"},
            "will": {"name": "Will", "company": "pearl"},
            "davy": {"name": "Davy", "company": "dutchman"}
        },
        "company:employees": {"pearl": {"jack": 1, "will": 1}, "dutchman": {"davy": 1}},
        "todos": {"jack": {"t0": {"text": "rum", "owner": "jack", "created": 1}}},
        "guestbook": {"g0": {"message": "hello", "at": 1, "by": "anonymous"}}
    });
    running
        .kora
        .mutate(&system, Mutation::merge(&Path::root(), seed).unwrap(), None)
        .await
        .unwrap();
    running
}

async fn run(running: &Running, who: Who, op: &Op) -> (Expect, Value) {
    let mut client = Client::connect(running).await;
    if let Some(token) = token(who) {
        let reply = client.request(json!({"op": "auth", "token": token})).await;
        if let Some(code) = reply["error"]["code"].as_str() {
            return (Refused(leak(code)), reply);
        }
    }
    let request = match op {
        Op::Read(path) => json!({"op": "query", "paths": [{"path": path}]}),
        Op::Subscribe(path) => json!({"op": "query", "paths": [{"path": path, "subscribe": true}]}),
        Op::Set(path, value) => {
            json!({"op": "mutate", "mutation": Mutation::set(&Path::parse(path).unwrap(), value.clone()).unwrap()})
        }
        Op::Merge(path, value) => {
            json!({"op": "mutate", "mutation": Mutation::merge(&Path::parse(path).unwrap(), value.clone()).unwrap()})
        }
        Op::Delete(path) => {
            json!({"op": "mutate", "mutation": Mutation::delete(&Path::parse(path).unwrap())})
        }
    };
    let reply = client.request(request).await;
    match reply["error"]["code"].as_str() {
        Some(code) => (Refused(leak(code)), reply),
        None => (Allowed, reply),
    }
}

fn leak(code: &str) -> &'static str {
    match code {
        "permission_denied" => "permission_denied",
        "validation_failed" => "validation_failed",
        "too_large" => "too_large",
        "bad_request" => "bad_request",
        other => panic!("unexpected code {other}"),
    }
}

const DENIED: Expect = Refused("permission_denied");
const INVALID: Expect = Refused("validation_failed");

fn long(n: usize) -> Value {
    Value::from("x".repeat(n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_of_reads_writes_and_subscriptions() {
    use Op::*;
    use Who::*;
    let jack = User("jack");
    let will = User("will");
    let davy = User("davy");
    let cases: Vec<(&str, Who, Op, Expect)> = vec![
        // Todo app: owner-only.
        ("owner reads own todos", jack, Read("todos/jack"), Allowed),
        (
            "another user cannot read them",
            will,
            Read("todos/jack"),
            DENIED,
        ),
        (
            "anonymous cannot read them",
            Anonymous,
            Read("todos/jack"),
            DENIED,
        ),
        (
            "admin claims give no access to todos",
            Admin,
            Read("todos/jack"),
            DENIED,
        ),
        (
            "owner subscribes to own todos",
            jack,
            Subscribe("todos/jack"),
            Allowed,
        ),
        (
            "another user cannot subscribe",
            will,
            Subscribe("todos/jack"),
            DENIED,
        ),
        (
            "owner creates a todo",
            jack,
            Set("todos/jack/t1", json!({"text": "find the chest"})),
            Allowed,
        ),
        (
            "another user cannot create one there",
            will,
            Set("todos/jack/t2", json!({"text": "x"})),
            DENIED,
        ),
        (
            "anonymous cannot create one",
            Anonymous,
            Set("todos/jack/t3", json!({"text": "x"})),
            DENIED,
        ),
        (
            "text must be a string",
            jack,
            Set("todos/jack/t4", json!({"text": 5})),
            INVALID,
        ),
        (
            "text at most 500 characters",
            jack,
            Set("todos/jack/t5", json!({"text": long(501)})),
            INVALID,
        ),
        (
            "text of 500 characters is fine",
            jack,
            Set("todos/jack/t6", json!({"text": long(500)})),
            Allowed,
        ),
        (
            "a todo needs a text",
            jack,
            Set("todos/jack/t7", json!({"done": true})),
            INVALID,
        ),
        (
            "done must be a boolean",
            jack,
            Merge("todos/jack/t0", json!({"done": "yes"})),
            INVALID,
        ),
        (
            "done as a boolean",
            jack,
            Merge("todos/jack/t0", json!({"done": true})),
            Allowed,
        ),
        (
            "unknown fields are refused",
            jack,
            Merge("todos/jack/t0", json!({"colour": "red"})),
            INVALID,
        ),
        (
            "owner deletes a todo",
            jack,
            Delete("todos/jack/t6"),
            Allowed,
        ),
        (
            "another user cannot delete it",
            will,
            Delete("todos/jack/t0"),
            DENIED,
        ),
        // Tokens.
        (
            "an expired token is refused",
            Expired,
            Read("guestbook"),
            DENIED,
        ),
        (
            "a forged token is refused",
            Forged,
            Read("guestbook"),
            DENIED,
        ),
        ("alg none is refused", Unsigned, Read("guestbook"), DENIED),
        (
            "a token signed with an untrusted key is refused",
            WrongKey,
            Read("guestbook"),
            DENIED,
        ),
        // Users: signed-in users read profiles, edit only themselves.
        (
            "a user reads another profile",
            will,
            Read("user:info/jack/name"),
            Allowed,
        ),
        (
            "anonymous cannot read profiles",
            Anonymous,
            Read("user:info/jack"),
            DENIED,
        ),
        (
            "a user edits own name",
            jack,
            Merge("user:info/jack", json!({"name": "Captain Jack"})),
            Allowed,
        ),
        (
            "a user cannot edit another",
            will,
            Merge("user:info/jack", json!({"name": "x"})),
            DENIED,
        ),
        (
            "an admin edits anyone",
            Admin,
            Merge("user:info/will", json!({"name": "William"})),
            Allowed,
        ),
        (
            "names at most 100 characters",
            jack,
            Merge("user:info/jack", json!({"name": long(101)})),
            INVALID,
        ),
        (
            "name must be a string",
            jack,
            Merge("user:info/jack", json!({"name": 7})),
            INVALID,
        ),
        (
            "company must exist",
            will,
            Merge("user:info/will", json!({"company": "nowhere"})),
            INVALID,
        ),
        (
            "company must be a slug",
            will,
            Merge("user:info/will", json!({"company": "Black Pearl"})),
            INVALID,
        ),
        (
            "a user joins an existing company",
            will,
            Merge("user:info/will", json!({"company": "dutchman"})),
            Allowed,
        ),
        // Private email: the user and admins.
        (
            "own email is readable",
            jack,
            Read("user:info/jack/email"),
            Allowed,
        ),
        (
            "another's email is not",
            will,
            Read("user:info/jack/email"),
            DENIED,
        ),
        (
            "admins read emails",
            Admin,
            Read("user:info/jack/email"),
            Allowed,
        ),
        (
            "email must look like one",
            jack,
            Merge("user:info/jack", json!({"email": "not-an-email"})),
            INVALID,
        ),
        (
            "a valid email is accepted",
            jack,
            Merge("user:info/jack", json!({"email": "jack@sea.org"})),
            Allowed,
        ),
        // Companies: public info, admins edit.
        (
            "anyone reads company info",
            Anonymous,
            Read("company:info/pearl/name"),
            Allowed,
        ),
        (
            "a company admin edits it",
            jack,
            Merge("company:info/pearl", json!({"name": "The Pearl"})),
            Allowed,
        ),
        (
            "a non-admin cannot",
            will,
            Merge("company:info/pearl", json!({"name": "x"})),
            DENIED,
        ),
        (
            "another company's admin cannot",
            davy,
            Merge("company:info/pearl", json!({"name": "x"})),
            DENIED,
        ),
        (
            "a global admin can",
            Admin,
            Merge("company:info/dutchman", json!({"name": "The Dutchman"})),
            Allowed,
        ),
        (
            "company names cannot be empty",
            Admin,
            Merge("company:info/pearl", json!({"name": ""})),
            INVALID,
        ),
        (
            "the admin list is hidden from members",
            will,
            Read("company:info/pearl/admins"),
            DENIED,
        ),
        (
            "company admins see it",
            jack,
            Read("company:info/pearl/admins"),
            Allowed,
        ),
        (
            "anonymous cannot see it",
            Anonymous,
            Read("company:info/pearl/admins"),
            DENIED,
        ),
        (
            "only global admins change it",
            jack,
            Merge("company:info/pearl/admins", json!({"will": true})),
            DENIED,
        ),
        (
            "global admins do",
            Admin,
            Merge("company:info/pearl/admins", json!({"will": true})),
            Allowed,
        ),
        (
            "admin flags are true or absent",
            Admin,
            Merge("company:info/pearl/admins", json!({"davy": "yes"})),
            INVALID,
        ),
        // Employees: the index is the server's, readable by the company.
        (
            "members read their company's employees",
            jack,
            Read("company:employees/pearl"),
            Allowed,
        ),
        (
            "outsiders cannot",
            davy,
            Read("company:employees/pearl"),
            DENIED,
        ),
        (
            "admins can",
            Admin,
            Read("company:employees/dutchman"),
            Allowed,
        ),
        (
            "clients cannot write the index",
            jack,
            Set("company:employees/pearl/jack", json!(5)),
            DENIED,
        ),
        (
            "not even admins",
            Admin,
            Set("company:employees/pearl/x", json!(5)),
            DENIED,
        ),
        (
            "members subscribe to it",
            jack,
            Subscribe("company:employees/pearl"),
            Allowed,
        ),
        (
            "outsiders cannot subscribe",
            davy,
            Subscribe("company:employees/pearl"),
            DENIED,
        ),
        // Guestbook: anyone signs, nobody edits.
        (
            "anonymous reads the guestbook",
            Anonymous,
            Read("guestbook"),
            Allowed,
        ),
        (
            "anonymous signs it",
            Anonymous,
            Set("guestbook/g1", json!({"message": "ahoy"})),
            Allowed,
        ),
        (
            "signed-in users sign it",
            jack,
            Set("guestbook/g2", json!({"message": "savvy?"})),
            Allowed,
        ),
        (
            "entries cannot be changed",
            jack,
            Set("guestbook/g0", json!({"message": "edited"})),
            DENIED,
        ),
        (
            "entries cannot be deleted",
            Anonymous,
            Delete("guestbook/g0"),
            DENIED,
        ),
        (
            "messages at most 280 characters",
            Anonymous,
            Set("guestbook/g3", json!({"message": long(281)})),
            INVALID,
        ),
        (
            "messages are strings",
            Anonymous,
            Set("guestbook/g4", json!({"message": 1})),
            INVALID,
        ),
        (
            "anonymous subscribes to the guestbook",
            Anonymous,
            Subscribe("guestbook"),
            Allowed,
        ),
        // No rule: denied by default.
        (
            "paths without rules are closed",
            Admin,
            Read("secrets"),
            DENIED,
        ),
        (
            "and cannot be written",
            Admin,
            Set("secrets/x", json!(1)),
            DENIED,
        ),
        ("the root cannot be read", jack, Read(""), DENIED),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let running = server().await;
    let mut failures = Vec::new();
    for (name, who, op, expected) in &cases {
        let (got, reply) = run(&running, *who, op).await;
        if &got != expected {
            failures.push(format!(
                "{name} ({who:?}): expected {expected:?}, got {got:?}: {reply}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} security cases passed", cases.len());
}

#[tokio::test]
async fn server_set_fields_and_the_index_appear_atomically_and_refusals_leave_nothing() {
    let running = server().await;
    let jack = token(Who::User("jack")).unwrap();
    let reply = reqwest::Client::new()
        .put(url(&running, "/v1/data/todos/jack/t9"))
        .bearer_auth(&jack)
        .body(r#"{"text": "sail"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let seq = reply.json::<Value>().await.unwrap()["seq"].clone();
    let todo = running
        .kora
        .read_value(&Path::parse("todos/jack/t9").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(todo["owner"], json!("jack"));
    assert!(todo["created"].is_i64() || todo["created"].is_u64());
    // One commit: the change log holds the fields in the same entry.
    let kora_store::LogRead::Changes(changes) = running
        .kora
        .store()
        .changes(seq.as_u64().unwrap() - 1, 1)
        .await
        .unwrap()
    else {
        panic!("compacted")
    };
    assert!(
        changes[0].mutation.to_json()["merge"]["todos"]["jack"]["t9"]["owner"] == json!("jack")
    );
    // The new todo's webhook is in the outbox of that commit.
    assert!(running.kora.store().stats().await.unwrap().effects_pending >= 1);

    // Will moves to the Dutchman: the index follows in the same commit.
    let will = token(Who::User("will")).unwrap();
    let reply = reqwest::Client::new()
        .patch(url(&running, "/v1/data/user:info/will"))
        .bearer_auth(&will)
        .body(r#"{"company": "dutchman"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let employees = running
        .kora
        .read_value(&Path::parse("company:employees").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(employees["dutchman"]["will"].is_i64() || employees["dutchman"]["will"].is_u64());
    assert!(employees["pearl"].get("will").is_none());

    // A refused write leaves nothing: not its data, not its derived writes.
    let before = running.kora.store().last_seq().await.unwrap();
    let reply = reqwest::Client::new()
        .patch(url(&running, "/v1/data/user:info/will"))
        .bearer_auth(&will)
        .body(r#"{"company": "nowhere"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 422);
    assert_eq!(running.kora.store().last_seq().await.unwrap(), before);
}

#[tokio::test]
async fn a_subscription_never_delivers_a_child_its_subscriber_may_not_read() {
    let running = server().await;
    let mut will = Client::connect(&running).await;
    will.request(json!({"op": "auth", "token": token(Who::User("will")).unwrap()}))
        .await;
    let reply = will.subscribe("user:info/jack").await;
    let value = &reply["result"]["value"]["user:info"]["jack"];
    assert_eq!(value["name"], json!("Jack"));
    assert!(
        value.get("email").is_none(),
        "the snapshot hides the email: {reply}"
    );

    let mut jack = Client::connect(&running).await;
    jack.request(json!({"op": "auth", "token": token(Who::User("jack")).unwrap()}))
        .await;
    let reply = jack
        .mutate(json!({"merge": {"user:info": {"jack": {"email": "new@pearl.sea", "name": "J"}}}}))
        .await;
    assert!(reply.get("result").is_some(), "{reply}");
    let push = will.push().await;
    let text = push.to_string();
    assert!(!text.contains("new@pearl.sea"), "the email leaked: {text}");
    assert_eq!(
        push["mutation"]["merge"]["user:info"]["jack"]["name"],
        json!("J")
    );
    assert!(will.maybe_push(Duration::from_millis(100)).await.is_none());
}

#[tokio::test]
async fn rules_reload_when_the_file_changes_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kora.rules.yaml");
    std::fs::write(&file, "rules:\n  open:\n    read: true\n    write: true\n").unwrap();
    let running = server_with(Kora::builder(), |config| config.rules = Some(file.clone())).await;
    let mut client = Client::connect(&running).await;
    assert!(client
        .mutate(json!({"merge": {"open": {"a": 1}}}))
        .await
        .get("result")
        .is_some());
    // A file with an error is refused; the old rules stay.
    std::fs::write(&file, "rules:\n  open:\n    write: 1 +\n").unwrap();
    tokio::time::sleep(kora_server::reload::RELOAD_POLL * 2).await;
    assert!(client
        .mutate(json!({"merge": {"open": {"b": 1}}}))
        .await
        .get("result")
        .is_some());
    // A good file takes effect without dropping the connection.
    std::fs::write(&file, "rules:\n  open:\n    read: true\n    write: false\n").unwrap();
    let client = std::sync::Arc::new(tokio::sync::Mutex::new(client));
    kora_testkit::eventually("the new rules", || {
        let client = client.clone();
        async move {
            let reply = client
                .lock()
                .await
                .mutate(json!({"merge": {"open": {"c": 1}}}))
                .await;
            reply["error"]["code"] == json!("permission_denied")
        }
    })
    .await;
}

/// A subscriber that loses the right to read its path (here: it drops its identity) gets an
/// `ended` push at the next change, and nothing more.
#[tokio::test]
async fn a_subscription_ends_when_its_reader_may_no_longer_read() {
    let running = server().await;
    let mut jack = Client::connect(&running).await;
    let token = token(Who::User("jack")).unwrap();
    jack.request(json!({"op": "auth", "token": token})).await;
    let reply = jack
        .request(json!({"op": "query", "paths": [{"path": "todos/jack", "subscribe": true}]}))
        .await;
    assert!(reply.get("result").is_some(), "{reply}");
    let reply = jack.request(json!({"op": "auth", "token": null})).await;
    assert_eq!(reply["result"], json!({"auth": null}));

    let system = running.kora.system_context();
    let todo = json!({"text": "more rum"});
    let m = Mutation::merge(&Path::parse("todos/jack/t1").unwrap(), todo).unwrap();
    running.kora.mutate(&system, m, None).await.unwrap();
    let push = jack.push().await;
    assert_eq!(push["push"], "ended", "{push}");
    assert_eq!(push["sub"], "todos/jack");
    assert_eq!(push["error"]["code"], "permission_denied");
    let m = Mutation::merge(&Path::parse("todos/jack/t2").unwrap(), json!({"text": "x"})).unwrap();
    running.kora.mutate(&system, m, None).await.unwrap();
    assert_eq!(jack.maybe_push(Duration::from_millis(300)).await, None);
}
