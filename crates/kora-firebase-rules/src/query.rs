//! The parameters of a read, as `.read` rules see them through `query`.

use serde_json::Value;

/// How a query orders its results. Firebase orders by key when the query says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrderBy {
    #[default]
    Key,
    Value,
    Priority,
    /// `orderByChild(path)`.
    Child(String),
}

/// The parameters of a read (`query.orderByKey`… in rules). The default is a plain read of
/// the whole location: ordered by key, no bounds, no limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryParams {
    pub order_by: OrderBy,
    /// `startAt`, `endAt` and `equalTo`: a string, number, boolean or null.
    pub start_at: Option<Value>,
    pub end_at: Option<Value>,
    pub equal_to: Option<Value>,
    pub limit_to_first: Option<u64>,
    pub limit_to_last: Option<u64>,
}
