//! Writing a resource for a response (RFC 7643 §3, RFC 7644 §3.4.2.5): `schemas`, `id`,
//! the attributes, derived `members` and `groups`, `meta`, projected; `ETag` and `Location`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::response;
use super::{Ctx, ScimService};
use crate::error::ScimError;
use crate::resource::{ListResponse, Member, Projection, ResourceId};
use crate::schema::ResourceDef;
use crate::store::{GroupRef, StoredResource};

// ---------------------------------------------------------------------------------------------
// Rendering

/// True when resources of this type expose a derived, read-only `groups` (User).
pub(super) fn has_derived_groups(def: &ResourceDef) -> bool {
    def.core().attribute("groups").is_some_and(|a| {
        a.multi_valued && a.is_complex() && a.mutability == crate::schema::Mutability::ReadOnly
    })
}

pub(super) fn location(svc: &ScimService, ctx: &Ctx, resource_type: &str, id: &str) -> String {
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
pub(super) fn reference_json(
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

pub(super) fn member_json(svc: &ScimService, ctx: &Ctx, m: &Member) -> Value {
    reference_json(
        svc,
        ctx,
        &m.value,
        &m.resource_type,
        m.display.as_ref(),
        &m.resource_type,
    )
}

pub(super) fn group_json(svc: &ScimService, ctx: &Ctx, g: &GroupRef) -> Value {
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
pub(super) struct Rendered {
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
pub(super) struct MemberList {
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
pub(super) struct RefUrl<'a>(&'a str, &'a str, &'a str);

impl serde::Serialize for RefUrl<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}{}/{}", self.0, self.1, self.2))
    }
}

pub(super) struct MemberOut<'a>(&'a MemberList, &'a Member);

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
pub(super) struct MetaParts {
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
pub(super) fn full_document(
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
pub(super) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
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
pub(super) async fn render(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    res: StoredResource,
    known_groups: Option<Vec<GroupRef>>,
    projection: &Projection,
) -> Result<Rendered, ScimError> {
    let groups = if !renders_groups(def, projection) {
        None
    } else if let Some(g) = known_groups {
        Some(g)
    } else {
        Some(svc.store().groups_of(ctx.id(), &res.id).await?)
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

/// True when a resource of type `def` is rendered with its derived `groups` under
/// `projection`.
pub(super) fn renders_groups(def: &ResourceDef, projection: &Projection) -> bool {
    has_derived_groups(def) && projection.includes(def, "groups")
}

/// Renders the resources of one page, reading the derived `groups` of all of them with one
/// store call unless `known` holds them (one list per resource, in page order, as read with
/// the page).
pub(super) async fn render_page(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    resources: Vec<StoredResource>,
    known: Option<Vec<Vec<GroupRef>>>,
    projection: &Projection,
) -> Result<Vec<Rendered>, ScimError> {
    let known = known.filter(|g| g.len() == resources.len());
    let mut groups = if !renders_groups(def, projection) {
        Vec::new()
    } else if let Some(known) = known {
        known.into_iter().map(Some).collect()
    } else if !resources.is_empty() {
        let ids: Vec<ResourceId> = resources.iter().map(|r| r.id.clone()).collect();
        svc.store()
            .groups_of_many(ctx.id(), &ids)
            .await?
            .into_iter()
            .map(Some)
            .collect()
    } else {
        Vec::new()
    };
    groups.resize(resources.len(), None);
    let mut out = Vec::with_capacity(resources.len());
    for (res, g) in resources.into_iter().zip(groups) {
        out.push(full_document(svc, ctx, def, res, g.as_deref(), projection));
    }
    Ok(out)
}

pub(super) async fn respond_resource(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    res: StoredResource,
    projection: &Projection,
    status: StatusCode,
) -> Result<Response<Bytes>, ScimError> {
    respond_with_groups(svc, ctx, def, res, None, projection, status).await
}

/// [`respond_resource`] with the resource's derived `groups` when already read (`None`:
/// read them if the projection renders them).
pub(super) async fn respond_with_groups(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    res: StoredResource,
    groups: Option<Vec<GroupRef>>,
    projection: &Projection,
    status: StatusCode,
) -> Result<Response<Bytes>, ScimError> {
    // A write returns the members only when it set them all (then they are the request's
    // own). Otherwise they are read back only when the client named them in `attributes`:
    // the answer to a membership change must not grow with the group.
    let res = if def.has_members() && res.members.is_none() && projection.requests(def, "members") {
        svc.store().get(ctx.id(), def, &res.id, true).await?
    } else {
        res
    };
    // `Location` and `ETag` are `meta.location` and `meta.version`: taken from the rendered
    // body (not formatted twice), or computed when the projection left `meta` out.
    let version = res.version;
    let body = render(svc, ctx, def, res, groups, projection).await?;
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

pub(super) fn list_response<T: serde::Serialize>(
    total: usize,
    start: usize,
    resources: Vec<T>,
) -> Response<Bytes> {
    let list = ListResponse::new(resources, total as u64, start as u64);
    response::serialized(StatusCode::OK, &list)
}

/// A ListResponse of cursor paging (RFC 9865 §3): no `startIndex`, and `nextCursor` when
/// a next page exists.
pub(super) fn cursor_list_response<T: serde::Serialize>(
    total: usize,
    resources: Vec<T>,
    next_cursor: Option<String>,
) -> Response<Bytes> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CursorList<T> {
        schemas: [&'static str; 1],
        total_results: u64,
        items_per_page: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
        #[serde(rename = "Resources")]
        resources: Vec<T>,
    }
    let list = CursorList {
        schemas: [crate::schema::LIST_RESPONSE_SCHEMA],
        total_results: total as u64,
        items_per_page: resources.len() as u64,
        next_cursor,
        resources,
    };
    response::serialized(StatusCode::OK, &list)
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
