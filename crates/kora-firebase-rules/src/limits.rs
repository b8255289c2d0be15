//! Every bound of the crate, in one place.
//!
//! A rules file is written by the operator, but its expressions run against data and
//! identities that clients send, and the parser must survive any text. Each limit keeps one
//! kind of work bounded; each is far above what a hand-written rules file needs.

/// Largest rules file accepted, in bytes: Firebase's own limit for `database.rules.json`.
pub const MAX_RULES_BYTES: usize = 256 * 1024;

/// Deepest nesting of rule locations (`rules/a/b/…`). Firebase paths are at most 32 keys
/// deep, so a rule deeper than that could never apply.
pub const MAX_RULES_DEPTH: usize = 32;

/// Longest expression, in bytes. Rules compiled from Bolt run to a few KiB; 16 KiB keeps
/// every expression quick to parse.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;

/// Deepest expression tree (nested parentheses, operators, calls, member accesses). Bounds
/// the recursion of the parser, the type checker and the evaluator, so no input overflows
/// the stack.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

/// Largest compiled regular expression (`matches(/…/)`), in bytes of the compiled program.
/// The `regex` crate matches in linear time; this bounds its memory.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// Largest repetition count in a regular expression (`a{1000}`); larger counts only make a
/// program big.
pub const MAX_REGEX_REPEAT: u32 = 1_000;

/// Longest string an evaluation may build (with `+`, `replace`, `toUpperCase`…), in bytes.
/// Nested `replace` calls grow a string geometrically; past this the rule errs (and so
/// refuses).
pub const MAX_STRING_BYTES: usize = 1 << 20;
