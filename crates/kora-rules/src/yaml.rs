//! Reads a YAML document into a small tree that remembers where every node starts, so that
//! every problem in a rules file can name its line and column.
//!
//! Built from `saphyr-parser` events without recursion. Only the plain subset a rules file
//! needs is accepted: one document of maps, lists and scalars. Anchors, aliases and tags are
//! refused (a rules file has no use for them, and a value starting with `!` is almost always
//! an unquoted expression such as `!data.done`), as are duplicate keys and nesting deeper
//! than [`MAX_YAML_DEPTH`]. All scalars are kept as text: expressions are parsed later.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::limits::MAX_YAML_DEPTH;

/// A position in the file; both count from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub column: usize,
}

/// How a scalar was written, which tells where its text starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Scalar(String, Style),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub start: Mark,
    /// The node's text lies on one line (so columns within a scalar are exact).
    pub single_line: bool,
}

impl Node {
    /// A short name of the node's type, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(..) => "a scalar",
            Kind::List(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }
}

/// A problem found while reading: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub at: Mark,
    pub message: String,
}

fn mark(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

enum Frame {
    List(Node, Vec<Node>),
    Map(Node, Vec<(Node, Node)>, Option<Node>),
}

/// Reads `text`; `Ok(None)` when it holds no document (empty, or only comments).
pub(crate) fn read(text: &str) -> Result<Option<Node>, YamlError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            at: Mark {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        if matches!(event, Event::StreamEnd) {
            break;
        }
        builder.event(event, &span)?;
    }
    Ok(builder.done)
}

/// Builds the tree from events, with an explicit stack of open collections.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    done: Option<Node>,
    documents: usize,
}

impl Builder {
    fn event(&mut self, event: Event, span: &Span) -> Result<(), YamlError> {
        let at = mark(span);
        let node = match event {
            Event::DocumentStart(_) => return self.document(at),
            Event::Alias(_) => return Err(error(at, "YAML aliases (`*name`) are not supported")),
            Event::Scalar(text, style, anchor, tag) => {
                refuse_extras(at, anchor, tag.as_deref())?;
                scalar(text.into_owned(), style, at, span)
            }
            Event::SequenceStart(anchor, tag) => {
                return self.open(at, anchor, tag.as_deref(), true)
            }
            Event::MappingStart(anchor, tag) => {
                return self.open(at, anchor, tag.as_deref(), false)
            }
            Event::SequenceEnd | Event::MappingEnd => close(self.stack.pop(), at)?,
            _ => return Ok(()),
        };
        match self.stack.last_mut() {
            Some(frame) => add(frame, node),
            None => {
                self.done = Some(node);
                Ok(())
            }
        }
    }

    fn document(&mut self, at: Mark) -> Result<(), YamlError> {
        self.documents += 1;
        if self.documents > 1 {
            return Err(error(at, "a rules file holds one YAML document"));
        }
        Ok(())
    }

    fn open(
        &mut self,
        at: Mark,
        anchor: usize,
        tag: Option<&saphyr_parser::Tag>,
        list: bool,
    ) -> Result<(), YamlError> {
        refuse_extras(at, anchor, tag)?;
        if self.stack.len() >= MAX_YAML_DEPTH {
            return Err(error(
                at,
                format!("nesting deeper than {MAX_YAML_DEPTH} levels"),
            ));
        }
        let start = Node {
            kind: Kind::Scalar(String::new(), Style::Plain),
            start: at,
            single_line: false,
        };
        self.stack.push(if list {
            Frame::List(start, Vec::new())
        } else {
            Frame::Map(start, Vec::new(), None)
        });
        Ok(())
    }
}

fn error(at: Mark, message: impl Into<String>) -> YamlError {
    YamlError {
        at,
        message: message.into(),
    }
}

