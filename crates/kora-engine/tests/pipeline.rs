//! The write pipeline: interceptor order, refusals, augmentation, stamping.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kora_core::{Mutation, Path, PathQuery, Query, Stamp};
use kora_engine::{Code, Context, Error, Interceptor, Kora, Push, WriteLayer};
use kora_store::NewEffect;
use serde_json::json;

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

/// Records the order interceptors ran in, and may refuse or add.
struct Probe {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    refuse: bool,
    add: Option<serde_json::Value>,
}

#[async_trait]
impl Interceptor for Probe {
    async fn before_mutation(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{}", self.name, layer.path));
        if self.refuse {
            return Err(Error::validation_failed(format!("{} says no", self.name)));
        }
        Ok(self.add.clone().map(|m| Mutation::from_json(&m).unwrap()))
    }

    async fn effects(
        &self,
        _layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Vec<NewEffect>, Error> {
        Ok(vec![NewEffect {
            kind: "noop".into(),
            payload: json!({"from": self.name}),
        }])
    }
}

fn probe(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Probe {
    Probe {
        name,
        log: log.clone(),
        refuse: false,
        add: None,
    }
}

async fn get(kora: &Kora, path: &str) -> Option<serde_json::Value> {
    kora.read_value(&p(path)).await.unwrap()
}

#[tokio::test]
async fn interceptors_run_in_configured_order_for_each_matching_layer() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let kora = Kora::builder()
        .interceptor("todos/$id", probe("first", &log))
        .interceptor("todos/$id", probe("second", &log))
        .interceptor("users/**", probe("users", &log))
        .build()
        .await
        .unwrap();
    let m =
        Mutation::from_json(&json!({"merge": {"todos": {"a": {"x": 1}, "b": {"x": 2}}}})).unwrap();
    kora.mutate(&Context::new(1), m, None).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "first:todos/a",
            "second:todos/a",
            "first:todos/b",
            "second:todos/b"
        ]
    );
}

#[tokio::test]
async fn a_refusal_in_the_last_interceptor_writes_nothing_delivers_nothing_runs_nothing() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let kora = Kora::builder()
        .interceptor("todos/$id", probe("first", &log))
        .interceptor(
            "todos/$id",
            Probe {
                refuse: true,
                ..probe("last", &log)
            },
        )
        .build()
        .await
        .unwrap();
    let mut watcher = kora.session(Context::new(2));
    watcher
        .subscribe("s", PathQuery::new(p("todos")), None)
        .await
        .unwrap();
    let m = Mutation::merge(&p("todos/a"), json!({"x": 1})).unwrap();
    let err = kora.mutate(&Context::new(1), m, None).await.unwrap_err();
    assert_eq!(err.code, Code::ValidationFailed);
    assert_eq!(get(&kora, "todos").await, None);
    assert_eq!(kora.store().last_seq().await.unwrap(), 0);
    assert_eq!(kora.store().stats().await.unwrap().effects_pending, 0);
    let pushed = tokio::time::timeout(std::time::Duration::from_millis(200), watcher.next()).await;
    assert!(pushed.is_err(), "nothing may be delivered: {pushed:?}");
}

#[tokio::test]
async fn added_mutations_are_combined_and_intercepted_in_turn() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let kora = Kora::builder()
        .interceptor(
            "todos/$id",
            Probe {
                add: Some(json!({"merge": {"counts": {"todos": 1}}})),
                ..probe("todo", &log)
            },
        )
        .interceptor("counts/$name", probe("count", &log))
        .build()
        .await
        .unwrap();
    let m = Mutation::merge(&p("todos/a"), json!({"x": 1})).unwrap();
    let commit = kora.mutate(&Context::new(1), m, None).await.unwrap();
    assert_eq!(get(&kora, "counts/todos").await, Some(json!(1)));
    assert_eq!(get(&kora, "todos/a/x").await, Some(json!(1)));
    assert!(log
        .lock()
        .unwrap()
        .contains(&"count:counts/todos".to_string()));
    // One commit holds the write and what was added: atomic.
    assert_eq!(commit.seq, 1);
    assert_eq!(kora.store().stats().await.unwrap().effects_pending, 2);
}

#[tokio::test]
async fn interceptors_that_keep_adding_fail_loudly() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let kora = Kora::builder()
        .interceptor(
            "loop/$x",
            Probe {
                add: Some(json!({"merge": {"loop": {"x": 1}}})),
                ..probe("loop", &log)
            },
        )
        .build()
        .await
        .unwrap();
    let m = Mutation::merge(&p("loop/x"), json!(1)).unwrap();
    let err = kora.mutate(&Context::new(1), m, None).await.unwrap_err();
    assert_eq!(err.code, Code::Internal);
    assert_eq!(get(&kora, "loop").await, None);
}

#[tokio::test]
async fn client_stamps_decide_conflicts_and_far_future_ones_are_restamped() {
    let kora = Kora::builder().build().await.unwrap();
    let ctx = Context::new(9);
    let now = kora.clock().now();
    let older = Stamp::new(now.millis() - 5_000, 0, 9);
    let m = |v| Mutation::merge(&p("a"), json!(v)).unwrap();
    kora.mutate(&ctx, m(1), None).await.unwrap();
    let late = kora.mutate(&ctx, m(2), Some(older)).await.unwrap();
    assert!(late.effect.is_empty(), "an older offline write loses");
    assert_eq!(get(&kora, "a").await, Some(json!(1)));

    let far = Stamp::new(now.millis() + 3_600_000, 0, 9);
    let commit = kora.mutate(&ctx, m(3), Some(far)).await.unwrap();
    assert!(commit.stamp < far, "re-stamped with the server clock");
    assert_eq!(get(&kora, "a").await, Some(json!(3)));
}

#[tokio::test]
async fn queries_answer_several_paths_as_one_tree() {
    let kora = Kora::builder().build().await.unwrap();
    let ctx = Context::new(1);
    let m = Mutation::from_json(&json!({"merge": {"a": {"x": 1}, "b": 2, "c": 3}})).unwrap();
    kora.mutate(&ctx, m, None).await.unwrap();
    let answer = kora
        .query(&ctx, &Query::of([p("a"), p("b"), p("missing")]))
        .await
        .unwrap();
    assert_eq!(answer.value, json!({"a": {"x": 1}, "b": 2}));
    assert_eq!(answer.seq, 1);
}

#[tokio::test]
async fn handlers_change_connection_state() {
    use kora_engine::FnHandler;
    let kora = Kora::builder()
        .handler(
            "login",
            FnHandler(
                |args: serde_json::Value, ctx: Context, _kora: Kora| async move {
                    ctx.set("user", args["user"].clone());
                    Ok(json!({"ok": true}))
                },
            ),
        )
        .build()
        .await
        .unwrap();
    let ctx = Context::new(1);
    let reply = kora
        .call(&ctx, "login", json!({"user": "jack"}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"ok": true}));
    assert_eq!(ctx.user().as_deref(), Some("jack"));
    let err = kora.call(&ctx, "nope", json!(null)).await.unwrap_err();
    assert_eq!(err.code, Code::NotFound);
    let _ = Push::Reset {
        id: String::new(),
        seq: 0,
        value: None,
        query: None,
    };
}
