//! Reads: a resource by id, and lists and searches (RFC 7644 §3.4).

use std::sync::Arc;

use bytes::Bytes;
use http::header::IF_NONE_MATCH;
use http::{Request, Response, StatusCode};
use serde_json::Value;

use super::query::parse_query;
use super::render::{
    cursor_list_response, list_response, render_page, renders_groups, respond_with_groups,
};
use super::request::{parse_tags, projection_from_query, Precondition};
use super::response;
use super::{Ctx, ScimService};
use crate::error::ScimError;
use crate::filter::{Filter, SortSpec};
use crate::resource::{Projection, ResourceId};
use crate::schema::{ResourceDef, SEARCH_REQUEST_SCHEMA};
use crate::store::{apply_query, keyset_of, GroupRef, ListQuery, Paging, Pushdown};

// ---------------------------------------------------------------------------------------------
// Read

pub(super) async fn get(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    let projection = projection_from_query(request)?;
    let with_members = def.has_members() && projection.includes(def, "members");
    // A User with its derived groups is one store read (one statement on SQL).
    let (res, groups) = if renders_groups(def, &projection) && !with_members {
        let (res, groups) = svc.store().get_with_groups(ctx.id(), def, id).await?;
        (res, Some(groups))
    } else {
        (
            svc.store().get(ctx.id(), def, id, with_members).await?,
            None,
        )
    };
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
    respond_with_groups(svc, ctx, def, res, groups, &projection, StatusCode::OK).await
}

/// List and search parameters (RFC 7644 §3.4.2, §3.4.3).
#[derive(Debug, Default)]
pub(super) struct ListParams {
    filter: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
    /// RFC 9865 `cursor` (empty: the first page).
    cursor: Option<String>,
}

pub(super) fn parse_int(name: &str, v: &str) -> Result<i64, ScimError> {
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
                "cursor" => p.cursor = Some(v),
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
                "cursor" => p.cursor = Some(text(v)?),
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
pub(super) async fn search(
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
    if let Some(cursor) = &params.cursor {
        let q = CursorQuery {
            filter,
            sort,
            projection,
            cursor,
        };
        return cursor_search(svc, ctx, defs, params, q).await;
    }
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
            include_members: def.has_members() && projection.includes(def, "members"),
            max_candidates: limits.max_resources_scanned,
            paging: Paging::Index,
        };
        let with_groups = renders_groups(def, &projection);
        let (page, groups) =
            list_page_with_groups(svc, ctx, def, &query, params, with_groups).await?;
        let out = render_page(svc, ctx, def, page.resources, groups, &projection).await?;
        return Ok(list_response(page.total_results, start_index, out));
    }

    // A search across resource types (POST /.search): each type answers the whole filter
    // (attributes a type does not have match nothing there); results are grouped by type in
    // registry order, each group sorted, then paged together. Each type is first asked only
    // for its number of matches (`count` 0), then only the types the page overlaps are
    // asked for their part of it, so the work is that of one page, not of every match.
    let query_for = |def: &ResourceDef, start_index: usize, count: usize| ListQuery {
        filter: filter.clone(),
        sort: sort.clone(),
        start_index,
        count,
        include_members: def.has_members() && projection.includes(def, "members"),
        max_candidates: limits.max_resources_scanned,
        paging: Paging::Index,
    };
    let mut totals = Vec::with_capacity(defs.len());
    for def in defs {
        let page = list_page(svc, ctx, def, &query_for(def, 1, 0), params).await?;
        totals.push(page.total_results);
    }
    let total = totals.iter().fold(0usize, |a, n| a.saturating_add(*n));
    let window = crate::store::page_window(start_index, count, total);
    let mut out = Vec::with_capacity(window.len());
    let mut offset = 0usize;
    for (def, n) in defs.iter().zip(totals) {
        // The part of the page that falls in this type's group, relative to the group.
        let from = window.start.max(offset);
        let to = window.end.min(offset.saturating_add(n));
        if from < to {
            let local = query_for(def, from - offset + 1, to - from);
            let page = list_page(svc, ctx, def, &local, params).await?;
            out.extend(render_page(svc, ctx, def, page.resources, None, &projection).await?);
        }
        offset = offset.saturating_add(n);
    }
    Ok(list_response(total, start_index, out))
}

