//! Routing and the resource handlers (RFC 7644 §3).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, IF_MATCH, IF_NONE_MATCH};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::discovery;
use super::query::parse_query;
use super::response;
use super::{method_not_allowed, not_found_endpoint, Ctx, ScimService};
use crate::error::ScimError;
use crate::filter::{Filter, SortSpec};
use crate::patch::{self, PatchRequest};
use crate::resource::{
    normalize_resource, ListResponse, Projection, ResourceId, Version, WriteMode,
};
use crate::schema::{ResourceDef, Uniqueness, SEARCH_REQUEST_SCHEMA};
use crate::settings::PatchResponse;
use crate::store::{
    apply_query, GroupRef, ListQuery, Member, MemberRef, MembershipDelta, NewDocument, Pushdown,
    StoreError, StoredResource, UniqueKey, UnknownMembers, UpdateKind, UpdateRequest,
};

/// How many times a PATCH or PUT without `If-Match` re-reads and re-applies after losing a
/// version race before it gives up with 412. Attempts are spaced by a jittered exponential
/// pause (see [`retry_pause`]), so that writers racing on one resource spread out.
const MAX_WRITE_ATTEMPTS: u32 = 10;

/// The pause before attempt `attempt + 1` (`attempt` >= 1): uniformly random up to
/// 1 ms * 2^(attempt-1), at most 32 ms.
fn retry_pause(attempt: u32) -> std::time::Duration {
    let ceiling_us: u64 = 1000u64 << attempt.saturating_sub(1).min(5);
    let mut bytes = [0u8; 8];
    let r = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => ceiling_us / 2,
    };
    std::time::Duration::from_micros(r % (ceiling_us + 1))
}

/// The largest body accepted for a write to resources of type `def`: types with a
/// membership relation take full member lists (see [`Limits::max_membership_payload_bytes`]).
///
/// [`Limits::max_membership_payload_bytes`]: crate::settings::Limits::max_membership_payload_bytes
fn write_payload_limit(ctx: &Ctx, def: &ResourceDef) -> usize {
    let limits = &ctx.tenant.settings.limits;
    if has_members(def) {
        limits
            .max_membership_payload_bytes
            .max(limits.max_payload_bytes)
    } else {
        limits.max_payload_bytes
    }
}

/// Reports the members a write skipped under the tolerance (they could never resolve: ids
/// are issued here), so that the host's log shows what the identity provider sent.
fn report_skipped(ctx: &Ctx, def: &ResourceDef, res: &StoredResource) {
    if res.skipped_members.is_empty() {
        return;
    }
    let first: Vec<&str> = res
        .skipped_members
        .iter()
        .take(5)
        .map(ResourceId::as_str)
        .collect();
    tracing::info!(
        target: "scimkit::provisioning",
        tenant = %ctx.id(),
        resource_type = def.name(),
        id = %res.id,
        skipped = res.skipped_members.len(),
        first = ?first,
        "skipped member ids that are not resources of the tenant"
    );
}

/// What unknown members of a write do under the tenant's tolerances.
fn unknown_members_policy(ctx: &Ctx) -> UnknownMembers {
    if ctx.tenant.settings.tolerances.ignore_unknown_members {
        UnknownMembers::Skip
    } else {
        UnknownMembers::Reject
    }
}

