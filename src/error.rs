//! SCIM errors (RFC 7644 §3.12) and their wire form.
//!
//! Every failure the library reports to a SCIM client is a [`ScimError`]. It knows its HTTP
//! status, its `scimType` (RFC 7644 Table 9) when it has one, and a human readable `detail`
//! that says what was wrong and where. [`ScimError::to_body`] renders the RFC 7644 §3.12 error
//! body; that is the only place where an error becomes a wire answer.
//!
//! Where a host may want to act on what failed, the variant carries a typed detail and the
//! `detail` text is derived from it: [`ScimError::InvalidFilter`] holds a [`FilterError`]
//! (the byte offset in the filter and a [`FilterErrorReason`]), [`ScimError::Mutability`] and
//! [`ScimError::Uniqueness`] an [`AttributeError`] (the attribute path), and an error of one
//! PATCH operation is a [`ScimError::Patch`] ([`PatchError`]: the operation's index and path,
//! around the error itself).
//!
//! Errors raised by plugged-in code (a storage backend, a host's token verifier) are wrapped in
//! [`ScimError::Internal`]: the client sees a generic 500 and the source is kept for logs.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

/// The schema URN of an error response (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` values of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScimType {
    /// The filter syntax was invalid or the attribute and comparison combination is unsupported.
    InvalidFilter,
    /// The filter yields too many results for the server to process.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The specified `path` did not yield an attribute or value that could be operated on.
    NoTarget,
    /// A required value was missing, or the value was not compatible with the attribute.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVersion,
    /// The request cannot be completed because it would expose sensitive information.
    Sensitive,
    /// The `cursor` is not one this service issued for this query (RFC 9865 §2.4).
    InvalidCursor,
    /// The `cursor` was valid but has expired (RFC 9865 §2.4).
    ExpiredCursor,
    /// The `count` of a cursor request is invalid, for example above the maximum page
    /// size (RFC 9865 §2.4).
    InvalidCount,
}

impl ScimType {
    /// The wire spelling (`invalidFilter`, `tooMany`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVersion => "invalidVersion",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }

