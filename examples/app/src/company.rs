//! Keeps `company:employees/$company/$uid` (value: join time) in step with
//! `user:info/$uid/company`: set, changed, or the user deleted.
//!
//! The interceptor compares the user's company before the write (`data`) with the company
//! after it (`new_data`), so every way of writing it — merging the user, setting the field,
//! deleting the user, replacing the user — is handled by one rule.

use async_trait::async_trait;
use kora_core::{Mutation, Path, Value};
use kora_engine::{Context, Error, Interceptor, WriteLayer};

pub struct CompanyEmployees;

fn company(user: &Option<Value>) -> Option<String> {
    user.as_ref()?.get("company")?.as_str().map(String::from)
}

fn employee(company: &str, uid: &str) -> Result<Path, Error> {
    Ok(Path::from_segments(["company:employees", company, uid])?)
}

#[async_trait]
impl Interceptor for CompanyEmployees {
    async fn before_mutation(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        let uid = layer.capture("uid");
        let before = company(&layer.data().await?);
        let after = company(&layer.new_data().await?);
        if before == after {
            return Ok(None);
        }
        let mut extra = Mutation::new();
        if let Some(old) = before {
            extra = extra.and_delete(&employee(&old, uid)?);
        }
        if let Some(new) = after {
            let joined = Value::from(layer.stamp.millis());
            extra = extra.and_merge(&employee(&new, uid)?, joined)?;
        }
        Ok(Some(extra))
    }
}
