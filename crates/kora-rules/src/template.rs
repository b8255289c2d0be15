//! Path templates of `index` entries: `company:employees/{newData.company}/{$uid}` — text
//! with `{expression}` holes (`{{` and `}}` stand for literal braces).
//!
//! A hole's value must be a string or an integer that is a valid key: it fills part of one
//! segment and can never add segments, so no value a client writes can steer a derived
//! write somewhere else. A hole that is `null` or fails leaves the template unfilled (no
//! entry); a value that is not a valid key is reported so the write can be refused.

use kora_core::path::validate_segment;
use kora_core::{Path, Value};

use crate::expr::{Env, Expression, Stop, SyntaxError};

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Hole(Expression),
}

/// A parsed path template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// The outcome of filling a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filled {
    Path(Path),
    /// A hole was `null` or could not be evaluated: no entry.
    Unfilled,
    /// A hole gave a value that cannot be a key.
    Invalid(String),
}

impl Template {
    /// Parses `source`; `captures` are the names holes may use. Errors carry a byte offset
    /// into `source`.
    pub(crate) fn parse(source: &str, captures: &[&str]) -> Result<Template, SyntaxError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(c) = rest.chars().next() {
            let offset = source.len() - rest.len();
            if rest.starts_with("{{") || rest.starts_with("}}") {
                text.push(c);
                rest = &rest[2..];
            } else if c == '{' {
                let end = closing_brace(rest).ok_or_else(|| SyntaxError {
                    offset,
                    message: "`{` is not closed (write `{{` for a literal brace)".into(),
                })?;
                let hole = Expression::parse(&rest[1..end], captures).map_err(|e| SyntaxError {
                    offset: offset + 1 + e.offset,
                    message: e.message,
                })?;
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Hole(hole));
                rest = &rest[end + 1..];
            } else if c == '}' {
                return Err(SyntaxError {
                    offset,
                    message: "`}` without `{` (write `}}` for a literal brace)".into(),
                });
            } else {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        pieces.push(Piece::Text(text));
        let template = Template {
            source: source.to_string(),
            pieces,
        };
        template.check_shape()?;
        Ok(template)
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// With every hole filled by a key, the template must be a path below the root.
    fn check_shape(&self) -> Result<(), SyntaxError> {
        let sample: String = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Text(text) => text.as_str(),
                Piece::Hole(_) => "k",
            })
            .collect();
        match Path::parse(&sample) {
            Ok(path) if !path.is_root() => Ok(()),
            Ok(_) => Err(shape_error("the template names the root")),
            Err(e) => Err(shape_error(&format!("the template is not a path: {e}"))),
        }
    }

    /// Fills the holes. Only missing data stops it; failures leave it unfilled.
    pub(crate) fn fill(&self, env: &Env) -> Result<Filled, Stop> {
        let mut out = String::new();
        let mut outcome: Option<Filled> = None;
        let mut needs: Option<Stop> = None;
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Hole(hole) => match hole.eval(env) {
                    Ok(value) => match key(&value) {
                        Ok(Some(k)) => out.push_str(&k),
                        Ok(None) => outcome = outcome.or(Some(Filled::Unfilled)),
                        Err(reason) => outcome = outcome.or(Some(Filled::Invalid(reason))),
                    },
                    Err(Stop::Error(_)) => outcome = outcome.or(Some(Filled::Unfilled)),
                    Err(stop) => needs = Some(needs.map_or(stop.clone(), |n| n.strict(stop))),
                },
            }
        }
        if let Some(stop) = needs {
            return Err(stop);
        }
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
        Ok(match Path::parse(&out) {
            Ok(path) => Filled::Path(path),
            Err(e) => Filled::Invalid(format!("{out:?} is not a path: {e}")),
        })
    }
}

fn shape_error(message: &str) -> SyntaxError {
    SyntaxError {
        offset: 0,
        message: message.to_string(),
    }
}

/// The text a hole's value contributes: `None` for null, an error for non-keys.
fn key(value: &Value) -> Result<Option<String>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(format!(
                "a {} cannot be part of a key",
                crate::expr::type_name(other)
            ))
        }
    };
    validate_segment(&text, 0).map_err(|e| format!("{text:?} is not a key: {e}"))?;
    Ok(Some(text))
}

/// Byte index of the `}` closing the `{` at the start of `text`, skipping strings and
/// nested braces.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::lookup::NothingLoaded;
    use crate::pattern::Captures;
    use crate::world::{Side, World};

    fn fill(source: &str, new_data: Value) -> Filled {
        let template = Template::parse(source, &["uid"]).unwrap();
        let path = Path::parse("user:info/u1").unwrap();
        let mutation = kora_core::Mutation::set(&path, new_data).unwrap();
        let world = World::new(&NothingLoaded, &mutation);
        let captures = Captures::from([("uid".to_string(), "u1".to_string())]);
        let env = Env {
            world: &world,
            auth: &Value::Null,
            now: 5,
            captures: &captures,
            node: path.segments(),
            data: Side::Before,
            new_data: Side::After,
        };
        template.fill(&env).unwrap()
    }

    fn path(text: &str) -> Filled {
        Filled::Path(Path::parse(text).unwrap())
    }

    #[test]
    fn fills_holes_with_keys() {
        let t = "company:employees/{newData.company}/{$uid}";
        assert_eq!(
            fill(t, json!({"company": "acme"})),
            path("company:employees/acme/u1")
        );
        assert_eq!(fill("n/{newData.n}", json!({"n": 7})), path("n/7"));
        assert_eq!(
            fill("x/{{lit}}/{$uid}-{now}", json!({"a": 1})),
            path("x/{lit}/u1-5")
        );
        assert_eq!(fill("m/{ {'a': $uid}.a }", json!({"a": 1})), path("m/u1"));
        assert_eq!(fill("s/{'}' + $uid}", json!({"a": 1})), path("s/}u1"));
    }

    #[test]
    fn null_or_failing_holes_leave_it_unfilled() {
        let t = "company:employees/{newData.company}/{$uid}";
        assert_eq!(fill(t, json!({"name": "x"})), Filled::Unfilled);
        assert_eq!(
            fill("c/{newData.n + 1}", json!({"n": "x"})),
            Filled::Unfilled
        );
    }

    #[test]
    fn values_that_are_not_keys_are_invalid() {
        let t = "company:employees/{newData.company}/{$uid}";
        assert!(matches!(
            fill(t, json!({"company": "a/b"})),
            Filled::Invalid(_)
        ));
        assert!(matches!(
            fill(t, json!({"company": ""})),
            Filled::Invalid(_)
        ));
        assert!(matches!(
            fill(t, json!({"company": true})),
            Filled::Invalid(_)
        ));
        assert!(matches!(
            fill(t, json!({"company": 1.5})),
            Filled::Invalid(_)
        ));
    }

    #[test]
    fn malformed_templates_are_refused_with_offsets() {
        assert_eq!(Template::parse("a/{newData", &[]).unwrap_err().offset, 2);
        assert_eq!(Template::parse("a/}", &[]).unwrap_err().offset, 2);
        assert_eq!(Template::parse("a/{dta.x}", &[]).unwrap_err().offset, 3);
        assert!(Template::parse("a//{now}", &[]).is_err());
        assert!(Template::parse("", &[]).is_err());
        assert!(Template::parse("{$nope}", &["uid"]).is_err());
    }
}