    /// The HTTP status RFC 7644 Table 9 pairs with this type.
    pub fn status(self) -> StatusCode {
        match self {
            ScimType::Uniqueness => StatusCode::CONFLICT,
            ScimType::Sensitive => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any error scimkit reports to a SCIM client.
///
/// Variants carrying a `String` hold the `detail` shown to the client; it must say what was
/// wrong and where (the attribute, the path, the column of a filter). It must never contain a
/// secret. The typed variants derive their detail from what they carry; build them with
/// [`ScimError::invalid_filter`], [`ScimError::mutability`], [`ScimError::uniqueness`] or the
/// constructors of the detail types.
///
/// ```
/// use scimkit::error::{FilterErrorReason, ScimError};
/// use scimkit::filter::Filter;
///
/// match Filter::parse("userName eq") {
///     Err(ScimError::InvalidFilter(e)) => {
///         assert_eq!(e.position, Some(11));
///         assert_eq!(e.reason, FilterErrorReason::UnexpectedEnd);
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ScimError {
    /// 400 `invalidFilter`: where in the filter, and why.
    #[error("invalid filter: {0}")]
    InvalidFilter(Box<FilterError>),
    /// 400 `tooMany`.
    #[error("too many results: {0}")]
    TooMany(String),
    /// 409 `uniqueness`: the attribute whose value is taken.
    #[error("uniqueness violation: {0}")]
    Uniqueness(Box<AttributeError>),
    /// 400 `mutability`: the attribute that cannot be written (or removed).
    #[error("mutability violation: {0}")]
    Mutability(Box<AttributeError>),
    /// 400 `invalidSyntax`.
    #[error("invalid syntax: {0}")]
    InvalidSyntax(String),
    /// 400 `invalidPath`.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// 400 `noTarget`.
    #[error("no target: {0}")]
    NoTarget(String),
    /// 400 `invalidValue`.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// 400 `invalidVersion`.
    #[error("invalid version: {0}")]
    InvalidVersion(String),
    /// 403 `sensitive`.
    #[error("sensitive: {0}")]
    Sensitive(String),
    /// 400 `invalidCursor` (RFC 9865).
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// 400 `expiredCursor` (RFC 9865).
    #[error("expired cursor: {0}")]
    ExpiredCursor(String),
    /// 400 `invalidCount` (RFC 9865).
    #[error("invalid count: {0}")]
    InvalidCount(String),
    /// 400 without a `scimType` (a malformed request that fits no Table 9 type).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: missing or invalid credentials. The detail never says which check failed.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: the resource or endpoint does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 405: the endpoint does not support the method. Carries the allowed methods.
    #[error("method not allowed: {detail}")]
    MethodNotAllowed {
        /// What was refused.
        detail: String,
        /// The methods the endpoint supports, for the `Allow` header.
        allow: Vec<http::Method>,
    },
    /// 409 without `scimType` (a conflict other than uniqueness).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 412: `If-Match` did not match the current version.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// 413: the payload is larger than the configured maximum.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 415: the request body has an unsupported media type.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 429: the tenant (or token) is over its [`RateLimit`](crate::settings::RateLimit).
    /// Answered with `Retry-After`.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        /// What was refused, and for how long.
        detail: String,
        /// Whole seconds to wait before retrying (at least 1), for `Retry-After`.
        retry_after: u64,
    },
    /// 500: an internal or backend failure. The source is for logs only; the client gets a
    /// generic detail.
    #[error("internal error: {0}")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// One operation of a PATCH request failed: its index and path, around the error itself.
    /// Status, `scimType` and `detail` are those of [`PatchError::error`], the detail prefixed
    /// with the operation (`Operations[2] (remove): ...`).
    #[error("{0}")]
    Patch(Box<PatchError>),
    /// 501: the operation is not implemented by this service provider (for example `/Me`
    /// when the host gives no mapping).
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

/// The detail shown to clients for every [`ScimError::Internal`].
pub const INTERNAL_DETAIL: &str = "The service provider encountered an internal error.";

impl ScimError {
    /// Wraps a backend or host failure. Its text is never shown to the client.
    pub fn internal<E>(source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ScimError::Internal(Arc::new(source))
    }

    /// Wraps a backend failure described only by a message (kept for logs, never sent).
    pub fn internal_msg(message: impl Into<String>) -> Self {
        ScimError::Internal(Arc::new(MessageError(message.into())))
    }

    /// 400 `invalidFilter` with only a text: no position, reason [`FilterErrorReason::Other`].
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        FilterError::new(FilterErrorReason::Other, None, detail).into()
    }

    /// 400 `mutability` on `attribute` (its path as the request named it).
    pub fn mutability(attribute: impl Into<String>, detail: impl Into<String>) -> Self {
        ScimError::Mutability(Box::new(AttributeError::new(attribute, detail)))
    }

    /// 409 `uniqueness` on `attribute`.
    pub fn uniqueness(attribute: impl Into<String>, detail: impl Into<String>) -> Self {
        ScimError::Uniqueness(Box::new(AttributeError::new(attribute, detail)))
    }

    /// The error itself: for a [`ScimError::Patch`] the operation's error, else `self`.
    pub fn innermost(&self) -> &ScimError {
        match self {
            ScimError::Patch(p) => p.error.innermost(),
            other => other,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        if let ScimError::Patch(p) = self {
            return p.error.status();
        }
        if let Some(t) = self.scim_type() {
            return t.status();
        }
        match self {
            ScimError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ScimError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ScimError::Forbidden(_) => StatusCode::FORBIDDEN,
            ScimError::NotFound(_) => StatusCode::NOT_FOUND,
            ScimError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ScimError::Conflict(_) => StatusCode::CONFLICT,
            ScimError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ScimError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ScimError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ScimError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ScimError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `scimType` of this error, if RFC 7644 Table 9 defines one for it.
    pub fn scim_type(&self) -> Option<ScimType> {
        Some(match self {
            ScimError::Patch(p) => return p.error.scim_type(),
            ScimError::InvalidFilter(_) => ScimType::InvalidFilter,
            ScimError::TooMany(_) => ScimType::TooMany,
            ScimError::Uniqueness(_) => ScimType::Uniqueness,
            ScimError::Mutability(_) => ScimType::Mutability,
            ScimError::InvalidSyntax(_) => ScimType::InvalidSyntax,
            ScimError::InvalidPath(_) => ScimType::InvalidPath,
            ScimError::NoTarget(_) => ScimType::NoTarget,
            ScimError::InvalidValue(_) => ScimType::InvalidValue,
            ScimError::InvalidVersion(_) => ScimType::InvalidVersion,
            ScimError::Sensitive(_) => ScimType::Sensitive,
            ScimError::InvalidCursor(_) => ScimType::InvalidCursor,
            ScimError::ExpiredCursor(_) => ScimType::ExpiredCursor,
            ScimError::InvalidCount(_) => ScimType::InvalidCount,
            _ => return None,
        })
    }

    /// The `detail` sent to the client. For [`ScimError::Internal`] this is a generic text.
    pub fn detail(&self) -> &str {
        match self {
            ScimError::InvalidFilter(e) => e.detail(),
            ScimError::Uniqueness(e) | ScimError::Mutability(e) => e.detail(),
            ScimError::Patch(p) => &p.detail,
            ScimError::TooMany(d)
            | ScimError::InvalidSyntax(d)
            | ScimError::InvalidPath(d)
            | ScimError::NoTarget(d)
            | ScimError::InvalidValue(d)
            | ScimError::InvalidVersion(d)
            | ScimError::Sensitive(d)
            | ScimError::InvalidCursor(d)
            | ScimError::ExpiredCursor(d)
            | ScimError::InvalidCount(d)
            | ScimError::BadRequest(d)
            | ScimError::Unauthorized(d)
            | ScimError::Forbidden(d)
            | ScimError::NotFound(d)
            | ScimError::Conflict(d)
            | ScimError::PreconditionFailed(d)
            | ScimError::PayloadTooLarge(d)
            | ScimError::UnsupportedMediaType(d)
            | ScimError::NotImplemented(d) => d,
            ScimError::MethodNotAllowed { detail, .. }
            | ScimError::TooManyRequests { detail, .. } => detail,
            ScimError::Internal(_) => INTERNAL_DETAIL,
        }
    }

    /// The RFC 7644 §3.12 error body: `schemas`, `status` (a string), `scimType` when there is
    /// one, and `detail`.
    pub fn to_body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status().as_u16().to_string(),
        });
        if let (Some(t), Some(obj)) = (self.scim_type(), body.as_object_mut()) {
            obj.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        if let Some(obj) = body.as_object_mut() {
            obj.insert("detail".into(), Value::String(self.detail().into()));
        }
        body
    }
}

/// Why a filter was refused (the `reason` of a [`FilterError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilterErrorReason {
    /// The filter is empty.
    Empty,
    /// The filter is longer than the configured limit.
    TooLong,
    /// The filter nests deeper, or chains more terms, than the limits allow.
    TooDeep,
    /// The filter ends where something more was expected (`userName eq`).
    UnexpectedEnd,
    /// Something other than what the grammar allows here (`userName xx "a"`, a missing `)`).
    UnexpectedToken,
    /// A comparison operator is missing or unknown (`userName is "a"`).
    UnknownOperator,
    /// A string literal is malformed (unterminated, a bad escape, a raw control character).
    InvalidString,
    /// A number literal is malformed or out of range.
    InvalidNumber,
    /// An attribute path is malformed (a schema URN without an attribute, two
    /// sub-attributes, a nested or misplaced `[ ]`).
    InvalidAttributePath,
    /// The attribute is not one of the resource type's (strict compilation).
    UnknownAttribute,
    /// The operator does not apply to the attribute's type (`gt` on a boolean, `co` on a
    /// date), or the value's type does not match the attribute's.
    InvalidComparison,
    /// The attribute is complex and cannot be compared as a whole.
    ComplexAttribute,
    /// Anything else (for example a store that cannot evaluate the filter).
    Other,
}

/// The detail of an `invalidFilter` error: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterError {
    /// Why the filter was refused.
    pub reason: FilterErrorReason,
    /// The byte offset in the filter text where the problem was found, when it is one place
    /// (a parse error); `None` for limits and for rules checked against the schema.
    pub position: Option<usize>,
    detail: String,
}

impl FilterError {
    /// A filter error with its human readable text (which names the column for a position).
    pub fn new(
        reason: FilterErrorReason,
        position: Option<usize>,
        detail: impl Into<String>,
    ) -> Self {
        FilterError {
            reason,
            position,
            detail: detail.into(),
        }
    }

