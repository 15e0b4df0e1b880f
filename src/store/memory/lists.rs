//! Lists: the index planner, and the offset and keyset pages answered from it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;

use crate::filter::{
    compare_resources, CompValue, CompareOp, CompiledFilter, Filter, SortOrder, SortValue,
};
use crate::resource::ResourceId;
use crate::schema::ResourceDef;
use crate::store::query::{compile, into_view, page_window, Needs};
use crate::store::{Keyset, ListQuery, Page, Paging, Pushdown, StoreError, StoredResource};

use super::compact;
use super::state::*;

/// Candidates for a filter from the indexes.
pub(super) enum Cands {
    /// No index applies: every resource of the type.
    All,
    /// Exactly these (ord -> id).
    Set(BTreeMap<u64, Key>),
}

pub(super) struct Plan {
    pub(super) cands: Cands,
    /// True when the candidates are exactly the matches (no evaluation needed).
    pub(super) exact: bool,
}

/// The planner stops descending below this depth and lets the evaluator work.
pub(super) const MAX_PLAN_DEPTH: usize = 32;

pub(super) struct Planner<'a> {
    pub(super) rt: &'a ResourceDef,
    pub(super) data: &'a TenantData,
    pub(super) ti: &'a TypeIndex,
}

impl Planner<'_> {
    pub(super) fn plan(&self, f: &Filter, depth: usize) -> Plan {
        let scan = Plan {
            cands: Cands::All,
            exact: false,
        };
        if depth > MAX_PLAN_DEPTH {
            return scan;
        }
        match f {
            Filter::Compare {
                path,
                op: op @ (CompareOp::Eq | CompareOp::Sw),
                value: CompValue::String(v),
            } => {
                if let Some(i) = self.ti.attr_for(self.rt, path) {
                    let Some(ix) = self.ti.attrs.get(i) else {
                        return scan;
                    };
                    let set = ix
                        .range(v, *op == CompareOp::Sw)
                        .map(|((_, ord), id)| (*ord, Arc::clone(id)))
                        .collect();
                    return Plan {
                        cands: Cands::Set(set),
                        exact: true,
                    };
                }
                let is_id = path.sub_attr.is_none()
                    && path.urn.is_none()
                    && path.name.eq_ignore_ascii_case("id");
                if is_id && *op == CompareOp::Eq {
                    // `id` is caseExact (RFC 7643 §3.1).
                    let set = self
                        .data
                        .records
                        .get_key_value(v.as_str())
                        .filter(|(_, r)| &*r.rt == self.rt.name())
                        .map(|(k, r)| (r.ord, Arc::clone(k)))
                        .into_iter()
                        .collect();
                    return Plan {
                        cands: Cands::Set(set),
                        exact: true,
                    };
                }
                scan
            }
            Filter::And(a, b) => {
                let (pa, pb) = (self.plan(a, depth + 1), self.plan(b, depth + 1));
                match (pa.cands, pb.cands) {
                    (Cands::All, Cands::All) => scan,
                    (Cands::Set(s), Cands::All) | (Cands::All, Cands::Set(s)) => Plan {
                        cands: Cands::Set(s),
                        exact: false,
                    },
                    (Cands::Set(mut x), Cands::Set(y)) => {
                        x.retain(|k, _| y.contains_key(k));
                        Plan {
                            cands: Cands::Set(x),
                            exact: pa.exact && pb.exact,
                        }
                    }
                }
            }
            Filter::Or(a, b) => {
                let (pa, pb) = (self.plan(a, depth + 1), self.plan(b, depth + 1));
                match (pa.cands, pb.cands) {
                    (Cands::Set(mut x), Cands::Set(y)) => {
                        x.extend(y);
                        Plan {
                            cands: Cands::Set(x),
                            exact: pa.exact && pb.exact,
                        }
                    }
                    _ => scan,
                }
            }
            _ => scan,
        }
    }
}

/// The leaf `attr eq|sw "v"` on an indexed attribute, when the whole filter is that leaf.
pub(super) fn index_leaf<'f>(
    ti: &TypeIndex,
    rt: &ResourceDef,
    f: &'f Filter,
) -> Option<(usize, &'f str, bool)> {
    match f {
        Filter::Compare {
            path,
            op: op @ (CompareOp::Eq | CompareOp::Sw),
            value: CompValue::String(v),
        } => ti
            .attr_for(rt, path)
            .map(|i| (i, v.as_str(), *op == CompareOp::Sw)),
        _ => None,
    }
}

