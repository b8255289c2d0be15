//! Reading records in key order. A range inside one top-level key is one clustering slice of
//! one partition; a range across top-level keys (the root's subtree, an export of everything)
//! lists the partitions, sorts them (their order is key order: each holds one contiguous key
//! range) and slices each in turn.

use kora_core::records::{Assembler, Record, Records};
use kora_core::{Path, PathQuery, Value};
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;

use super::error::Attempt;
use super::layout::{join, part_range, split, top_len, REST_CEILING, ROOT_PART};
use super::schema::Statements;
use crate::plan::{leaf_of, leaf_range, read_set, subtree_ranges};
use crate::sql::{record_from, RecordRow};
use crate::store::{Page, Write};

/// A record found by a scan; return `false` to stop the scan.
pub type Visit<'a> = dyn FnMut(Vec<u8>, Record) -> Result<bool, Attempt> + Send + 'a;

pub struct Reader<'a> {
    pub session: &'a Session,
    pub st: &'a Statements,
}

/// Sibling subtrees read as one: a mutation writing ten fields of `todos/t1` needs the
/// subtree of each field (usually empty), ten range queries; the subtree of `todos/t1` is
/// one, and holds them all. Reading records beyond the read set is harmless (they are the
/// store's true records). Not done above the second level: the subtree of a top-level key
/// is a whole partition.
pub const COALESCE_SIBLINGS: usize = 2;

type Range = (Vec<u8>, Option<Vec<u8>>);

fn coalesce(ranges: Vec<Range>) -> Vec<Range> {
    let mut out = Vec::new();
    let mut by_parent: std::collections::BTreeMap<Vec<u8>, Vec<Range>> = Default::default();
    for range in ranges {
        match parent(&range.0) {
            Some(parent) if top_len(&parent).is_some_and(|top| parent.len() > top) => {
                by_parent.entry(parent).or_default().push(range)
            }
            _ => out.push(range),
        }
    }
    for (parent, siblings) in by_parent {
        if siblings.len() >= COALESCE_SIBLINGS {
            let end = kora_core::key::subtree_end(&parent);
            out.push((parent, end));
        } else {
            out.extend(siblings);
        }
    }
    out
}

/// The key of a key's parent (`None` for the root's).
fn parent(key: &[u8]) -> Option<Vec<u8>> {
    let body = key.strip_suffix(&[kora_core::key::TERMINATOR])?;
    let cut = body
        .iter()
        .rposition(|b| *b == kora_core::key::TERMINATOR)
        .map_or(0, |i| i + 1);
    Some(key[..cut].to_vec())
}

/// Rows of `rest, leaf_stamp, leaf, tombstone, branch` as records of partition `part`.
fn records(part: &[u8], rows: Vec<RecordRow>) -> Result<Vec<(Vec<u8>, Record)>, Attempt> {
    rows.into_iter()
        .map(|row| {
            let (rest, record) = record_from(row)?;
            Ok((join(part, &rest), record))
        })
        .collect()
}

