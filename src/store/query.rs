//! Answering a [`ListQuery`] over candidates with the engine's evaluator.

use std::cmp::Ordering;
use std::ops::Range;

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use super::{Keyset, ListQuery, Page, Paging, Pushdown, StoreError, StoredResource};
use crate::filter::{compare_resources, sort_value, CompiledFilter, Filter, SortOrder, SortSpec};
use crate::schema::{AttrPath, ResourceDef};

/// The range of a result list that a page covers, for a 1-based `start_index` (values below 1
/// count as 1, RFC 7644 §3.4.2.4) and a `count` (0 gives an empty page). A start past the end
/// gives an empty range at the end.
pub fn page_window(start_index: usize, count: usize, total: usize) -> Range<usize> {
    let start = start_index.saturating_sub(1).min(total);
    let end = start.saturating_add(count).min(total);
    start..end
}

/// The document the filter evaluator and sorter see for a stored resource: `doc` plus `id`,
/// `meta` (`resourceType`, `created`, `lastModified`, `version`; not `location`, which only the
/// service knows) and, when present, `members`.
pub fn view_document(res: &StoredResource) -> Value {
    let mut obj = match &res.doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    add_view_fields(&mut obj, res);
    Value::Object(obj)
}

/// [`view_document`] taking the resource by value (no copy of the document).
pub(crate) fn into_view(mut res: StoredResource) -> Value {
    let mut obj = match std::mem::take(&mut res.doc) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    add_view_fields(&mut obj, &res);
    Value::Object(obj)
}