/// The document the evaluator and sorter see for a record: the stored document, plus `id`,
/// `meta` and `members` when the query reads them.
pub(super) fn eval_doc(
    data: &TenantData,
    needs: &Needs,
    id: &Key,
    rec: &Record,
) -> Result<Value, StoreError> {
    // Only the attributes the query reads: a scan then allocates almost nothing for the
    // resources it rejects.
    let doc = compact::decode_some(&rec.doc, &|k| needs.reads(k)).map_err(StoreError::backend)?;
    if !needs.any() {
        return Ok(doc);
    }
    Ok(into_view(StoredResource {
        id: ResourceId::new(&**id),
        resource_type: rec.rt.to_string(),
        version: rec.version,
        created: rec.created,
        last_modified: rec.last_modified,
        doc,
        members: needs.members.then(|| data.member_list(rec)),
        skipped_members: Vec::new(),
    }))
}

/// Answers a list query from the indexes and the evaluator (always exactly).
/// A keyset page ([`Paging::Keyset`]): without a filter, a walk of the id set or of an
/// attribute index from the position; otherwise every match, paged by the engine.
pub(super) fn keyset_in(
    data: &TenantData,
    ti: &TypeIndex,
    rt: &ResourceDef,
    query: &ListQuery,
    after: Option<&Keyset>,
) -> Result<Page, StoreError> {
    let total = ti.order.len();
    let by_id = match &query.sort {
        None => Some(false),
        Some(s) => rt
            .resolve(&s.by)
            .filter(|r| r.extension.is_none() && r.sub.is_none())
            .filter(|r| r.attr.name == "id" && r.attr.case_exact)
            .map(|_| s.order == SortOrder::Descending),
    };
    if query.filter.is_none() {
        if let Some(desc) = by_id {
            let from: Bound<&str> =
                after.map_or(Bound::Unbounded, |k| Bound::Excluded(k.id.as_str()));
            let mut resources = Vec::new();
            let ids: Box<dyn Iterator<Item = &Key>> = if desc {
                let to: Bound<&str> =
                    after.map_or(Bound::Unbounded, |k| Bound::Excluded(k.id.as_str()));
                Box::new(ti.ids.range::<str, _>((Bound::Unbounded, to)).rev())
            } else {
                Box::new(ti.ids.range::<str, _>((from, Bound::Unbounded)))
            };
            for id in ids.take(query.count) {
                if let Some(rec) = data.records.get(id) {
                    resources.push(data.stored(id, rec, query.include_members)?);
                }
            }
            return Ok(Page {
                resources,
                total_results: total,
                pushdown: Pushdown::Exact,
            });
        }
        let sort_ix = query.sort.as_ref().and_then(|s| {
            let i = ti.attr_for(rt, &s.by)?;
            let ix = ti.attrs.get(i)?;
            // Every resource has the value (none sorts last, outside the index), and the
            // index holds the sort value (folded exactly when the sorter folds).
            let fold = rt.top_level(&ix.name).is_some_and(|d| !d.case_exact);
            (ix.map.len() == total
                && ix.fold == fold
                && ix.map.keys().next().is_none_or(|(v, _)| !v.is_empty()))
            .then_some((ix, s.order))
        });
        if let Some((ix, order)) = sort_ix {
            let start: Option<(&str, &str)> = match after {
                None => None,
                Some(Keyset {
                    value: Some(SortValue::String(v)),
                    id,
                }) => Some((v.as_str(), id.as_str())),
                // A position among resources without a value: none are left.
                Some(_) => {
                    return Ok(Page {
                        resources: Vec::new(),
                        total_results: total,
                        pushdown: Pushdown::Exact,
                    })
                }
            };
            // Entries in (value, id) order from the position, one run of equal values at a
            // time (the index orders ties by creation).
            let entries: Box<dyn Iterator<Item = IndexEntry<'_>>> = match (order, start) {
                (SortOrder::Ascending, None) => Box::new(ix.map.iter()),
                (SortOrder::Ascending, Some((v, _))) => Box::new(
                    ix.map
                        .range::<(Box<str>, u64), _>((Box::<str>::from(v), 0)..),
                ),
                (SortOrder::Descending, None) => Box::new(ix.map.iter().rev()),
                (SortOrder::Descending, Some((v, _))) => Box::new(
                    ix.map
                        .range::<(Box<str>, u64), _>(..=(Box::<str>::from(v), u64::MAX))
                        .rev(),
                ),
            };
            let mut out: Vec<&Key> = Vec::new();
            let mut run: Vec<&Key> = Vec::new();
            let mut run_value: Option<&str> = None;
            /// Moves a run of equal values to `out`, ordered by id, past the position.
            fn flush<'k>(
                run: &mut Vec<&'k Key>,
                value: Option<&str>,
                out: &mut Vec<&'k Key>,
                order: SortOrder,
                start: Option<(&str, &str)>,
                count: usize,
            ) {
                run.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
                if order == SortOrder::Descending {
                    run.reverse();
                }
                for id in run.drain(..) {
                    let past = match (start, value) {
                        (Some((sv, sid)), Some(v)) if v == sv => match order {
                            SortOrder::Ascending => id.as_ref() > sid,
                            SortOrder::Descending => id.as_ref() < sid,
                        },
                        _ => true,
                    };
                    if past && out.len() < count {
                        out.push(id);
                    }
                }
            }
            for ((v, _), id) in entries {
                if run_value != Some(v.as_ref()) {
                    flush(&mut run, run_value, &mut out, order, start, query.count);
                    if out.len() >= query.count {
                        run_value = None;
                        break;
                    }
                    run_value = Some(v.as_ref());
                }
                run.push(id);
            }
            flush(&mut run, run_value, &mut out, order, start, query.count);
            let mut resources = Vec::with_capacity(out.len());
            for id in out {
                if let Some(rec) = data.records.get(id) {
                    resources.push(data.stored(id, rec, query.include_members)?);
                }
            }
            return Ok(Page {
                resources,
                total_results: total,
                pushdown: Pushdown::Exact,
            });
        }
    }
    // Every match, then the engine's keyset over them.
    let all = ListQuery {
        paging: Paging::Index,
        start_index: 1,
        count: usize::MAX,
        include_members: query.include_members || query.reads_members(),
        ..query.clone()
    };
    let page = list_in(data, ti, rt, &all)?;
    let rest = ListQuery {
        filter: None,
        ..query.clone()
    };
    crate::store::apply_query(rt, &rest, page.resources)
}

