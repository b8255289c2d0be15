//! Every limit of the rules crate, in one place.
//!
//! Rules files are written by the operator, but expressions run against data that clients
//! write, and the parser must survive any text. Each limit keeps one kind of work bounded: the
//! size of what is parsed, the depth of what is built, the steps an evaluation takes, the data
//! it may ask for and the nodes one decision may visit. The defaults are far above what a
//! hand-written rules file needs, and far below what could hurt the server.

/// Largest rules file accepted, in bytes. 1 MiB holds thousands of rules; a larger file is
/// almost certainly not a rules file.
pub const MAX_RULES_FILE_BYTES: usize = 1 << 20;

/// Deepest nesting of YAML collections in a rules file. The format itself is five levels
/// deep (`rules` → pattern → `index` → entry → field); 16 leaves room for literal maps and
/// keeps a hostile `[[[[…` from building a deep tree.
pub const MAX_YAML_DEPTH: usize = 16;

/// Longest expression, in bytes. A long `validate` listing every field of a record is about
/// 1 KiB; 8 KiB is generous and keeps every expression quick to parse and to evaluate.
pub const MAX_EXPRESSION_BYTES: usize = 8 * 1024;

/// Deepest expression tree (nested parentheses, operators, calls, member accesses). Bounds
/// the recursion of the parser and of the evaluator so no input overflows the stack; 64 is
/// more than any readable expression uses.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

/// Most evaluation steps (one per expression node visited) for one evaluation. Without
/// loops or user functions a tree of at most [`MAX_EXPRESSION_BYTES`] cannot take more;
/// the limit is a second guard that stays meaningful if the language grows.
pub const MAX_EVAL_STEPS: usize = 10_000;

/// Most values read from the tree (`data`, `newData`, `root(…)`, `newRoot(…)`, each distinct
/// path once) by one evaluation. Firestore allows 10 document reads per rule; 32 leaves
/// room for rules that look at several fields of several records.
pub const MAX_READS_PER_EVALUATION: usize = 32;

/// Rounds of "evaluate, load what was missing, evaluate again" a caller should allow before
/// giving up with an `internal` error. Each round loads every path the previous one named,
/// so only a chain of lookups whose paths depend on earlier lookups (`root(root(…))`) needs
/// more than two or three; 8 matches the engine's `max_intercept_rounds`.
pub const MAX_LOOKUP_ROUNDS: usize = 8;

/// Most rule nodes one decision visits (nodes of a write checked against rules, nodes of an
/// answer checked for readability, nodes of a deleted subtree searched for deeper rules).
/// A write past it is refused with `too_large` rather than checked for seconds.
pub const MAX_RULE_NODES: usize = 10_000;

/// Largest compiled regular expression (`matches`), in bytes of the compiled program. The
/// `regex` crate matches in linear time; this bounds its memory. 1 MiB fits any sensible
/// pattern, including Unicode classes.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// Most problems reported for one rules file. After that many, the rest is noise.
pub const MAX_REPORTED_PROBLEMS: usize = 50;
