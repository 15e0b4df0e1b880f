//! Reading a request: the JSON body within its limit, preconditions (`If-Match`,
//! `If-None-Match`) and the `attributes`/`excludedAttributes` projection.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, IF_MATCH};
use http::{HeaderMap, Request};
use serde_json::Value;

use super::duplicates::find_duplicate_key;
use super::query::parse_query;
use crate::error::ScimError;
use crate::resource::{truncate_for_detail, Projection, Version, WriteBody};
use crate::schema::ResourceDef;
use crate::settings::Tolerances;

/// Reads a JSON request body: `application/scim+json` or `application/json` (any
/// parameters); anything else is 415 (RFC 7644 §3.1, §3.8). A body without `Content-Type`
/// is read as JSON under [`Tolerances::missing_content_type`], else it is 415 too. Under
/// [`Tolerances::duplicate_json_keys`] an object's last value for a repeated key wins (as
/// `serde_json` parses it); without it a repeated key is 400 `invalidSyntax` naming it.
pub(super) fn read_json(
    request: &Request<Bytes>,
    max_bytes: usize,
    tol: &Tolerances,
) -> Result<Value, ScimError> {
    let body = checked_body(request, max_bytes, tol)?;
    let value = serde_json::from_slice(body).map_err(invalid_json)?;
    check_duplicate_keys(body, tol)?;
    Ok(value)
}

/// Reads the body of a create or replace of resources of type `def` as [`read_json`] does,
/// its member list on the fast lane ([`WriteBody::parse`]).
pub(super) fn read_write_body(
    request: &Request<Bytes>,
    max_bytes: usize,
    def: &ResourceDef,
    tol: &Tolerances,
) -> Result<WriteBody, ScimError> {
    let body = checked_body(request, max_bytes, tol)?;
    let value = WriteBody::parse(def, tol, body).map_err(invalid_json)?;
    check_duplicate_keys(body, tol)?;
    Ok(value)
}

fn invalid_json(e: serde_json::Error) -> ScimError {
    ScimError::InvalidSyntax(format!("the request body is not valid JSON: {e}"))
}

/// Without [`Tolerances::duplicate_json_keys`], a repeated key in any object of a (valid
/// JSON) body is 400 `invalidSyntax` naming it and where it is.
fn check_duplicate_keys(body: &[u8], tol: &Tolerances) -> Result<(), ScimError> {
    if tol.duplicate_json_keys {
        return Ok(());
    }
    let Some((path, key)) = find_duplicate_key(body) else {
        return Ok(());
    };
    let key = truncate_for_detail(&key);
    Err(ScimError::InvalidSyntax(if path.is_empty() {
        format!("the request body gives the key `{key}` more than once")
    } else {
        format!(
            "the object at `{}` in the request body gives the key `{key}` more than once",
            truncate_for_detail(&path)
        )
    }))
}

/// The body, once its size, media type and presence are checked.
fn checked_body<'r>(
    request: &'r Request<Bytes>,
    max_bytes: usize,
    tol: &Tolerances,
) -> Result<&'r [u8], ScimError> {
    let body = request.body();
    if body.len() > max_bytes {
        return Err(ScimError::PayloadTooLarge(format!(
            "the request body has {} bytes; the maximum is {max_bytes}",
            body.len()
        )));
    }
    match request.headers().get(CONTENT_TYPE) {
        Some(ct) => {
            let ct = ct.to_str().unwrap_or("");
            let media = ct.split(';').next().unwrap_or("").trim();
            if !(media.eq_ignore_ascii_case("application/scim+json")
                || media.eq_ignore_ascii_case("application/json"))
            {
                return Err(ScimError::UnsupportedMediaType(
                    "request bodies must be application/scim+json or application/json".to_owned(),
                ));
            }
        }
        None if !tol.missing_content_type => {
            return Err(ScimError::UnsupportedMediaType(
                "the request has a body but no Content-Type; send Content-Type: \
                 application/scim+json"
                    .to_owned(),
            ));
        }
        None => {}
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::InvalidSyntax(
            "the request body is empty; a JSON object is required".to_owned(),
        ));
    }
    Ok(body)
}

/// An `If-Match` precondition (RFC 7232 §3.1, RFC 7644 §3.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Precondition {
    /// `If-Match: *`.
    Any,
    /// One or more entity tags.
    Tags(Vec<Version>),
}

impl Precondition {
    pub(super) fn check(&self, current: Version) -> Result<(), ScimError> {
        match self {
            Precondition::Any => Ok(()),
            Precondition::Tags(tags) if tags.contains(&current) => Ok(()),
            Precondition::Tags(_) => Err(ScimError::PreconditionFailed(format!(
                "If-Match does not match the current version {current}"
            ))),
        }
    }
}

pub(super) fn parse_tags(value: &str) -> Result<Precondition, ScimError> {
    if value.trim() == "*" {
        return Ok(Precondition::Any);
    }
    let mut tags = Vec::new();
    for t in value.split(',').filter(|t| !t.trim().is_empty()) {
        // An entity tag we never issued cannot match: treat it as a failed precondition.
        match Version::from_etag(t) {
            Ok(v) => tags.push(v),
            Err(_) => tags.push(Version::new(0)),
        }
    }
    Ok(Precondition::Tags(tags))
}

pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ScimError> {
    match headers.get(IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                ScimError::BadRequest("If-Match is not a valid entity-tag list".to_owned())
            })?;
            parse_tags(s).map(Some)
        }
    }
}

pub(super) fn projection_from_query(request: &Request<Bytes>) -> Result<Projection, ScimError> {
    let q = parse_query(request.uri().query().unwrap_or(""))?;
    let attrs = param(&q, "attributes");
    let excluded = param(&q, "excludedAttributes");
    Projection::parse(attrs, excluded)
}

pub(super) fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
