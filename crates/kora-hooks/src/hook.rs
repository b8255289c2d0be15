//! The interceptor and the call handler that forward to an endpoint: what each request
//! carries, and what each answer does.

use async_trait::async_trait;
use kora_core::{Layer, Mutation, Path, Value};
use kora_engine::{Context, Error, Handler, Interceptor, Kora, ReadLayer, Relation, WriteLayer};
use serde_json::{json, Map};

use crate::client::{Answer, Endpoint};
use crate::config::HookKind;

/// An interceptor whose decisions an endpoint makes.
#[derive(Debug)]
pub struct HttpInterceptor {
    pub endpoint: Endpoint,
    /// The pattern it is registered on, as written (sent with each request).
    pub pattern: String,
    pub on: Vec<HookKind>,
    /// Path templates (`stock/$id`) whose values `before_mutation` sends along.
    pub reads: Vec<String>,
    /// Path templates a `resolve` answer is computed from (a live virtual path).
    pub resolves_from: Vec<String>,
}

#[async_trait]
impl Interceptor for HttpInterceptor {
    async fn before_mutation(
        &self,
        write: &WriteLayer<'_>,
        ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        if !self.on.contains(&HookKind::BeforeMutation) {
            return Ok(None);
        }
        // Read through the engine: the write commits only if these are unchanged by then.
        let data = write.data().await?;
        let new_data = kora_engine::interceptor::after(write.path, data.clone(), write.mutation);
        let reads = self.declared_reads(write).await?;
        let body = json!({
            "hook": HookKind::BeforeMutation.as_str(),
            "pattern": self.pattern,
            "path": write.path.to_string(),
            "captures": write.captures,
            "layer": layer_json(write.layer),
            "data": data,
            "new_data": new_data,
            "reads": reads,
            "mutation": write.mutation,
            "stamp": write.stamp.to_string(),
            "context": context_json(ctx),
        });
        let Some(answer) = self
            .endpoint
            .ask(HookKind::BeforeMutation.as_str(), &body)
            .await?
        else {
            return Ok(None);
        };
        if let Some(refusal) = answer.refuse {
            return Err(refusal);
        }
        additions(write, &new_data, answer)
    }

    async fn before_query(&self, read: &ReadLayer<'_>, ctx: &Context) -> Result<(), Error> {
        if !self.on.contains(&HookKind::BeforeQuery) {
            return Ok(());
        }
        let body = self.read_request(HookKind::BeforeQuery, read, ctx);
        match self
            .endpoint
            .ask(HookKind::BeforeQuery.as_str(), &body)
            .await?
        {
            Some(Answer {
                refuse: Some(refusal),
                ..
            }) => Err(refusal),
            _ => Ok(()),
        }
    }

    fn answers_reads(&self) -> bool {
        self.on.contains(&HookKind::Resolve)
    }

    fn resolves_from(&self, read: &ReadLayer<'_>) -> Vec<Path> {
        let Relation::Exact(captures) = read.relation else {
            return Vec::new();
        };
        self.resolves_from
            .iter()
            .filter_map(|template| fill(template, captures).ok())
            .collect()
    }

    async fn resolve_query(
        &self,
        read: &ReadLayer<'_>,
        ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        let body = self.read_request(HookKind::Resolve, read, ctx);
        let Some(answer) = self.endpoint.ask(HookKind::Resolve.as_str(), &body).await? else {
            return Ok(None);
        };
        if let Some(refusal) = answer.refuse {
            return Err(refusal);
        }
        Ok(answer.value)
    }
}

impl HttpInterceptor {
    /// The values at the declared `reads`, by path (captures filled in).
    async fn declared_reads(&self, write: &WriteLayer<'_>) -> Result<Map<String, Value>, Error> {
        let mut out = Map::new();
        for template in &self.reads {
            let path = fill(template, write.captures)?;
            let value = write.kora.read_value(&path).await?;
            out.insert(path.to_string(), value.unwrap_or(Value::Null));
        }
        Ok(out)
    }

    fn read_request(&self, hook: HookKind, read: &ReadLayer<'_>, ctx: &Context) -> Value {
        let (relation, captures) = match read.relation {
            Relation::Exact(c) => ("exact", Some(c)),
            Relation::Ancestor(c) => ("ancestor", Some(c)),
            Relation::Descendant => ("descendant", None),
        };
        json!({
            "hook": hook.as_str(),
            "pattern": self.pattern,
            "path": read.query.path.to_string(),
            "relation": relation,
            "captures": captures,
            "query": read.query,
            "context": context_json(ctx),
        })
    }
}

/// What a `before_mutation` answer adds to the write: its `replace` (unless the layer's value
/// is that already) and its `add` (unless the write holds it already), so that a hook asked
/// again about its own addition, as every addition is, can answer the same and end there.
fn additions(
    write: &WriteLayer<'_>,
    new_data: &Option<Value>,
    answer: Answer,
) -> Result<Option<Mutation>, Error> {
    let mut out: Option<Mutation> = None;
    if let Some(value) = answer.replace {
        let unchanged = new_data.as_ref().unwrap_or(&Value::Null) == &value;
        if !unchanged {
            let replace = match value {
                Value::Null => Mutation::delete(write.path),
                value => Mutation::set(write.path, value).map_err(bad_answer)?,
            };
            out = Some(replace);
        }
    }
    if let Some(add) = answer.add {
        let add = Mutation::from_json(&add).map_err(bad_answer)?;
        let held = write.mutation.clone().combine(add.clone()) == *write.mutation;
        if !held {
            out = Some(match out {
                Some(replace) => replace.combine(add),
                None => add,
            });
        }
    }
    Ok(out)
}

fn bad_answer(error: impl std::fmt::Display) -> Error {
    Error::internal(format!(
        "a hook answered a write that cannot be made: {error}"
    ))
}

/// A `call` handler an endpoint serves.
#[derive(Debug)]
pub struct HttpCall {
    pub endpoint: Endpoint,
    pub name: String,
}

#[async_trait]
impl Handler for HttpCall {
    async fn handle(&self, args: Value, ctx: &Context, _kora: &Kora) -> Result<Value, Error> {
        let body = json!({
            "hook": "call",
            "name": self.name,
            "args": args,
            "context": context_json(ctx),
        });
        let Some(answer) = self.endpoint.ask("call", &body).await? else {
            return Ok(Value::Null);
        };
        if let Some(refusal) = answer.refuse {
            return Err(refusal);
        }
        for (key, value) in answer.state {
            ctx.set(&key, value);
        }
        Ok(answer.value.unwrap_or(Value::Null))
    }
}

/// The caller as a hook sees it.
fn context_json(ctx: &Context) -> Value {
    json!({
        "user": ctx.user(),
        "auth": ctx.auth(),
        "state": ctx.state(),
        "system": ctx.is_system(),
        "connection": ctx.id(),
    })
}

/// A layer as JSON: what is merged at the path (a branch's children or a leaf) and what is
/// deleted at or beneath it.
fn layer_json(layer: &Layer<'_>) -> Value {
    json!({
        "merge": layer.merge,
        "leaf": layer.leaf,
        "delete": layer.delete,
    })
}

/// `template` with each `$name` segment replaced by its capture.
fn fill(template: &str, captures: &kora_engine::Captures) -> Result<Path, Error> {
    let segments: Vec<&str> = template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('$') {
            Some(name) => captures.get(name).map_or(s, String::as_str),
            None => s,
        })
        .collect();
    Path::parse(&segments.join("/"))
        .map_err(|e| Error::internal(format!("hook reads {template:?}: {e}")))
}