pub(crate) async fn route(
    svc: &ScimService,
    ctx: &Ctx,
    request: Request<Bytes>,
    rest: &[String],
) -> Result<Response<Bytes>, ScimError> {
    let method = request.method().clone();
    let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let get = [Method::GET];
    let post = [Method::POST];
    match segs.as_slice() {
        [] => Err(not_found_endpoint()),
        ["ServiceProviderConfig"] => {
            allow(&method, &get)?;
            no_filter(&request)?;
            Ok(response::json(
                StatusCode::OK,
                &discovery::service_provider_config(
                    &ctx.base_url,
                    &ctx.tenant.settings,
                    svc.inner.documentation_uri.as_deref(),
                ),
            ))
        }
        ["ResourceTypes"] => {
            allow(&method, &get)?;
            no_filter(&request)?;
            let docs: Vec<Value> = svc
                .registry()
                .resource_types()
                .map(|d| discovery::resource_type_doc(&ctx.base_url, d))
                .collect();
            Ok(list_response(docs.len(), 1, docs))
        }
        ["ResourceTypes", id] => {
            allow(&method, &get)?;
            let def = svc
                .registry()
                .resource_types()
                .find(|d| d.resource_type().id == *id)
                .ok_or_else(|| ScimError::NotFound(format!("no resource type `{id}`")))?;
            Ok(response::json(
                StatusCode::OK,
                &discovery::resource_type_doc(&ctx.base_url, def),
            ))
        }
        ["Schemas"] => {
            allow(&method, &get)?;
            no_filter(&request)?;
            let docs = discovery::schema_docs(&ctx.base_url, svc.registry());
            Ok(list_response(docs.len(), 1, docs))
        }
        ["Schemas", id] => {
            allow(&method, &get)?;
            let schema = svc
                .registry()
                .schemas()
                .find(|s| s.id == *id)
                .ok_or_else(|| ScimError::NotFound(format!("no schema `{id}`")))?;
            Ok(response::json(
                StatusCode::OK,
                &discovery::schema_doc(&ctx.base_url, schema),
            ))
        }
        [".search"] => {
            allow(&method, &post)?;
            let body = read_json(&request, ctx.tenant.settings.limits.max_payload_bytes)?;
            let params = ListParams::from_search_body(&body)?;
            let defs: Vec<Arc<ResourceDef>> = svc.registry().resource_types().cloned().collect();
            search(svc, ctx, &defs, &params).await
        }
        ["Bulk"] => {
            allow(&method, &post)?;
            super::bulk::handle(svc, ctx, &request).await
        }
        ["Me", tail @ ..] => {
            let Some(resolver) = &svc.inner.me else {
                return Err(ScimError::NotImplemented(
                    "/Me is not available: this service provider maps no authenticated \
                     subject to a User"
                        .to_owned(),
                ));
            };
            if !tail.is_empty() {
                return Err(not_found_endpoint());
            }
            let user = svc
                .registry()
                .user()
                .cloned()
                .ok_or_else(not_found_endpoint)?;
            let id = resolver.resolve(&ctx.principal).await?.ok_or_else(|| {
                ScimError::NotFound("the authenticated subject is not a User here".to_owned())
            })?;
            resource_endpoint(svc, ctx, &user, id, request).await
        }
        [endpoint] => {
            let def = resource_def(svc, endpoint)?;
            match method {
                Method::GET => {
                    let params = ListParams::from_query(request.uri().query().unwrap_or(""))?;
                    search(svc, ctx, std::slice::from_ref(&def), &params).await
                }
                Method::POST => create(svc, ctx, &def, &request).await,
                _ => Err(method_not_allowed(&method, &[Method::GET, Method::POST])),
            }
        }
        [endpoint, ".search"] => {
            let def = resource_def(svc, endpoint)?;
            allow(&method, &post)?;
            let body = read_json(&request, ctx.tenant.settings.limits.max_payload_bytes)?;
            let params = ListParams::from_search_body(&body)?;
            search(svc, ctx, std::slice::from_ref(&def), &params).await
        }
        [endpoint, id] => {
            let def = resource_def(svc, endpoint)?;
            resource_endpoint(svc, ctx, &def, ResourceId::new(*id), request).await
        }
        _ => Err(not_found_endpoint()),
    }
}

async fn resource_endpoint(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: ResourceId,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    match *request.method() {
        Method::GET => get(svc, ctx, def, &id, &request).await,
        Method::PUT => {
            let body = read_json(&request, write_payload_limit(ctx, def))?;
            let projection = projection_from_query(&request)?;
            let res = replace(svc, ctx, def, &id, &body, if_match(request.headers())?).await?;
            respond_resource(svc, ctx, def, res, &projection, StatusCode::OK).await
        }
        Method::PATCH => {
            let body = read_json(&request, write_payload_limit(ctx, def))?;
            let projection = projection_from_query(&request)?;
            let res = patch(svc, ctx, def, &id, &body, if_match(request.headers())?).await?;
            let settings = &ctx.tenant.settings;
            let answer = if has_members(def) {
                settings.group_patch_response
            } else {
                settings.patch_response
            };
            // RFC 7644 §3.5.2: 204 is allowed; a client naming attributes asked for a body.
            if answer == PatchResponse::NoContent && projection.is_default() {
                return Ok(response::empty(
                    StatusCode::NO_CONTENT,
                    Some(&res.version.etag()),
                ));
            }
            respond_resource(svc, ctx, def, res, &projection, StatusCode::OK).await
        }
        Method::DELETE => {
            delete(svc, ctx, def, &id, if_match(request.headers())?).await?;
            Ok(response::empty(StatusCode::NO_CONTENT, None))
        }
        ref m => Err(method_not_allowed(
            m,
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        )),
    }
}

fn allow(method: &Method, allowed: &[Method]) -> Result<(), ScimError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(method_not_allowed(method, allowed))
    }
}

/// RFC 7644 §4: a filter on a discovery endpoint is refused with 403, so that a client never
/// believes its conditions held.
fn no_filter(request: &Request<Bytes>) -> Result<(), ScimError> {
    let q = parse_query(request.uri().query().unwrap_or(""))?;
    if q.iter().any(|(k, _)| k.eq_ignore_ascii_case("filter")) {
        return Err(ScimError::Forbidden(
            "filtering is not supported on discovery endpoints".to_owned(),
        ));
    }
    Ok(())
}

fn resource_def(svc: &ScimService, endpoint: &str) -> Result<Arc<ResourceDef>, ScimError> {
    svc.registry()
        .resource_type_by_endpoint(endpoint)
        .cloned()
        .ok_or_else(not_found_endpoint)
}

fn list_response<T: serde::Serialize>(
    total: usize,
    start: usize,
    resources: Vec<T>,
) -> Response<Bytes> {
    let list = ListResponse::new(resources, total as u64, start as u64);
    response::serialized(StatusCode::OK, &list)
}