fn refuse_extras(
    at: Mark,
    anchor: usize,
    tag: Option<&saphyr_parser::Tag>,
) -> Result<(), YamlError> {
    if anchor != 0 {
        return Err(error(at, "YAML anchors (`&name`) are not supported"));
    }
    if let Some(tag) = tag {
        return Err(error(
            at,
            format!(
                "YAML read `{tag}` as a tag; quote values that start with `!` (\"!data.done\")"
            ),
        ));
    }
    Ok(())
}

fn scalar(text: String, style: ScalarStyle, at: Mark, span: &Span) -> Node {
    let style = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
        _ => Style::Block,
    };
    Node {
        kind: Kind::Scalar(text, style),
        start: at,
        single_line: style != Style::Block && span.start.line() == span.end.line(),
    }
}

fn close(frame: Option<Frame>, at: Mark) -> Result<Node, YamlError> {
    match frame {
        Some(Frame::List(mut node, items)) => {
            node.kind = Kind::List(items);
            Ok(node)
        }
        Some(Frame::Map(mut node, entries, None)) => {
            node.kind = Kind::Map(entries);
            Ok(node)
        }
        Some(Frame::Map(_, _, Some(key))) => Err(error(key.start, "a key without a value")),
        None => Err(error(at, "unbalanced YAML collection")),
    }
}

fn add(frame: &mut Frame, node: Node) -> Result<(), YamlError> {
    match frame {
        Frame::List(_, items) => items.push(node),
        Frame::Map(_, entries, pending) => match pending.take() {
            Some(key) => entries.push((key, node)),
            None => {
                let Kind::Scalar(text, _) = &node.kind else {
                    return Err(error(node.start, "map keys must be plain text"));
                };
                if entries.iter().any(|(k, _)| k.kind == node.kind) {
                    return Err(error(node.start, format!("key {text:?} appears twice")));
                }
                *pending = Some(node);
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_text(node: &Node) -> &str {
        match &node.kind {
            Kind::Scalar(text, _) => text,
            _ => panic!("not a scalar"),
        }
    }

    #[test]
    fn reads_maps_lists_and_scalars_with_positions() {
        let text = "rules:\n  a/$x:\n    read: \"auth != null\"\n    index:\n      - path: p\n";
        let root = read(text).unwrap().unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("expected a map")
        };
        let (key, rules) = &entries[0];
        assert_eq!(scalar_text(key), "rules");
        let Kind::Map(patterns) = &rules.kind else {
            panic!("expected a map")
        };
        let (pattern, body) = &patterns[0];
        assert_eq!(scalar_text(pattern), "a/$x");
        assert_eq!(pattern.start, Mark { line: 2, column: 3 });
        let Kind::Map(fields) = &body.kind else {
            panic!("expected a map")
        };
        let (_, read_expr) = &fields[0];
        assert_eq!(scalar_text(read_expr), "auth != null");
        assert_eq!(
            read_expr.start,
            Mark {
                line: 3,
                column: 11
            }
        );
        assert!(read_expr.single_line);
        assert!(matches!(&fields[1].1.kind, Kind::List(items) if items.len() == 1));
    }

    #[test]
    fn empty_text_has_no_document() {
        assert_eq!(read("").unwrap(), None);
        assert_eq!(read("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn refuses_what_rules_files_do_not_use() {
        assert!(read("a: !data.done\n").unwrap_err().message.contains("tag"));
        assert!(read("a: &x 1\nb: *x\n")
            .unwrap_err()
            .message
            .contains("anchors"));
        assert!(read("a: 1\na: 2\n").unwrap_err().message.contains("twice"));
        assert!(read("a: 1\n---\nb: 2\n")
            .unwrap_err()
            .message
            .contains("one YAML document"));
        assert!(read("? [a]\n: 1\n").unwrap_err().message.contains("keys"));
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(read(&deep).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let error = read("a:\n  b: [1, 2\n").unwrap_err();
        assert!(error.at.line >= 2, "{error:?}");
    }
}