impl Reader<'_> {
    /// Runs a statement page by page, handing each page's rows to `page` until it says stop.
    pub async fn pages<V, R>(
        &self,
        statement: &PreparedStatement,
        values: V,
        mut page: impl FnMut(Vec<R>) -> Result<bool, Attempt> + Send,
    ) -> Result<(), Attempt>
    where
        V: scylla::serialize::row::SerializeRow + Send + Sync,
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let mut state = PagingState::start();
        loop {
            let (result, next) = self
                .session
                .execute_single_page(statement, &values, state)
                .await?;
            let rows = result.into_rows_result()?;
            let rows = rows.rows::<R>()?.collect::<Result<Vec<R>, _>>()?;
            if !page(rows)? {
                return Ok(());
            }
            match next {
                PagingStateResponse::HasMorePages { state: more } => state = more,
                PagingStateResponse::NoMorePages => return Ok(()),
            }
        }
    }

    /// One record.
    pub async fn point(&self, key: &[u8]) -> Result<Option<Record>, Attempt> {
        let (part, rest) = split(key);
        let found = self.points(&part, vec![rest]).await?;
        Ok(found.into_iter().next().map(|(_, record)| record))
    }

    /// Several records of one partition.
    pub async fn points(
        &self,
        part: &[u8],
        rests: Vec<Vec<u8>>,
    ) -> Result<Vec<(Vec<u8>, Record)>, Attempt> {
        let mut out = Vec::new();
        self.pages(
            &self.st.rec_points,
            (part, rests),
            |rows: Vec<RecordRow>| {
                out.extend(records(part, rows)?);
                Ok(true)
            },
        )
        .await?;
        Ok(out)
    }

    /// Records with keys in `[lo, hi)` (`hi` unbounded when `None`), in key order or reversed,
    /// handed to `visit` until it returns `false`.
    pub async fn scan(
        &self,
        lo: &[u8],
        hi: Option<&[u8]>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), Attempt> {
        if let Some(len) = top_len(lo) {
            let part = &lo[..len];
            let (_, end) = part_range(part);
            if hi.is_some_and(|hi| hi <= end.as_slice()) {
                return self.slice(part, lo, hi, reverse, visit).await.map(|_| ());
            }
        }
        let mut parts = self.partitions().await?;
        parts.retain(|part| {
            let (start, end) = part_range(part);
            end.as_slice() > lo && hi.is_none_or(|hi| start.as_slice() < hi)
        });
        if reverse {
            parts.reverse();
        }
        for part in parts {
            if !self.slice(&part, lo, hi, reverse, visit).await? {
                break;
            }
        }
        Ok(())
    }

    /// Every partition, in key order.
    async fn partitions(&self) -> Result<Vec<Vec<u8>>, Attempt> {
        let mut parts = Vec::new();
        self.pages(&self.st.rec_parts, (), |rows: Vec<(Vec<u8>,)>| {
            parts.extend(rows.into_iter().map(|(p,)| p));
            Ok(true)
        })
        .await?;
        parts.sort_by(|a, b| part_range(a).0.cmp(&part_range(b).0));
        Ok(parts)
    }

    /// The part of `[lo, hi)` inside one partition; `false` when `visit` said stop.
    async fn slice(
        &self,
        part: &[u8],
        lo: &[u8],
        hi: Option<&[u8]>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<bool, Attempt> {
        let (start, end) = part_range(part);
        let base = if part == ROOT_PART { 0 } else { part.len() };
        let rest_lo = if lo > start.as_slice() {
            &lo[base..]
        } else {
            &[][..]
        };
        let rest_hi = match hi {
            Some(hi) if hi < end.as_slice() => &hi[base..],
            _ => REST_CEILING,
        };
        let statement = if reverse {
            &self.st.rec_desc
        } else {
            &self.st.rec_asc
        };
        let mut going = true;
        self.pages(
            statement,
            (part, rest_lo, rest_hi),
            |rows: Vec<RecordRow>| {
                for (key, record) in records(part, rows)? {
                    going = visit(key, record)?;
                    if !going {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
        .await?;
        Ok(going)
    }

    /// The records a batch must see (see `kora_core::records::ReadSet`), read concurrently:
    /// one query per partition for the single records, one scan per subtree.
    pub async fn load(&self, writes: &[Write]) -> Result<Records, Attempt> {
        let set = read_set(writes);
        let mut by_part: std::collections::BTreeMap<Vec<u8>, Vec<Vec<u8>>> = Default::default();
        for key in &set.points {
            let (part, rest) = split(key);
            by_part.entry(part).or_default().push(rest);
        }
        let points = futures_util::future::try_join_all(
            by_part
                .into_iter()
                .map(|(part, rests)| async move { self.points(&part, rests).await }),
        );
        let subtrees =
            futures_util::future::try_join_all(coalesce(subtree_ranges(&set)).into_iter().map(
                |(after, before)| async move {
                    let mut found = Vec::new();
                    // Strictly after `after`: the smallest key above it is `after` + 0x00.
                    let mut lo = after;
                    lo.push(0);
                    self.scan(&lo, before.as_deref(), false, &mut |key, record| {
                        found.push((key, record));
                        Ok(true)
                    })
                    .await?;
                    Ok::<_, Attempt>(found)
                },
            ));
        let (points, subtrees) = futures_util::future::try_join(points, subtrees).await?;
        let mut records = Records::new();
        for (key, record) in points.into_iter().chain(subtrees).flatten() {
            records.load(key, record);
        }
        Ok(records)
    }

    /// Answers one path query.
    pub async fn query(&self, part: &PathQuery) -> Result<Option<Value>, Attempt> {
        let mut asm = Assembler::new(part);
        if let Some(record) = self.point(asm.key()).await? {
            if asm.push_own(&record) {
                return Ok(asm.finish());
            }
        }
        let (start, end) = asm.children_range();
        self.scan(&start, end.as_deref(), part.reverse, &mut |key, record| {
            asm.push(&key, &record).map_err(|e| {
                crate::error::StoreError::Corrupted(format!("a stored key: {e}")).into()
            })
        })
        .await?;
        Ok(asm.finish())
    }

    /// A page of leaves (see `Store::leaves`).
    pub async fn leaves(&self, page: Page<'_>) -> Result<Vec<(Path, Value)>, Attempt> {
        let mut out = Vec::new();
        self.scan_range(page, &mut |key, record| {
            let leaf = leaf_of(&key, record).map_err(|e| {
                crate::error::StoreError::Corrupted(format!("record key {key:?}: {e}"))
            })?;
            out.extend(leaf);
            Ok(out.len() < page.limit)
        })
        .await?;
        Ok(out)
    }

    /// Up to `limit` records at or beneath `under`, after `after`, with their paths.
    pub async fn records(&self, page: Page<'_>) -> Result<Vec<(Path, Record)>, Attempt> {
        let mut out = Vec::new();
        self.scan_range(page, &mut |key, record| {
            let path = kora_core::key::decode(&key).map_err(|e| {
                crate::error::StoreError::Corrupted(format!("record key {key:?}: {e}"))
            })?;
            out.push((path, record));
            Ok(out.len() < page.limit)
        })
        .await?;
        Ok(out)
    }

    /// Visits the records of `page` in key order until `visit` returns false (nothing when
    /// its limit is 0).
    async fn scan_range(&self, page: Page<'_>, visit: &mut Visit<'_>) -> Result<(), Attempt> {
        let (lower, end) = leaf_range(page.under, page.after);
        let lo = match lower {
            std::ops::Bound::Included(key) => key,
            std::ops::Bound::Excluded(mut key) => {
                key.push(0);
                key
            }
            std::ops::Bound::Unbounded => Vec::new(),
        };
        if page.limit == 0 {
            return Ok(());
        }
        self.scan(&lo, end.as_deref(), false, visit).await
    }
}