/// Reads a JSON request body: `application/scim+json` or `application/json` (any
/// parameters), or no `Content-Type` at all; anything else is 415 (RFC 7644 §3.1, §3.8).
pub(crate) fn read_json(request: &Request<Bytes>, max_bytes: usize) -> Result<Value, ScimError> {
    let body = request.body();
    if body.len() > max_bytes {
        return Err(ScimError::PayloadTooLarge(format!(
            "the request body has {} bytes; the maximum is {max_bytes}",
            body.len()
        )));
    }
    if let Some(ct) = request.headers().get(CONTENT_TYPE) {
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
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::InvalidSyntax(
            "the request body is empty; a JSON object is required".to_owned(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::InvalidSyntax(format!("the request body is not valid JSON: {e}")))
}

/// An `If-Match` precondition (RFC 7232 §3.1, RFC 7644 §3.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// `If-Match: *`.
    Any,
    /// One or more entity tags.
    Tags(Vec<Version>),
}

impl Precondition {
    fn check(&self, current: Version) -> Result<(), ScimError> {
        match self {
            Precondition::Any => Ok(()),
            Precondition::Tags(tags) if tags.contains(&current) => Ok(()),
            Precondition::Tags(_) => Err(ScimError::PreconditionFailed(format!(
                "If-Match does not match the current version {current}"
            ))),
        }
    }
}

fn parse_tags(value: &str) -> Result<Precondition, ScimError> {
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

pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ScimError> {
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

fn projection_from_query(request: &Request<Bytes>) -> Result<Projection, ScimError> {
    let q = parse_query(request.uri().query().unwrap_or(""))?;
    let attrs = param(&q, "attributes");
    let excluded = param(&q, "excludedAttributes");
    Projection::parse(attrs, excluded)
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// True when resources of this type keep `members` as a relation (Group and look-alikes).
pub(crate) fn has_members(def: &ResourceDef) -> bool {
    def.core()
        .attribute("members")
        .is_some_and(|a| a.multi_valued && a.is_complex())
}

/// True when resources of this type expose a derived, read-only `groups` (User).
fn has_derived_groups(def: &ResourceDef) -> bool {
    def.core().attribute("groups").is_some_and(|a| {
        a.multi_valued && a.is_complex() && a.mutability == crate::schema::Mutability::ReadOnly
    })
}

fn location(svc: &ScimService, ctx: &Ctx, resource_type: &str, id: &str) -> String {
    let endpoint = svc
        .registry()
        .resource_type(resource_type)
        .map_or("", |d| d.endpoint());
    let mut out = String::with_capacity(ctx.base_url.len() + endpoint.len() + id.len() + 1);
    out.push_str(&ctx.base_url);
    out.push_str(endpoint);
    out.push('/');
    out.push_str(id);
    out
}

/// A `{value, $ref, display, type}` reference to a resource, as in Group `members` and
/// User `groups`.
fn reference_json(
    svc: &ScimService,
    ctx: &Ctx,
    id: &ResourceId,
    resource_type: &str,
    display: Option<&String>,
    type_value: &str,
) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), Value::String(id.to_string()));
    o.insert(
        "$ref".into(),
        Value::String(location(svc, ctx, resource_type, id.as_str())),
    );
    if let Some(d) = display {
        o.insert("display".into(), Value::String(d.clone()));
    }
    o.insert("type".into(), Value::String(type_value.to_owned()));
    Value::Object(o)
}

fn member_json(svc: &ScimService, ctx: &Ctx, m: &Member) -> Value {
    reference_json(
        svc,
        ctx,
        &m.value,
        &m.resource_type,
        m.display.as_ref(),
        &m.resource_type,
    )
}

fn group_json(svc: &ScimService, ctx: &Ctx, g: &GroupRef) -> Value {
    // Memberships are kept as direct ones only (RFC 7643 §4.1.2 `type`).
    reference_json(
        svc,
        ctx,
        &g.id,
        &g.resource_type,
        g.display.as_ref(),
        "direct",
    )
}

/// A resource's wire document in parts, written in wire order (`schemas`, `id`, the
/// attributes, then `members`, `groups` and `meta`) without moving entries of a map around:
/// the stored document's map is projected and written as it was decoded.
pub(crate) struct Rendered {
    id: String,
    /// `[core schema]`, for a stored document without `schemas`.
    fallback_schemas: Option<Value>,
    /// The stored attributes (its `schemas`, `id`, `meta` and any key `tail` has are skipped
    /// when written).
    body: Map<String, Value>,
    /// The derived attributes: `members`, `groups`, and `meta` when it went through a
    /// projection.
    tail: Map<String, Value>,
    /// `meta` written as it is, under the default projection (which returns all of it).
    meta: Option<MetaParts>,
    /// `members` written straight from the store's list under the default projection (no
    /// `Value` per member: a group's members are the bulk of its document).
    members: Option<MemberList>,
}

/// A group's `members`, serialized without building a JSON value per member.
struct MemberList {
    members: Vec<Member>,
    base_url: String,
    /// `(resource type, endpoint)` of the types the members have.
    endpoints: Vec<(String, String)>,
    /// Which sub-attributes the projection returns: `value`, `$ref`, `display`, `type`.
    value: bool,
    reference: bool,
    display: bool,
    type_: bool,
}

/// `{base}{endpoint}/{id}`, written into the serializer without a `String` of its own.
struct RefUrl<'a>(&'a str, &'a str, &'a str);