/// The parsed parts of a cursor request.
struct CursorQuery<'a> {
    filter: Option<Filter>,
    sort: Option<SortSpec>,
    projection: Projection,
    cursor: &'a str,
}

/// Answers a list or search with RFC 9865 cursor paging: the `count` resources after the
/// cursor's position in the cursor order (see [`Paging::Keyset`]), with `nextCursor` when
/// more follow. A root search walks the types in registry order, each in cursor order.
///
/// `startIndex` together with `cursor` is 400 `invalidValue` (the two select different paging
/// methods); a `count` below 0 or above the maximum page size is 400 `invalidCount`.
async fn cursor_search(
    svc: &ScimService,
    ctx: &Ctx,
    defs: &[Arc<ResourceDef>],
    params: &ListParams,
    q: CursorQuery<'_>,
) -> Result<Response<Bytes>, ScimError> {
    let limits = &ctx.tenant.settings.limits;
    let strict = !ctx.tenant.settings.tolerances.ignore_unknown_attributes;
    if params.start_index.is_some() {
        return Err(ScimError::InvalidValue(
            "`startIndex` and `cursor` select two different paging methods (index and cursor, RFC 9865); send only one of them".to_owned(),
        ));
    }
    let count = match params.count {
        None => limits.max_page_size,
        Some(c) => match usize::try_from(c) {
            Ok(c) if c <= limits.max_page_size => c,
            _ => {
                return Err(ScimError::InvalidCount(format!(
                    "`count` must be between 0 and {} (the maximum page size) with cursor paging, got {c}",
                    limits.max_page_size
                )))
            }
        },
    };
    if let [def] = defs {
        if let Some(f) = &q.filter {
            f.compile(def, strict)?;
        }
        if let (Some(s), true) = (&q.sort, strict) {
            s.validate(def)?;
        }
    }
    let scope: Vec<&str> = defs.iter().map(|d| d.name()).collect();
    let binding = super::cursor::Binding::new(ctx.id(), &scope, q.filter.as_ref(), q.sort.as_ref());
    let key = &svc.inner.cursor_key;
    let now = svc.inner.clock.now();
    let position = if q.cursor.trim().is_empty() {
        super::cursor::Position {
            scope_index: 0,
            after: None,
        }
    } else {
        super::cursor::decode(key, &binding, now, svc.inner.cursor_timeout, q.cursor)?
    };
    let query_for = |def: &ResourceDef, count: usize, paging: Paging| ListQuery {
        filter: q.filter.clone(),
        sort: q.sort.clone(),
        start_index: 1,
        count,
        include_members: def.has_members() && q.projection.includes(def, "members"),
        max_candidates: limits.max_resources_scanned,
        paging,
    };
    // The totals: of the one type from its keyset answer; of each type of a root search
    // first, by a count-only query.
    let mut totals: Vec<Option<usize>> = vec![None; defs.len()];
    if defs.len() > 1 || count == 0 {
        for (def, slot) in defs.iter().zip(totals.iter_mut()) {
            let page = list_page(svc, ctx, def, &query_for(def, 0, Paging::Index), params).await?;
            *slot = Some(page.total_results);
        }
    }
    let mut out = Vec::new();
    let mut remaining = count;
    let mut last: Option<(usize, crate::store::Keyset)> = None;
    let mut more = false;
    if count > 0 {
        for (i, def) in defs.iter().enumerate().skip(position.scope_index) {
            if remaining == 0 {
                more = totals.get(i).copied().flatten().unwrap_or(0) > 0;
                if more {
                    break;
                }
                continue;
            }
            let after = if i == position.scope_index {
                position.after.clone()
            } else {
                None
            };
            // One more than asked: whether a next page exists.
            let query = query_for(def, remaining.saturating_add(1), Paging::Keyset(after));
            let page = keyset_page(svc, ctx, def, &query, params).await?;
            if let Some(slot) = totals.get_mut(i) {
                slot.get_or_insert(page.total_results);
            }
            let mut resources = page.resources;
            if resources.len() > remaining {
                resources.truncate(remaining);
                more = true;
            }
            if let Some(r) = resources.last() {
                last = Some((i, keyset_of(def, q.sort.as_ref(), r)));
            }
            remaining -= resources.len();
            out.extend(render_page(svc, ctx, def, resources, None, &q.projection).await?);
            if more {
                break;
            }
        }
    }
    let total = totals
        .iter()
        .fold(0usize, |a, n| a.saturating_add(n.unwrap_or(0)));
    let next = more.then(|| {
        let next = match last {
            Some((scope_index, k)) => super::cursor::Position {
                scope_index,
                after: Some(k),
            },
            None => position.clone(),
        };
        super::cursor::encode(key, &binding, now, &next)
    });
    Ok(cursor_list_response(total, out, next))
}

