//! The effect of a stamped apply on the visible tree, and how it is collected.
//!
//! Usually a mutation changes the tree exactly as written: its plain application to the tree
//! as it was gives the tree as it is. Then the effect is [`Effect::AsWritten`] and nothing is
//! built — the common write costs no allocation here. Only when some part loses a conflict
//! (an older write arriving late, a delete that spares newer leaves) is the precise effect
//! assembled: the operations that were exact as written, and for the others what they really
//! did.
//!
//! An apply is a sequence of operations, in a fixed order: each deleted path (tree order),
//! then each merged leaf or branch marker (tree order). The appliers (`Tree`, `Records`) call
//! [`Effects::end_op`] after each, saying whether it was exact; what an inexact operation
//! really did is recorded with [`Effects::delete`] and friends while it runs.

use serde_json::Value;

use super::{put, Mutation};

/// What a stamped apply changed in the visible tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Exactly the mutation as written.
    AsWritten,
    /// This mutation, instead of the one written.
    Changed(Mutation),
}

impl Effect {
    /// The effect as a mutation, given the mutation that was written.
    pub fn into_mutation(self, written: Mutation) -> Mutation {
        match self {
            Effect::AsWritten => written,
            Effect::Changed(mutation) => mutation,
        }
    }

    /// Like [`Effect::into_mutation`], cloning the written mutation when needed.
    pub fn to_mutation(&self, written: &Mutation) -> Mutation {
        match self {
            Effect::AsWritten => written.clone(),
            Effect::Changed(mutation) => mutation.clone(),
        }
    }
}

/// Collects the effect of one apply.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    op: usize,
    /// Paths the current operation deleted.
    current: Vec<Vec<String>>,
    current_inexact: bool,
    /// What inexact operations deleted, by operation index. (An inexact operation never
    /// writes: a write that shows is exact as written.)
    inexact: Vec<(usize, Vec<Vec<String>>)>,
}

fn owned(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| s.to_string()).collect()
}

impl Effects {
    /// The current operation deleted `path`.
    pub fn delete(&mut self, path: &[&str]) {
        self.current.push(owned(path));
    }

    /// The current operation deleted each of `relative` (paths beneath `base`).
    pub fn delete_beneath(&mut self, base: &[&str], relative: Vec<Vec<String>>) {
        for tail in relative {
            let mut path = owned(base);
            path.extend(tail);
            self.current.push(path);
        }
    }

    /// The current operation did not change the tree as written: its records are its effect.
    pub fn inexact(&mut self) {
        self.current_inexact = true;
    }

    /// Ends the current operation. Unless it was marked inexact, applying it as written gives
    /// what it did, and its records are redundant and dropped.
    pub fn end_op(&mut self) {
        let records = std::mem::take(&mut self.current);
        if std::mem::take(&mut self.current_inexact) {
            self.inexact.push((self.op, records));
        } else {
            self.current.clear();
        }
        self.op += 1;
    }

    /// The effect of the whole apply of `written`.
    pub fn finish(self, written: &Mutation) -> Effect {
        if self.inexact.is_empty() {
            return Effect::AsWritten;
        }
        let mut out = Mutation::new();
        let mut inexact = self.inexact.into_iter().peekable();
        let mut op = 0;
        let mut take =
            |op: usize, out: &mut Mutation, as_written: &dyn Fn(&mut Mutation)| match inexact
                .next_if(|(i, _)| *i == op)
            {
                Some((_, deleted)) => {
                    for path in deleted {
                        out.delete.insert(&path);
                    }
                }
                None => as_written(out),
            };
        written.deletes().for_each_path(|path| {
            take(op, &mut out, &|out| out.delete.insert(path));
            op += 1;
        });
        written.for_each_write(|path, value| {
            let value = value
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default()));
            take(op, &mut out, &|out| {
                put(&mut out.merge, path, value.clone())
            });
            op += 1;
        });
        out.normalize();
        Effect::Changed(out)
    }
}