impl serde::Serialize for RefUrl<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}{}/{}", self.0, self.1, self.2))
    }
}

struct MemberOut<'a>(&'a MemberList, &'a Member);

impl serde::Serialize for MemberOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (list, m) = (self.0, self.1);
        let mut out = s.serialize_map(None)?;
        if list.value {
            out.serialize_entry("value", m.value.as_str())?;
        }
        if list.reference {
            let endpoint = list
                .endpoints
                .iter()
                .find(|(rt, _)| *rt == m.resource_type)
                .map_or("", |(_, e)| e.as_str());
            out.serialize_entry("$ref", &RefUrl(&list.base_url, endpoint, m.value.as_str()))?;
        }
        if let (true, Some(d)) = (list.display, &m.display) {
            out.serialize_entry("display", d)?;
        }
        if list.type_ {
            out.serialize_entry("type", &m.resource_type)?;
        }
        out.end()
    }
}

impl serde::Serialize for MemberList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.members.iter().map(|m| MemberOut(self, m)))
    }
}

/// `meta`, written without building a map.
struct MetaParts {
    resource_type: String,
    created: String,
    last_modified: String,
    location: String,
    version: String,
}

impl MetaParts {
    fn get(&self, key: &str) -> Option<&str> {
        Some(match key {
            "resourceType" => &self.resource_type,
            "created" => &self.created,
            "lastModified" => &self.last_modified,
            "location" => &self.location,
            "version" => &self.version,
            _ => return None,
        })
    }

    fn into_map(self) -> Map<String, Value> {
        let mut meta = Map::with_capacity(5);
        meta.insert("resourceType".into(), Value::String(self.resource_type));
        meta.insert("created".into(), Value::String(self.created));
        meta.insert("lastModified".into(), Value::String(self.last_modified));
        meta.insert("location".into(), Value::String(self.location));
        meta.insert("version".into(), Value::String(self.version));
        meta
    }
}

impl serde::Serialize for MetaParts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("resourceType", &self.resource_type)?;
        m.serialize_entry("created", &self.created)?;
        m.serialize_entry("lastModified", &self.last_modified)?;
        m.serialize_entry("location", &self.location)?;
        m.serialize_entry("version", &self.version)?;
        m.end()
    }
}

impl Rendered {
    /// A string of the rendered `meta` (`location`, `version`), when the projection kept it.
    fn meta_str(&self, key: &str) -> Option<&str> {
        match &self.meta {
            Some(meta) => meta.get(key),
            None => self.tail.get("meta")?.get(key)?.as_str(),
        }
    }
}

impl serde::Serialize for Rendered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(schemas) = self.body.get("schemas").or(self.fallback_schemas.as_ref()) {
            m.serialize_entry("schemas", schemas)?;
        }
        m.serialize_entry("id", &self.id)?;
        for (k, v) in &self.body {
            // Written before (`schemas`, `id`) or after (the derived ones, `meta`).
            let elsewhere = matches!(k.as_str(), "schemas" | "id" | "meta")
                || (k == "members" && self.members.is_some())
                || self.tail.keys().any(|t| t == k);
            if !elsewhere {
                m.serialize_entry(k, v)?;
            }
        }
        if let Some(members) = &self.members {
            m.serialize_entry("members", members)?;
        }
        for (k, v) in &self.tail {
            m.serialize_entry(k, v)?;
        }
        if let Some(meta) = &self.meta {
            m.serialize_entry("meta", meta)?;
        }
        m.end()
    }
}

/// The wire document of a stored resource, projected: `schemas`, `id`, the attributes,
/// `members` (when loaded), `groups` (when given) and `meta`.
fn full_document(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    res: StoredResource,
    groups: Option<&[GroupRef]>,
    projection: &Projection,
) -> Rendered {
    let StoredResource {
        id,
        resource_type,
        version,
        created,
        last_modified,
        doc,
        members,
        skipped_members: _,
    } = res;
    let body = match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let fallback_schemas = (!body.contains_key("schemas")).then(|| json!([def.core().id]));
    let mut tail = Map::with_capacity(3);
    // Rendered only when the projection returns them (a large group's members are the bulk
    // of its document).
    let members = members.filter(|m| !m.is_empty() && projection.includes(def, "members"));
    let mut member_list = None;
    if let Some(members) = members {
        if projection.is_default() {
            let sub = |name: &str| projection.includes(def, &format!("members.{name}"));
            let mut endpoints: Vec<(String, String)> = Vec::new();
            for m in &members {
                if !endpoints.iter().any(|(rt, _)| *rt == m.resource_type) {
                    let endpoint = svc
                        .registry()
                        .resource_type(&m.resource_type)
                        .map_or("", |d| d.endpoint());
                    endpoints.push((m.resource_type.clone(), endpoint.to_owned()));
                }
            }
            member_list = Some(MemberList {
                base_url: ctx.base_url.clone(),
                endpoints,
                value: sub("value"),
                reference: sub("$ref"),
                display: sub("display"),
                type_: sub("type"),
                members,
            });
        } else {
            tail.insert(
                "members".into(),
                Value::Array(members.iter().map(|m| member_json(svc, ctx, m)).collect()),
            );
        }
    }
    if let Some(groups) = groups {
        if !groups.is_empty() {
            tail.insert(
                "groups".into(),
                Value::Array(groups.iter().map(|g| group_json(svc, ctx, g)).collect()),
            );
        }
    }
    let meta = MetaParts {
        location: location(svc, ctx, &resource_type, id.as_str()),
        resource_type,
        created: rfc3339(created),
        last_modified: rfc3339(last_modified),
        version: version.etag(),
    };
    // Under the default projection all of `meta` is returned (it is `returned: always`):
    // written as it is. Otherwise it goes through the projection with the other attributes.
    let meta = if projection.is_default() {
        Some(meta)
    } else {
        tail.insert("meta".into(), Value::Object(meta.into_map()));
        None
    };
    let object = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Rendered {
        id: id.into_string(),
        fallback_schemas,
        body: object(projection.apply_owned(def, Value::Object(body))),
        tail: if tail.is_empty() {
            tail
        } else {
            object(projection.apply_owned(def, Value::Object(tail)))
        },
        meta,
        members: member_list,
    }
}