pub(super) fn list_in(
    data: &TenantData,
    ti: &TypeIndex,
    rt: &ResourceDef,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    if let Paging::Keyset(after) = &query.paging {
        return keyset_in(data, ti, rt, query, after.as_ref());
    }
    let leaf = query.filter.as_ref().and_then(|f| index_leaf(ti, rt, f));
    let sort_ix = query.sort.as_ref().and_then(|s| {
        let i = ti.attr_for(rt, &s.by)?;
        let ix = ti.attrs.get(i)?;
        // Resources without the value sort last, which an index walk cannot place.
        (ix.map.len() == ti.order.len()).then_some((i, ix, s.order))
    });

    // Fast path: the filter is absent or one `eq`/`sw` on an indexed attribute, and the sort
    // (if any) is ascending on that attribute: walk the index range, counting it, and build
    // only the requested page. Without a sort, the order is the index's (stable).
    let walk: Option<Box<dyn Iterator<Item = IndexEntry<'_>>>> = match (leaf, sort_ix) {
        (Some((i, v, prefix)), None) if query.sort.is_none() => {
            ti.attrs
                .get(i)
                .map(|ix| -> Box<dyn Iterator<Item = IndexEntry<'_>>> {
                    Box::new(ix.range(v, prefix))
                })
        }
        (Some((i, v, prefix)), Some((j, ix, SortOrder::Ascending))) if i == j => {
            Some(Box::new(ix.range(v, prefix)))
        }
        (None, Some((_, ix, SortOrder::Ascending))) if query.filter.is_none() => {
            Some(Box::new(ix.map.iter()))
        }
        _ => None,
    };
    if let Some(entries) = walk {
        let w_start = query.start_index.saturating_sub(1);
        let mut total = 0usize;
        let mut resources = Vec::new();
        for (_, id) in entries {
            if total >= w_start && resources.len() < query.count {
                if let Some(rec) = data.records.get(id) {
                    resources.push(data.stored(id, rec, query.include_members)?);
                }
            }
            total += 1;
        }
        return Ok(Page {
            resources,
            total_results: total,
            pushdown: Pushdown::Exact,
        });
    }

    // Compiled only now: the fast path above needs no evaluator.
    let needs = Needs::of(query.filter.as_ref(), query.sort.as_ref());
    let compiled: Option<CompiledFilter> = match &query.filter {
        Some(f) => Some(compile(rt, f)?),
        None => None,
    };
    let compiled = compiled.as_ref();
    let plan = match &query.filter {
        None => Plan {
            cands: Cands::All,
            exact: true,
        },
        Some(f) => Planner { rt, data, ti }.plan(f, 0),
    };
    // Whether a candidate matches; with the document the evaluator saw, when it parsed one.
    let keep = |id: &Key, ord: u64| -> Result<Option<(&Record, Option<Value>)>, StoreError> {
        if let Cands::Set(s) = &plan.cands {
            if !s.contains_key(&ord) {
                return Ok(None);
            }
        }
        let Some(rec) = data.records.get(id) else {
            return Ok(None);
        };
        match compiled {
            Some(c) if !plan.exact => {
                let doc = eval_doc(data, &needs, id, rec)?;
                Ok(c.matches(&doc).then_some((rec, Some(doc))))
            }
            _ => Ok(Some((rec, None))),
        }
    };

    let ordered: Vec<(&Key, &Record)> = if let Some((_, ix, order)) = sort_ix {
        // Sorted by an indexed attribute every resource has: walk the whole index.
        let mut out: Vec<(&Key, &Record, &str)> = Vec::new();
        for ((v, ord), id) in ix.map.iter() {
            if let Some((rec, _)) = keep(id, *ord)? {
                out.push((id, rec, v));
            }
        }
        if order == SortOrder::Descending {
            out.reverse();
            // Equal values keep creation order, as a stable sort does.
            let mut i = 0;
            while i < out.len() {
                let v = out.get(i).map(|e| e.2);
                let run = out
                    .get(i..)
                    .map(|r| r.iter().take_while(|e| Some(e.2) == v).count())
                    .unwrap_or(1)
                    .max(1);
                if let Some(slice) = out.get_mut(i..i + run) {
                    slice.reverse();
                }
                i += run;
            }
        }
        out.into_iter().map(|(id, rec, _)| (id, rec)).collect()
    } else {
        let iter: Box<dyn Iterator<Item = (&u64, &Key)>> = match &plan.cands {
            Cands::Set(s) => Box::new(s.iter()),
            Cands::All => Box::new(ti.order.iter()),
        };
        let mut out: Vec<(&Key, &Record, Option<Value>)> = Vec::new();
        for (ord, id) in iter {
            if let Some((rec, doc)) = keep(id, *ord)? {
                out.push((id, rec, doc));
            }
        }
        if let Some(spec) = &query.sort {
            let mut docs = Vec::with_capacity(out.len());
            for (id, rec, doc) in out {
                let doc = match doc {
                    Some(d) => d,
                    None => eval_doc(data, &needs, id, rec)?,
                };
                docs.push((id, rec, doc));
            }
            docs.sort_by(|(_, _, a), (_, _, b)| compare_resources(rt, spec, a, b));
            docs.into_iter().map(|(id, rec, _)| (id, rec)).collect()
        } else {
            out.into_iter().map(|(id, rec, _)| (id, rec)).collect()
        }
    };
    let total = ordered.len();
    let w = page_window(query.start_index, query.count, total);
    let mut resources = Vec::with_capacity(w.len());
    for (id, rec) in ordered.into_iter().skip(w.start).take(w.len()) {
        resources.push(data.stored(id, rec, query.include_members)?);
    }
    Ok(Page {
        resources,
        total_results: total,
        pushdown: Pushdown::Exact,
    })
}
