//! Runs the examples in-process against the memory store and prints what happens.
//! `cargo run -p kora-example-app`

use kora_core::{Mutation, Path, PathQuery, Query};
use kora_engine::{Context, Error, Kora};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let kora = kora_example_app::register(Kora::builder(), "http://127.0.0.1:9/hook")
        .build()
        .await?;
    let ctx = Context::new(1);
    let path = |p: &str| Path::parse(p);

    kora.call(&ctx, "login", json!({"user": "jack"})).await?;
    let todo = Mutation::merge(&path("todos/T1")?, json!({"text": "Find the Black Pearl"}))?;
    kora.mutate(&ctx, todo, None).await?;
    println!(
        "todo: {}",
        json!(kora.read_value(&path("todos/T1")?).await?)
    );

    let untitled = Mutation::merge(&path("todos/T2")?, json!({"done": false}))?;
    match kora.mutate(&ctx, untitled, None).await {
        Err(error) => println!("refused: {error}"),
        Ok(_) => println!("unexpectedly accepted"),
    }

    let user = Mutation::merge(
        &path("user:info/jack")?,
        json!({"name": "Jack", "company": "pearl"}),
    )?;
    kora.mutate(&ctx, user, None).await?;
    println!(
        "employees: {}",
        json!(kora.read_value(&path("company:employees")?).await?)
    );

    let stats = kora
        .query(
            &ctx,
            &Query {
                paths: vec![PathQuery::new(path("stats/todos")?)],
            },
        )
        .await?;
    println!("stats: {}", stats.value);
    kora.shutdown().await;
    Ok(())
}