/// `meta.created`/`meta.lastModified`: RFC 3339 in UTC with milliseconds
/// (`2026-11-28T09:15:02.123Z`), written by hand for the common years (the response path is
/// measurably faster without `fmt`); chrono's formatter for anything else.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    let Ok(year) = u64::try_from(year) else {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    };
    if year > 9999 || nanos >= 1_000_000_000 {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    let mut out = String::with_capacity(24);
    let mut digits = |n: u64, width: u32, sep: Option<char>| {
        let mut div = 10u64.pow(width.saturating_sub(1));
        while div > 0 {
            out.push(char::from(b'0' + ((n / div) % 10) as u8));
            div /= 10;
        }
        if let Some(c) = sep {
            out.push(c);
        }
    };
    digits(year, 4, Some('-'));
    digits(u64::from(t.month()), 2, Some('-'));
    digits(u64::from(t.day()), 2, Some('T'));
    digits(u64::from(t.hour()), 2, Some(':'));
    digits(u64::from(t.minute()), 2, Some(':'));
    digits(u64::from(t.second()), 2, Some('.'));
    digits(u64::from(nanos / 1_000_000), 3, Some('Z'));
    out
}

/// Renders a resource for a response, loading `groups` when the projection returns them.
async fn render(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    res: StoredResource,
    projection: &Projection,
) -> Result<Rendered, ScimError> {
    let groups = if has_derived_groups(def) && projection.includes(def, "groups") {
        Some(svc.store().groups_of(ctx.id(), &res.id).await?)
    } else {
        None
    };
    Ok(full_document(
        svc,
        ctx,
        def,
        res,
        groups.as_deref(),
        projection,
    ))
}