    /// The text shown to the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The detail of a `mutability` or `uniqueness` error: the attribute and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttributeError {
    /// The attribute's path as the request or the schema names it (`userName`,
    /// `emails.value`, `urn:...:enterprise:2.0:User:employeeNumber`).
    pub attribute: String,
    detail: String,
}

impl AttributeError {
    /// An attribute error with its human readable text.
    pub fn new(attribute: impl Into<String>, detail: impl Into<String>) -> Self {
        AttributeError {
            attribute: attribute.into(),
            detail: detail.into(),
        }
    }

    /// The text shown to the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for AttributeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The detail of a [`ScimError::Patch`]: which operation failed, on which path, and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PatchError {
    /// The operation's index in `Operations`, from 0.
    pub operation: usize,
    /// The operation's `op` (`add`, `replace`, `remove`; as sent when the request was
    /// refused before the operation was understood, empty when it has no string `op`).
    pub op: String,
    /// The operation's `path` as sent, `None` for a path-less operation (or one whose `path`
    /// is not a string).
    pub path: Option<String>,
    /// What went wrong; never itself a [`ScimError::Patch`].
    pub error: ScimError,
    detail: String,
}

impl PatchError {
    /// Wraps the error of operation `operation`; the detail becomes
    /// `Operations[{operation}] ({op}): {error's detail}` (without `({op})` when `op` is
    /// empty).
    pub fn new(
        operation: usize,
        op: impl Into<String>,
        path: Option<String>,
        error: ScimError,
    ) -> Self {
        let op = op.into();
        let error = match error {
            ScimError::Patch(p) => p.error,
            other => other,
        };
        let detail = if op.is_empty() {
            format!("Operations[{operation}]: {}", error.detail())
        } else {
            format!("Operations[{operation}] ({op}): {}", error.detail())
        };
        PatchError {
            operation,
            op,
            path,
            error,
            detail,
        }
    }

