//! The methods and properties of the rule language's objects, named once for the type
//! checker and the evaluator: `RuleDataSnapshot` (`data`, `newData`, `root`), strings, and
//! `query`.

use super::check::Ty;

/// A method of a snapshot or of a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Val,
    Child,
    Parent,
    HasChild,
    HasChildren,
    Exists,
    GetPriority,
    IsNumber,
    IsString,
    IsBoolean,
    Contains,
    BeginsWith,
    EndsWith,
    Replace,
    ToLowerCase,
    ToUpperCase,
    Matches,
}

/// What a method takes.
pub(crate) enum Params {
    Fixed(&'static [Ty]),
    /// `hasChildren()` or `hasChildren([names…])`: no argument, or one non-empty array
    /// literal of strings.
    HasChildren,
}

impl Method {
    /// The method of a `RuleDataSnapshot` called `name`.
    pub(crate) fn of_snapshot(name: &str) -> Option<Method> {
        Some(match name {
            "val" => Method::Val,
            "child" => Method::Child,
            "parent" => Method::Parent,
            "hasChild" => Method::HasChild,
            "hasChildren" => Method::HasChildren,
            "exists" => Method::Exists,
            "getPriority" => Method::GetPriority,
            "isNumber" => Method::IsNumber,
            "isString" => Method::IsString,
            "isBoolean" => Method::IsBoolean,
            _ => return None,
        })
    }

    /// The method of a string called `name`.
    pub(crate) fn of_string(name: &str) -> Option<Method> {
        Some(match name {
            "contains" => Method::Contains,
            "beginsWith" => Method::BeginsWith,
            "endsWith" => Method::EndsWith,
            "replace" => Method::Replace,
            "toLowerCase" => Method::ToLowerCase,
            "toUpperCase" => Method::ToUpperCase,
            "matches" => Method::Matches,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::Val => "val",
            Method::Child => "child",
            Method::Parent => "parent",
            Method::HasChild => "hasChild",
            Method::HasChildren => "hasChildren",
            Method::Exists => "exists",
            Method::GetPriority => "getPriority",
            Method::IsNumber => "isNumber",
            Method::IsString => "isString",
            Method::IsBoolean => "isBoolean",
            Method::Contains => "contains",
            Method::BeginsWith => "beginsWith",
            Method::EndsWith => "endsWith",
            Method::Replace => "replace",
            Method::ToLowerCase => "toLowerCase",
            Method::ToUpperCase => "toUpperCase",
            Method::Matches => "matches",
        }
    }

    pub(crate) fn params(self) -> Params {
        match self {
            Method::Child
            | Method::HasChild
            | Method::Contains
            | Method::BeginsWith
            | Method::EndsWith => Params::Fixed(&[Ty::Str]),
            Method::Replace => Params::Fixed(&[Ty::Str, Ty::Str]),
            Method::Matches => Params::Fixed(&[Ty::Regex]),
            Method::HasChildren => Params::HasChildren,
            _ => Params::Fixed(&[]),
        }
    }

    pub(crate) fn returns(self) -> Ty {
        match self {
            Method::Val => Ty::Primitive,
            Method::Child | Method::Parent => Ty::Snapshot,
            Method::GetPriority => Ty::Any,
            Method::Replace | Method::ToLowerCase | Method::ToUpperCase => Ty::Str,
            _ => Ty::Bool,
        }
    }
}

/// The type of the property `name` of `query`.
pub(crate) fn query_property(name: &str) -> Option<Ty> {
    Some(match name {
        "orderByKey" | "orderByValue" | "orderByPriority" => Ty::Bool,
        "orderByChild" => Ty::Str,
        "startAt" | "endAt" | "equalTo" => Ty::Primitive,
        "limitToFirst" | "limitToLast" => Ty::Num,
        _ => return None,
    })
}