/// A keyset page of one type, from a store that pages by keyset, or else from every match
/// (at most [`Limits::max_resources_scanned`](crate::settings::Limits::max_resources_scanned))
/// paged by the engine.
async fn keyset_page(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    query: &ListQuery,
    params: &ListParams,
) -> Result<crate::store::Page, ScimError> {
    if svc.store().keyset_paging() {
        return list_page(svc, ctx, def, query, params).await;
    }
    let all = ListQuery {
        paging: Paging::Index,
        start_index: 1,
        count: query.max_candidates.saturating_add(1),
        ..query.clone()
    };
    let page = list_page(svc, ctx, def, &all, params).await?;
    if page.total_results > query.max_candidates {
        return Err(too_broad(def, query.max_candidates, params));
    }
    // The matches are known: only the keyset is left to apply.
    let rest = ListQuery {
        filter: None,
        ..query.clone()
    };
    Ok(apply_query(def, &rest, page.resources)?)
}

/// Lists one resource type: the store's answer when it is exact, else the service's
/// evaluation of its candidates, refused with 400 `tooMany` when there are more of them
/// than [`Limits::max_resources_scanned`](crate::settings::Limits::max_resources_scanned).
async fn list_page(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    query: &ListQuery,
    params: &ListParams,
) -> Result<crate::store::Page, ScimError> {
    let page = svc.store().list(ctx.id(), def, query).await?;
    if page.pushdown == Pushdown::Exact {
        return Ok(page);
    }
    if page.resources.len() > query.max_candidates {
        return Err(too_broad(def, query.max_candidates, params));
    }
    Ok(apply_query(def, query, page.resources)?)
}

/// [`list_page`], reading the page's derived groups with it when `with_groups` and the
/// store can (see [`ResourceStore::list_with_groups`](crate::store::ResourceStore::list_with_groups)):
/// `Some` only for an exact page, whose resources are the groups' owners in order.
async fn list_page_with_groups(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    query: &ListQuery,
    params: &ListParams,
    with_groups: bool,
) -> Result<(crate::store::Page, Option<Vec<Vec<GroupRef>>>), ScimError> {
    if !with_groups {
        return Ok((list_page(svc, ctx, def, query, params).await?, None));
    }
    let (page, groups) = svc.store().list_with_groups(ctx.id(), def, query).await?;
    if page.pushdown == Pushdown::Exact {
        let groups = groups.filter(|g| g.len() == page.resources.len());
        return Ok((page, groups));
    }
    if page.resources.len() > query.max_candidates {
        return Err(too_broad(def, query.max_candidates, params));
    }
    Ok((apply_query(def, query, page.resources)?, None))
}

/// The answer to a query the store cannot narrow and that has too many candidates.
fn too_broad(def: &ResourceDef, cap: usize, params: &ListParams) -> ScimError {
    use crate::resource::truncate_for_detail;
    let what = match (&params.filter, &params.sort_by) {
        (Some(f), Some(s)) => format!(
            "the filter `{}` with sortBy `{}`",
            truncate_for_detail(f),
            truncate_for_detail(s)
        ),
        (Some(f), None) => format!("the filter `{}`", truncate_for_detail(f)),
        (None, Some(s)) => format!("sortBy `{}`", truncate_for_detail(s)),
        (None, None) => "the query".to_owned(),
    };
    ScimError::TooMany(format!(
        "{what} cannot be answered from the store's index for {} and would evaluate more than {cap} resources, the most this service evaluates per request; narrow the filter with a condition the store indexes (for example on userName, externalId, displayName or id) or sort by another attribute",
        def.name()
    ))
}
