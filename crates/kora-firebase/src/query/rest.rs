//! REST query parameters (`orderBy`, `startAt`, `startAfter`, `endAt`, `endBefore`, `equalTo`,
//! `limitToFirst`, `limitToLast`) as the REST docs and the JS SDK's
//! `queryParamsToRestQueryStringParameters` write them: `orderBy` is a JSON string, bounds are
//! JSON values optionally followed by `,"key"`, limits are integers.

use serde_json::Value;

use super::{Bound, FbQuery, Index, Limit};

/// The parameters that filter and so need an `orderBy`.
const FILTERS: [&str; 7] = [
    "startAt",
    "startAfter",
    "endAt",
    "endBefore",
    "equalTo",
    "limitToFirst",
    "limitToLast",
];

impl FbQuery {
    /// Parses REST query parameters (already URL-decoded; other parameters are ignored; a
    /// repeated parameter counts once, the last one). `Ok(None)` when there is neither `orderBy`
    /// nor a filter. Errors (for a 400) when a filter comes without `orderBy`, a value is not
    /// JSON, or parameters contradict each other (both limits, `equalTo` with another bound,
    /// `startAt` with `startAfter`, `endAt` with `endBefore`).
    pub fn from_rest(params: &[(String, String)]) -> Result<Option<FbQuery>, String> {
        let param = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(order_by) = param("orderBy") else {
            if FILTERS.iter().any(|f| param(f).is_some()) {
                return Err(
                    "orderBy must be defined when other query parameters are defined".into(),
                );
            }
            return Ok(None);
        };
        let index = parse_order_by(order_by)?;
        let (start, end) = rest_range(&param)?;
        let limit = rest_limit(param("limitToFirst"), param("limitToLast"))?;
        FbQuery::checked(index, start, end, limit).map(Some)
    }
}

fn parse_order_by(raw: &str) -> Result<Index, String> {
    let invalid = || format!("orderBy must be a valid JSON encoded path, not {raw}");
    let Ok(Value::String(order_by)) = serde_json::from_str::<Value>(raw) else {
        return Err(invalid());
    };
    match order_by.as_str() {
        "$key" => Ok(Index::Key),
        "$value" => Ok(Index::Value),
        "$priority" => Ok(Index::Priority),
        path => Index::from_wire(path).map_err(|_| invalid()),
    }
}

type Range = (Option<Bound>, Option<Bound>);

fn rest_range<'a>(param: &dyn Fn(&str) -> Option<&'a str>) -> Result<Range, String> {
    let bound = |name: &str, inclusive: bool| -> Result<Option<Bound>, String> {
        param(name)
            .map(|raw| parse_bound(name, raw, inclusive))
            .transpose()
    };
    let start_at = bound("startAt", true)?;
    let start_after = bound("startAfter", false)?;
    let end_at = bound("endAt", true)?;
    let end_before = bound("endBefore", false)?;
    if let Some(equal) = bound("equalTo", true)? {
        if start_at.is_some() || start_after.is_some() || end_at.is_some() || end_before.is_some() {
            return Err(
                "equalTo cannot be combined with startAt, startAfter, endAt or endBefore".into(),
            );
        }
        return Ok((Some(equal.clone()), Some(equal)));
    }
    if start_at.is_some() && start_after.is_some() {
        return Err("startAt and startAfter cannot both be defined".into());
    }
    if end_at.is_some() && end_before.is_some() {
        return Err("endAt and endBefore cannot both be defined".into());
    }
    Ok((start_at.or(start_after), end_at.or(end_before)))
}

/// `value` or `value,"key"`, each JSON. The value is read as the longest JSON prefix, so a
/// string value may itself contain commas.
fn parse_bound(name: &str, raw: &str, inclusive: bool) -> Result<Bound, String> {
    let invalid = || format!("{name} must be a JSON value, optionally followed by ,\"key\": {raw}");
    let mut stream = serde_json::Deserializer::from_str(raw).into_iter::<Value>();
    let Some(Ok(value)) = stream.next() else {
        return Err(invalid());
    };
    // The offset is where the value ended, a character boundary.
    let rest = raw.get(stream.byte_offset()..).unwrap_or_default().trim();
    if rest.is_empty() {
        return Ok(Bound {
            value,
            key: None,
            inclusive,
        });
    }
    let key_json = rest.strip_prefix(',').ok_or_else(invalid)?;
    match serde_json::from_str::<Value>(key_json) {
        Ok(Value::String(key)) => Ok(Bound {
            value,
            key: Some(key),
            inclusive,
        }),
        _ => Err(invalid()),
    }
}

fn rest_limit(first: Option<&str>, last: Option<&str>) -> Result<Option<Limit>, String> {
    let count = |name: &str, raw: &str| {
        raw.trim()
            .parse::<usize>()
            .map_err(|_| format!("{name} must be a non-negative integer, not {raw}"))
    };
    match (first, last) {
        (Some(_), Some(_)) => Err("limitToFirst and limitToLast cannot both be defined".into()),
        (Some(raw), None) => Ok(Some(Limit {
            count: count("limitToFirst", raw)?,
            from_left: true,
        })),
        (None, Some(raw)) => Ok(Some(Limit {
            count: count("limitToLast", raw)?,
            from_left: false,
        })),
        (None, None) => Ok(None),
    }
}