fn add_view_fields(obj: &mut Map<String, Value>, res: &StoredResource) {
    obj.insert("id".into(), Value::String(res.id.as_str().to_owned()));
    let mut meta = Map::new();
    meta.insert(
        "resourceType".into(),
        Value::String(res.resource_type.clone()),
    );
    meta.insert(
        "created".into(),
        Value::String(res.created.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    meta.insert(
        "lastModified".into(),
        Value::String(
            res.last_modified
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ),
    );
    meta.insert("version".into(), Value::String(res.version.etag()));
    obj.insert("meta".into(), Value::Object(meta));
    if let Some(members) = &res.members {
        let list = members
            .iter()
            .map(|m| {
                let mut e = Map::new();
                e.insert("value".into(), Value::String(m.value.as_str().to_owned()));
                e.insert("type".into(), Value::String(m.resource_type.clone()));
                if let Some(d) = &m.display {
                    e.insert("display".into(), Value::String(d.clone()));
                }
                Value::Object(e)
            })
            .collect();
        obj.insert("members".into(), Value::Array(list));
    }
}

/// What of a resource a filter or sort reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// `id` or `meta.*`.
    pub(crate) view: bool,
    /// `members`.
    pub(crate) members: bool,
    /// The top-level document keys it may read: attribute names and extension URNs.
    keys: Vec<String>,
    /// Too deep to tell: it may read anything.
    everything: bool,
}

impl Needs {
    pub(crate) fn of(filter: Option<&Filter>, sort: Option<&SortSpec>) -> Needs {
        let mut n = Needs::default();
        if let Some(f) = filter {
            walk(f, &mut n, 0);
        }
        if let Some(s) = sort {
            n.path(&s.by);
        }
        n
    }

    fn path(&mut self, p: &AttrPath) {
        if p.name.eq_ignore_ascii_case("id") || p.name.eq_ignore_ascii_case("meta") {
            self.view = true;
        }
        if p.name.eq_ignore_ascii_case("members") {
            self.members = true;
        }
        // A qualified path reads either the URN key (extension) or the name (core schema).
        self.keys.push(p.name.clone());
        if let Some(urn) = &p.urn {
            self.keys.push(urn.clone());
        }
    }

    /// True when the document key `key` may be read (names are case-insensitive).
    pub(crate) fn reads(&self, key: &str) -> bool {
        self.everything || self.keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }

    /// True when the evaluator needs more than the stored document.
    pub(crate) fn any(&self) -> bool {
        self.view || self.members || self.everything
    }
}

/// Filters are depth-bounded by the parser; the bound here only keeps a hand-built tree from
/// exhausting the stack (deeper nodes are assumed to need everything).
const MAX_WALK_DEPTH: usize = 256;

fn walk(f: &Filter, n: &mut Needs, depth: usize) {
    if depth > MAX_WALK_DEPTH {
        n.view = true;
        n.members = true;
        n.everything = true;
        return;
    }
    match f {
        Filter::Compare { path, .. } | Filter::Present(path) => n.path(path),
        Filter::ValuePath { path, .. } => n.path(path),
        Filter::And(a, b) | Filter::Or(a, b) => {
            walk(a, n, depth + 1);
            walk(b, n, depth + 1);
        }
        Filter::Not(a) => walk(a, n, depth + 1),
    }
}

/// Compiles a filter for evaluation inside a store (lenient: unknown attributes match nothing,
/// as the service has already validated the filter strictly).
pub(crate) fn compile(rt: &ResourceDef, filter: &Filter) -> Result<CompiledFilter, StoreError> {
    filter
        .compile(rt, false)
        .map_err(|e| StoreError::InvalidFilter(e.detail().to_owned()))
}

/// Compares two positions in the cursor order of [`Paging::Keyset`] for `sort`.
pub fn keyset_cmp(sort: Option<&SortSpec>, a: &Keyset, b: &Keyset) -> Ordering {
    let by_id = a.id.as_str().cmp(b.id.as_str());
    let Some(spec) = sort else {
        return by_id;
    };
    match (&a.value, &b.value) {
        (Some(x), Some(y)) => {
            let o = x.compare(y).then(by_id);
            match spec.order {
                SortOrder::Ascending => o,
                SortOrder::Descending => o.reverse(),
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => by_id,
    }
}

/// The position of `res` in the cursor order of [`Paging::Keyset`] for `sort`.
pub fn keyset_of(rt: &ResourceDef, sort: Option<&SortSpec>, res: &StoredResource) -> Keyset {
    Keyset {
        value: sort.and_then(|s| sort_value(rt, s, &view_document(res))),
        id: res.id.clone(),
    }
}

/// Answers `query` over `candidates` with the engine: evaluates the filter, sorts (stably, so
/// ties keep the candidates' order), pages, and drops members unless asked for.
///
/// The service calls it on the candidates of an [`Pushdown::Inexact`] or
/// [`Pushdown::Unsupported`] answer; stores may use it for their own evaluation. When the
/// filter or sort reads `members`, the candidates must carry their members. The result is
/// [`Pushdown::Exact`].
pub fn apply_query(
    rt: &ResourceDef,
    query: &ListQuery,
    candidates: Vec<StoredResource>,
) -> Result<Page, StoreError> {
    let needs = Needs::of(query.filter.as_ref(), query.sort.as_ref());
    let compiled = match &query.filter {
        Some(f) => Some(compile(rt, f)?),
        None => None,
    };
    let mut matched: Vec<(StoredResource, Option<Value>)> = Vec::new();
    for res in candidates {
        let view = needs.any().then(|| view_document(&res));
        let ok = match &compiled {
            None => true,
            Some(c) => c.matches(view.as_ref().unwrap_or(&res.doc)),
        };
        if ok {
            matched.push((res, view));
        }
    }
    if let Paging::Keyset(after) = &query.paging {
        return Ok(keyset_page(rt, query, after.as_ref(), matched));
    }
    if let Some(spec) = &query.sort {
        matched.sort_by(|(ra, va), (rb, vb)| -> Ordering {
            compare_resources(
                rt,
                spec,
                va.as_ref().unwrap_or(&ra.doc),
                vb.as_ref().unwrap_or(&rb.doc),
            )
        });
    }
    let total = matched.len();
    let window = page_window(query.start_index, query.count, total);
    let resources = matched
        .into_iter()
        .skip(window.start)
        .take(window.len())
        .map(|(mut r, _)| {
            if !query.include_members {
                r.members = None;
            }
            r
        })
        .collect();
    Ok(Page {
        resources,
        total_results: total,
        pushdown: Pushdown::Exact,
    })
}

/// The keyset page of `matched` (every match, with the document the evaluator saw).
fn keyset_page(
    rt: &ResourceDef,
    query: &ListQuery,
    after: Option<&Keyset>,
    matched: Vec<(StoredResource, Option<Value>)>,
) -> Page {
    let sort = query.sort.as_ref();
    let total = matched.len();
    let mut keyed: Vec<(Keyset, StoredResource)> = matched
        .into_iter()
        .map(|(r, view)| {
            let value = sort.and_then(|s| sort_value(rt, s, view.as_ref().unwrap_or(&r.doc)));
            (
                Keyset {
                    value,
                    id: r.id.clone(),
                },
                r,
            )
        })
        .filter(|(k, _)| after.is_none_or(|a| keyset_cmp(sort, k, a) == Ordering::Greater))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| keyset_cmp(sort, a, b));
    let resources = keyed
        .into_iter()
        .take(query.count)
        .map(|(_, mut r)| {
            if !query.include_members {
                r.members = None;
            }
            r
        })
        .collect();
    Page {
        resources,
        total_results: total,
        pushdown: Pushdown::Exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_that_read_members() {
        let q = |f: &str| ListQuery {
            filter: Some(Filter::parse(f).unwrap()),
            ..ListQuery::default()
        };
        assert!(q(r#"members.value eq "x""#).reads_members());
        assert!(q(r#"displayName eq "a" or MEMBERS[value eq "x"]"#).reads_members());
        assert!(q("not (members pr)").reads_members());
        assert!(!q(r#"displayName eq "members""#).reads_members());
        let sorted = ListQuery {
            sort: Some(SortSpec {
                by: AttrPath::parse("members.display").unwrap(),
                order: crate::filter::SortOrder::Ascending,
            }),
            ..ListQuery::default()
        };
        assert!(sorted.reads_members());
        assert!(!ListQuery::default().reads_members());
    }

    #[test]
    fn page_windows() {
        assert_eq!(page_window(1, 10, 5), 0..5);
        assert_eq!(page_window(0, 10, 5), 0..5);
        assert_eq!(page_window(2, 2, 5), 1..3);
        assert_eq!(page_window(5, 2, 5), 4..5);
        assert_eq!(page_window(6, 2, 5), 5..5);
        assert_eq!(page_window(usize::MAX, usize::MAX, 5), 5..5);
        assert_eq!(page_window(1, 0, 5), 0..0);
        assert_eq!(page_window(1, usize::MAX, 0), 0..0);
    }
}