    /// The text shown to the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op.is_empty() {
            write!(f, "Operations[{}]: {}", self.operation, self.error)
        } else {
            write!(
                f,
                "Operations[{}] ({}): {}",
                self.operation, self.op, self.error
            )
        }
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::InvalidFilter(Box::new(e))
    }
}

#[derive(Debug)]
struct MessageError(String);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MessageError {}

/// Result alias used throughout the crate.
pub type ScimResult<T> = Result<T, ScimError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table9_statuses_and_types() {
        let cases: Vec<(ScimError, u16, Option<&str>)> = vec![
            (ScimError::invalid_filter("f"), 400, Some("invalidFilter")),
            (ScimError::TooMany("f".into()), 400, Some("tooMany")),
            (ScimError::uniqueness("a", "f"), 409, Some("uniqueness")),
            (ScimError::mutability("a", "f"), 400, Some("mutability")),
            (
                ScimError::Patch(Box::new(PatchError::new(
                    1,
                    "replace",
                    Some("name".into()),
                    ScimError::NoTarget("f".into()),
                ))),
                400,
                Some("noTarget"),
            ),
            (
                ScimError::InvalidSyntax("f".into()),
                400,
                Some("invalidSyntax"),
            ),
            (ScimError::InvalidPath("f".into()), 400, Some("invalidPath")),
            (ScimError::NoTarget("f".into()), 400, Some("noTarget")),
            (
                ScimError::InvalidValue("f".into()),
                400,
                Some("invalidValue"),
            ),
            (
                ScimError::InvalidVersion("f".into()),
                400,
                Some("invalidVersion"),
            ),
            (ScimError::Sensitive("f".into()), 403, Some("sensitive")),
            (
                ScimError::InvalidCursor("f".into()),
                400,
                Some("invalidCursor"),
            ),
            (
                ScimError::ExpiredCursor("f".into()),
                400,
                Some("expiredCursor"),
            ),
            (
                ScimError::InvalidCount("f".into()),
                400,
                Some("invalidCount"),
            ),
            (ScimError::BadRequest("f".into()), 400, None),
            (ScimError::Unauthorized("f".into()), 401, None),
            (ScimError::Forbidden("f".into()), 403, None),
            (ScimError::NotFound("f".into()), 404, None),
            (
                ScimError::MethodNotAllowed {
                    detail: "f".into(),
                    allow: vec![http::Method::GET],
                },
                405,
                None,
            ),
            (ScimError::Conflict("f".into()), 409, None),
            (ScimError::PreconditionFailed("f".into()), 412, None),
            (ScimError::PayloadTooLarge("f".into()), 413, None),
            (ScimError::UnsupportedMediaType("f".into()), 415, None),
            (
                ScimError::TooManyRequests {
                    detail: "f".into(),
                    retry_after: 1,
                },
                429,
                None,
            ),
            (ScimError::internal_msg("db down"), 500, None),
            (ScimError::NotImplemented("f".into()), 501, None),
        ];
        for (err, status, ty) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.scim_type().map(ScimType::as_str), ty, "{err:?}");
            let body = err.to_body();
            assert_eq!(body["schemas"][0], ERROR_SCHEMA);
            assert_eq!(body["status"], status.to_string());
            match ty {
                Some(t) => assert_eq!(body["scimType"], t),
                None => assert!(body.get("scimType").is_none()),
            }
        }
    }

    #[test]
    fn typed_details_derive_the_text() {
        let e = ScimError::mutability("id", "`id` is readOnly");
        assert_eq!(e.detail(), "`id` is readOnly");
        match &e {
            ScimError::Mutability(a) => assert_eq!(a.attribute, "id"),
            other => panic!("{other:?}"),
        }
        let p = ScimError::Patch(Box::new(PatchError::new(
            2,
            "remove",
            Some("userName".into()),
            e,
        )));
        assert_eq!(p.detail(), "Operations[2] (remove): `id` is readOnly");
        assert_eq!(
            p.to_body()["detail"],
            "Operations[2] (remove): `id` is readOnly"
        );
        assert!(matches!(p.innermost(), ScimError::Mutability(a) if a.attribute == "id"));
        // Wrapping twice keeps one level.
        let again = PatchError::new(3, "add", None, p);
        assert!(matches!(again.error, ScimError::Mutability(_)));
        assert_eq!(again.detail(), "Operations[3] (add): `id` is readOnly");
    }

    #[test]
    fn stays_small() {
        // Results of ScimError travel through the recursive filter parser: the typed details
        // are boxed so that the error stays as small as its largest plain variant.
        assert!(std::mem::size_of::<ScimError>() <= 48);
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let err = ScimError::internal_msg("password=hunter2 at db.internal:5432");
        let body = err.to_body().to_string();
        assert!(!body.contains("hunter2"));
        assert!(!body.contains("db.internal"));
        assert_eq!(err.to_body()["detail"], INTERNAL_DETAIL);
    }
}