async fn respond_resource(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    res: StoredResource,
    projection: &Projection,
    status: StatusCode,
) -> Result<Response<Bytes>, ScimError> {
    // A write returns the members only when it set them all (then they are the request's
    // own). Otherwise they are read back only when the client named them in `attributes`:
    // the answer to a membership change must not grow with the group.
    let res = if has_members(def) && res.members.is_none() && projection.requests(def, "members") {
        svc.store().get(ctx.id(), def, &res.id, true).await?
    } else {
        res
    };
    // `Location` and `ETag` are `meta.location` and `meta.version`: taken from the rendered
    // body (not formatted twice), or computed when the projection left `meta` out.
    let version = res.version;
    let body = render(svc, ctx, def, res, projection).await?;
    let etag = match body.meta_str("version") {
        Some(tag) => std::borrow::Cow::Borrowed(tag),
        None => std::borrow::Cow::Owned(version.etag()),
    };
    let loc = (status == StatusCode::CREATED).then(|| match body.meta_str("location") {
        Some(l) => l.to_owned(),
        None => location(svc, ctx, def.name(), &body.id),
    });
    Ok(response::resource(
        status,
        &body,
        Some(&etag),
        loc.as_deref(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Read

async fn get(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    let projection = projection_from_query(request)?;
    let with_members = has_members(def) && projection.includes(def, "members");
    let res = svc.store().get(ctx.id(), def, id, with_members).await?;
    if let Some(v) = request.headers().get(IF_NONE_MATCH) {
        let tags = parse_tags(v.to_str().unwrap_or(""))?;
        let matched = match tags {
            Precondition::Any => true,
            Precondition::Tags(t) => t.contains(&res.version),
        };
        if matched {
            return Ok(response::empty(
                StatusCode::NOT_MODIFIED,
                Some(&res.version.etag()),
            ));
        }
    }
    respond_resource(svc, ctx, def, res, &projection, StatusCode::OK).await
}

/// List and search parameters (RFC 7644 §3.4.2, §3.4.3).
#[derive(Debug, Default)]
pub(crate) struct ListParams {
    filter: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
}

fn parse_int(name: &str, v: &str) -> Result<i64, ScimError> {
    let t = v.trim();
    t.parse::<i64>().or_else(|_| {
        // Out-of-range integers are clamped later: treat them as the extreme value.
        if !t.is_empty()
            && t.trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            Ok(if t.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        } else {
            Err(ScimError::InvalidValue(format!(
                "`{name}` must be an integer, got `{}`",
                crate::resource::truncate_for_detail(v)
            )))
        }
    })
}

impl ListParams {
    pub(crate) fn from_query(query: &str) -> Result<ListParams, ScimError> {
        let q = parse_query(query)?;
        let mut p = ListParams::default();
        for (k, v) in q {
            match k.to_ascii_lowercase().as_str() {
                "filter" => p.filter = Some(v),
                "sortby" => p.sort_by = Some(v),
                "sortorder" => p.sort_order = Some(v),
                "startindex" => p.start_index = Some(parse_int("startIndex", &v)?),
                "count" => p.count = Some(parse_int("count", &v)?),
                "attributes" => p.attributes = Some(v),
                "excludedattributes" => p.excluded = Some(v),
                // RFC 7644 leaves other parameters to the service provider; IdPs add their
                // own (Entra's aadOptscim062020), so they are ignored.
                _ => {}
            }
        }
        Ok(p)
    }

    pub(crate) fn from_search_body(body: &Value) -> Result<ListParams, ScimError> {
        let Value::Object(obj) = body else {
            return Err(ScimError::InvalidSyntax(
                "a SearchRequest must be a JSON object".to_owned(),
            ));
        };
        let mut p = ListParams::default();
        let mut schema_ok = false;
        for (k, v) in obj {
            let text = |v: &Value| -> Result<String, ScimError> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str().map(str::to_owned).ok_or_else(|| {
                                ScimError::InvalidValue(format!(
                                    "`{k}` must be a string or an array of strings"
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(|v| v.join(",")),
                    _ => Err(ScimError::InvalidValue(format!(
                        "`{k}` must be a string or an array of strings"
                    ))),
                }
            };
            let int = |v: &Value| -> Result<i64, ScimError> {
                match v {
                    Value::Number(n) => n.as_i64().map_or_else(
                        || {
                            if n.as_u64().is_some() {
                                Ok(i64::MAX)
                            } else {
                                Err(ScimError::InvalidValue(format!("`{k}` must be an integer")))
                            }
                        },
                        Ok,
                    ),
                    Value::String(s) => parse_int(k, s),
                    _ => Err(ScimError::InvalidValue(format!("`{k}` must be an integer"))),
                }
            };
            match k.to_ascii_lowercase().as_str() {
                "schemas" => {
                    schema_ok = v.as_array().is_some_and(|a| {
                        a.iter().any(|s| {
                            s.as_str()
                                .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
                        })
                    });
                }
                "filter" => p.filter = Some(text(v)?),
                "sortby" => p.sort_by = Some(text(v)?),
                "sortorder" => p.sort_order = Some(text(v)?),
                "startindex" => p.start_index = Some(int(v)?),
                "count" => p.count = Some(int(v)?),
                "attributes" => p.attributes = Some(text(v)?),
                "excludedattributes" => p.excluded = Some(text(v)?),
                _ => {}
            }
        }
        if !schema_ok {
            return Err(ScimError::InvalidSyntax(format!(
                "a SearchRequest must list `{SEARCH_REQUEST_SCHEMA}` in `schemas`"
            )));
        }
        Ok(p)
    }
}

/// Answers a list or search over one or more resource types.
pub(crate) async fn search(
    svc: &ScimService,
    ctx: &Ctx,
    defs: &[Arc<ResourceDef>],
    params: &ListParams,
) -> Result<Response<Bytes>, ScimError> {
    let limits = &ctx.tenant.settings.limits;
    let strict = !ctx.tenant.settings.tolerances.ignore_unknown_attributes;
    let filter = match &params.filter {
        Some(f) => Some(Filter::parse_with_limits(
            f,
            limits.max_filter_length,
            limits.max_filter_depth,
        )?),
        None => None,
    };
    let sort = match &params.sort_by {
        Some(by) => Some(SortSpec::parse(by, params.sort_order.as_deref())?),
        None => None,
    };
    let projection = Projection::parse(params.attributes.as_deref(), params.excluded.as_deref())?;
    // RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0; the service caps
    // count at its maximum page size.
    let start_index = params.start_index.unwrap_or(1).max(1);
    let start_index = usize::try_from(start_index).unwrap_or(usize::MAX);
    let count = params
        .count
        .map_or(limits.max_page_size, |c| {
            usize::try_from(c.max(0)).unwrap_or(usize::MAX)
        })
        .min(limits.max_page_size);

    if let [def] = defs {
        if let Some(f) = &filter {
            f.compile(def, strict)?;
        }
        if let (Some(s), true) = (&sort, strict) {
            s.validate(def)?;
        }
        let query = ListQuery {
            filter: filter.clone(),
            sort: sort.clone(),
            start_index,
            count,
            include_members: has_members(def) && projection.includes(def, "members"),
        };
        let mut page = svc.store().list(ctx.id(), def, &query).await?;
        if page.pushdown != Pushdown::Exact {
            page = apply_query(def, &query, page.resources)?;
        }
        let mut out = Vec::with_capacity(page.resources.len());
        for res in page.resources {
            out.push(render(svc, ctx, def, res, &projection).await?);
        }
        return Ok(list_response(page.total_results, start_index, out));
    }

    // A search across resource types (POST /.search): each type answers the whole filter
    // (attributes a type does not have match nothing there); results are grouped by type in
    // registry order, each group sorted, then paged together.
    let mut all: Vec<(Arc<ResourceDef>, StoredResource)> = Vec::new();
    for def in defs {
        let query = ListQuery {
            filter: filter.clone(),
            sort: sort.clone(),
            start_index: 1,
            count: usize::MAX,
            include_members: has_members(def) && projection.includes(def, "members"),
        };
        let mut page = svc.store().list(ctx.id(), def, &query).await?;
        if page.pushdown != Pushdown::Exact {
            page = apply_query(def, &query, page.resources)?;
        }
        all.extend(page.resources.into_iter().map(|r| (Arc::clone(def), r)));
    }
    let total = all.len();
    let window = crate::store::page_window(start_index, count, total);
    let mut out = Vec::with_capacity(window.len());
    for (def, res) in all.into_iter().skip(window.start).take(window.len()) {
        out.push(render(svc, ctx, &def, res, &projection).await?);
    }
    Ok(list_response(total, start_index, out))
}

// ---------------------------------------------------------------------------------------------
// Write

/// The uniqueness keys of a normalised document: every single-valued attribute with
/// `uniqueness` server or global (case-folded unless caseExact), and Group `displayName` when
/// the tenant asks for it.
fn unique_keys(ctx: &Ctx, def: &ResourceDef, doc: &Value) -> Vec<UniqueKey> {
    let mut keys = Vec::new();
    let key_of = |attr: &crate::schema::AttributeDef, v: Option<&Value>| -> Option<UniqueKey> {
        let s = v?.as_str()?;
        let value = if attr.case_exact {
            s.to_owned()
        } else {
            s.to_lowercase()
        };
        Some(UniqueKey::new(attr.name.clone(), value))
    };
    for attr in &def.core().attributes {
        let wanted = (attr.uniqueness != Uniqueness::None && !attr.multi_valued)
            || (ctx.tenant.settings.unique_group_display_name
                && has_members(def)
                && attr.name == "displayName");
        if wanted {
            keys.extend(key_of(attr, doc.get(&attr.name)));
        }
    }
    for (schema, _) in def.extensions() {
        for attr in &schema.attributes {
            if attr.uniqueness != Uniqueness::None && !attr.multi_valued {
                let v = doc.get(&schema.id).and_then(|e| e.get(&attr.name));
                if let Some(mut k) = key_of(attr, v) {
                    k.attribute = format!("{}:{}", schema.id, attr.name);
                    keys.push(k);
                }
            }
        }
    }
    keys
}

/// Splits a normalised document into what the store keeps as the document and the members
/// it keeps as a relation. Passwords are dropped: scimkit never stores them (IdPs send
/// random placeholders; `changePassword` is not supported).
fn split_document(
    def: &ResourceDef,
    mut doc: Value,
) -> Result<(Value, Option<Vec<MemberRef>>), ScimError> {
    let Some(obj) = doc.as_object_mut() else {
        return Ok((doc, None));
    };
    obj.shift_remove("password");
    if !has_members(def) {
        return Ok((doc, None));
    }
    let members = match obj.shift_remove("members") {
        None => Vec::new(),
        Some(Value::Array(items)) => member_refs(&items)?,
        Some(_) => Vec::new(),
    };
    Ok((doc, Some(members)))
}

pub(crate) fn member_refs(items: &[Value]) -> Result<Vec<MemberRef>, ScimError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let value = m
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::InvalidValue(format!("`members[{i}].value` is required")))?;
        out.push(MemberRef {
            value: ResourceId::new(value),
            resource_type: m.get("type").and_then(Value::as_str).map(str::to_owned),
        });
    }
    Ok(out)
}

pub(crate) async fn create_resource(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    body: &Value,
) -> Result<StoredResource, ScimError> {
    let doc = normalize_resource(def, body, &ctx.tenant.settings, WriteMode::Create)?;
    let (doc, members) = split_document(def, doc)?;
    let unique_keys = unique_keys(ctx, def, &doc);
    let req = crate::store::CreateRequest {
        id: ResourceId::generate(),
        doc,
        unique_keys,
        members: members.unwrap_or_default(),
        unknown_members: unknown_members_policy(ctx),
        now: svc.inner.clock.now(),
    };
    let res = svc.store().create(ctx.id(), def, req).await?;
    report_skipped(ctx, def, &res);
    Ok(res)
}

async fn create(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    let body = read_json(request, write_payload_limit(ctx, def))?;
    let projection = projection_from_query(request)?;
    let res = create_resource(svc, ctx, def, &body).await?;
    respond_resource(svc, ctx, def, res, &projection, StatusCode::CREATED).await
}

pub(crate) async fn replace(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    body: &Value,
    precondition: Option<Precondition>,
) -> Result<StoredResource, ScimError> {
    let mut attempt = 0;
    loop {
        let current = svc.store().get(ctx.id(), def, id, false).await?;
        if let Some(p) = &precondition {
            p.check(current.version)?;
        }
        let doc = normalize_resource(
            def,
            body,
            &ctx.tenant.settings,
            WriteMode::Replace {
                existing: &current.doc,
            },
        )?;
        let (doc, members) = split_document(def, doc)?;
        let unique_keys = unique_keys(ctx, def, &doc);
        let req = UpdateRequest {
            expected_version: Some(current.version),
            document: Some(NewDocument { doc, unique_keys }),
            // RFC 7644 §3.5.1: PUT replaces the whole resource, membership included; the
            // store computes the set difference against the stored members.
            members: members.map(|add| MembershipDelta {
                clear: true,
                add,
                remove: Vec::new(),
                unknown: unknown_members_policy(ctx),
            }),
            kind: UpdateKind::Replace,
            now: svc.inner.clock.now(),
        };
        match svc.store().update(ctx.id(), def, id, req).await {
            Err(StoreError::VersionMismatch { .. }) if precondition.is_none() => {
                attempt += 1;
                after_lost_race(svc, attempt).await?;
            }
            other => {
                let res = other?;
                report_skipped(ctx, def, &res);
                return Ok(res);
            }
        }
    }
}

/// After losing version race number `attempt`: gives up with 412 when the attempts are used
/// up, else pauses before the next one.
async fn after_lost_race(svc: &ScimService, attempt: u32) -> Result<(), ScimError> {
    if attempt >= MAX_WRITE_ATTEMPTS {
        return Err(ScimError::PreconditionFailed(
            "the resource kept changing concurrently; retry the request".to_owned(),
        ));
    }
    svc.inner.retry_pause.pause(retry_pause(attempt)).await;
    Ok(())
}

pub(crate) async fn patch(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    body: &Value,
    precondition: Option<Precondition>,
) -> Result<StoredResource, ScimError> {
    let settings = &ctx.tenant.settings;
    let request = PatchRequest::from_json(body, settings)?;
    let needs_members = has_members(def) && request.needs_members(def);
    let mut attempt = 0;
    loop {
        let mut current = svc.store().get(ctx.id(), def, id, needs_members).await?;
        if let Some(p) = &precondition {
            p.check(current.version)?;
        }
        // The engine patches our own copy in place (restoring it exactly on error), so the
        // stored document is copied once per attempt and nothing else is.
        let mut doc = current.doc.clone();
        if let (Some(members), Some(obj)) = (current.members.take(), doc.as_object_mut()) {
            let list: Vec<Value> = members
                .into_iter()
                .map(|m| json!({"value": m.value.into_string(), "type": m.resource_type}))
                .collect();
            obj.insert("members".into(), Value::Array(list));
        }
        let effect = patch::apply_in_place(def, &mut doc, &request, settings)?;
        let delta = effect.members.filter(|d| !d.is_empty());
        if !effect.changed && delta.is_none() {
            return Ok(current);
        }
        let (new_doc, _) = split_document(def, doc)?;
        let document = if new_doc == current.doc {
            None
        } else {
            let unique_keys = unique_keys(ctx, def, &new_doc);
            Some(NewDocument {
                doc: new_doc,
                unique_keys,
            })
        };
        if document.is_none() && delta.is_none() {
            return Ok(current);
        }
        // Membership changes commute: a delta that did not depend on the member list read
        // above, with no attribute change and no If-Match, is applied by the store as set
        // operations with no version precondition, so concurrent IdP calls adding and
        // removing different members never fail and never lose one another.
        let commutes = precondition.is_none() && document.is_none() && !needs_members;
        let req = UpdateRequest {
            expected_version: (!commutes).then_some(current.version),
            document,
            members: delta,
            kind: UpdateKind::Patch,
            now: svc.inner.clock.now(),
        };
        match svc.store().update(ctx.id(), def, id, req).await {
            // A concurrent writer got in between: re-read and re-apply, so that two IdP
            // calls racing on one resource both land (RFC 7644 §3.5.2 is silent; losing an
            // update would be worse).
            Err(StoreError::VersionMismatch { .. }) if precondition.is_none() => {
                attempt += 1;
                after_lost_race(svc, attempt).await?;
            }
            other => {
                let res = other?;
                report_skipped(ctx, def, &res);
                return Ok(res);
            }
        }
    }
}

pub(crate) async fn delete(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    precondition: Option<Precondition>,
) -> Result<(), ScimError> {
    let expected = match &precondition {
        None => None,
        Some(p) => {
            let current = svc.store().get(ctx.id(), def, id, false).await?;
            p.check(current.version)?;
            Some(current.version)
        }
    };
    svc.store()
        .delete(ctx.id(), def, id, expected, svc.inner.clock.now())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    #[test]
    fn rfc3339_matches_chrono() {
        let cases = [
            Utc.with_ymd_and_hms(2026, 11, 28, 9, 5, 2).single(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).single(),
        ];
        for t in cases.into_iter().flatten() {
            for ms in [0, 7, 45, 999] {
                let t = t + chrono::Duration::milliseconds(ms);
                assert_eq!(
                    super::rfc3339(t),
                    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                );
            }
        }
    }
}
