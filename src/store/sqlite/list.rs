//! Listing: a page of a resource type (filter, sort, offset or keyset paging).

use std::sync::Arc;

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Row, SqliteConnection};

use super::dialect::{column_for, order_by, Sqlite};
use super::{
    be, docs, groups_of, member_list, resource_from_row, sort_keys, SqliteStore, SELECT_RESOURCE,
};
use crate::filter::{SortOrder, SortSpec, SortValue};
use crate::schema::ResourceDef;
use crate::store::query::{compile, Needs};
use crate::store::sql::{translate, Param, Params, Where};
use crate::store::{GroupRef, Keyset, ListQuery, Page, Paging, Pushdown, StoreError};
use crate::tenant::TenantId;

impl SqliteStore {
    /// [`ResourceStore::list`], with the groups of each resource of the page when
    /// `with_groups` and the store read them in the page's statement (an index page in its
    /// default order); `None` otherwise, and the caller asks `groups_of_many`.
    pub(super) async fn list_page(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
        with_groups: bool,
    ) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let page = list_on(&mut conn, tenant, rt, query, with_groups).await?;
        conn.release();
        Ok(page)
    }
}

/// [`SqliteStore::list_page`] on the connection `conn`.
async fn list_on(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    query: &ListQuery,
    with_groups: bool,
) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
    let mut params = Params::new::<Sqlite>(3);
    let filter = match &query.filter {
        Some(f) => {
            let compiled = compile(rt, f)?;
            translate(&Sqlite, rt, compiled.root(), &mut params)
        }
        None => Where::all(),
    };
    let cond = filter.render::<Sqlite>();
    let exact = filter.is_exact();
    let order = match &query.sort {
        None => Some("r.ord ASC".to_owned()),
        Some(spec) => order_by(rt, spec),
    };
    let where_sql = format!("r.tenant = ?1 AND r.rt = ?2 AND {cond}");
    // An always-true filter (or none): the maintained count, not a count of the rows.
    let count_sql = if filter.selects_all() {
        "SELECT COALESCE((SELECT n FROM type_counts WHERE tenant = ?1 AND rt = ?2), 0) AS n"
            .to_owned()
    } else {
        format!("SELECT count(*) AS n FROM resources AS r WHERE {where_sql}")
    };
    let args = || -> Result<SqliteArguments, StoreError> {
        let mut a = SqliteArguments::default();
        bind_all(
            &mut a,
            &[
                Param::Text(tenant.as_str().to_owned()),
                Param::Text(rt.name().to_owned()),
            ],
        )?;
        bind_all(&mut a, &params.args)?;
        Ok(a)
    };

    let walk = match &query.paging {
        Paging::Keyset(after) if exact => {
            keyset_walk(rt, query.sort.as_ref()).map(|w| (w, after.as_ref()))
        }
        _ => None,
    };
    if let Some((walk, after)) = walk {
        let count_row = sqlx::query_with(AssertSqlSafe(count_sql.clone()), args()?)
            .fetch_one(&mut *conn)
            .await
            .map_err(be)?;
        let total = usize::try_from(count_row.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0);
        let mut resources = Vec::new();
        let first = 3 + params.args.len();
        for phase in walk.phases(after)? {
            let left = query.count.saturating_sub(resources.len());
            if left == 0 {
                break;
            }
            let mut a = args()?;
            bind_all(&mut a, &phase.params)?;
            let rows = sqlx::query_with(
                AssertSqlSafe(format!(
                    "{SELECT_RESOURCE} WHERE {where_sql} AND {} ORDER BY {} LIMIT {left}",
                    phase.cond(first),
                    phase.order
                )),
                a,
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(be)?;
            for row in &rows {
                resources.push(resource_from_row(row)?);
            }
        }
        if query.include_members {
            for r in &mut resources {
                r.members = Some(member_list(conn, tenant, r.id.as_str(), 0, usize::MAX).await?);
            }
        }
        return Ok((
            Page {
                resources,
                total_results: total,
                pushdown: Pushdown::Exact,
            },
            None,
        ));
    }
    if let (Paging::Index, true, Some(spec)) = (&query.paging, exact, query.sort.as_ref()) {
        if let Some(path) = keyed_sort(rt, spec) {
            if sort_keys::usable(&mut *conn, tenant.as_str(), rt).await? {
                let count_row = sqlx::query_with(AssertSqlSafe(count_sql.clone()), args()?)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(be)?;
                let total =
                    usize::try_from(count_row.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0);
                let window = crate::store::page_window(query.start_index, query.count, total);
                let p = 3 + params.args.len();
                let dir = match spec.order {
                    SortOrder::Ascending => "ASC",
                    SortOrder::Descending => "DESC",
                };
                let keyed = |a: &mut SqliteArguments| bind_all(a, &[Param::Text(path.clone())]);
                // Without a filter, walk the key index and look each resource up
                // (`CROSS JOIN` keeps SQLite from driving the join from `resources`
                // and sorting the whole type); with one, the planner chooses.
                let join = if filter.selects_all() {
                    "CROSS JOIN"
                } else {
                    "JOIN"
                };
                let mut rows = Vec::new();
                if !window.is_empty() {
                    // The resources with a value, walking the key index.
                    let mut a = args()?;
                    keyed(&mut a)?;
                    rows = sqlx::query_with(
                            AssertSqlSafe(format!(
                                "SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc \
                                 FROM sort_keys AS k {join} resources AS r ON r.ord = k.ord \
                                 WHERE k.tenant = ?1 AND k.rt = ?2 AND k.path = ?{p} AND {where_sql} \
                                 ORDER BY k.key {dir}, k.ord ASC LIMIT {} OFFSET {}",
                                window.len(),
                                window.start
                            )),
                            a,
                        )
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(be)?;
                }
                if rows.len() < window.len() {
                    // Then those without, in creation order: the page starts `skip` rows
                    // into them.
                    let with_value = if rows.is_empty() {
                        let mut a = args()?;
                        keyed(&mut a)?;
                        let n = sqlx::query_with(
                                AssertSqlSafe(format!(
                                    "SELECT count(*) AS n FROM sort_keys AS k JOIN resources AS r ON r.ord = k.ord \
                                     WHERE k.tenant = ?1 AND k.rt = ?2 AND k.path = ?{p} AND {where_sql}"
                                )),
                                a,
                            )
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(be)?;
                        usize::try_from(n.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0)
                    } else {
                        window.start + rows.len()
                    };
                    let skip = (window.start + rows.len()).saturating_sub(with_value);
                    let mut a = args()?;
                    keyed(&mut a)?;
                    let more = sqlx::query_with(
                            AssertSqlSafe(format!(
                                "{SELECT_RESOURCE} WHERE {where_sql} AND NOT EXISTS (SELECT 1 FROM sort_keys AS k \
                                 WHERE k.ord = r.ord AND k.path = ?{p}) ORDER BY r.ord ASC LIMIT {} OFFSET {skip}",
                                window.len() - rows.len()
                            )),
                            a,
                        )
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(be)?;
                    rows.extend(more);
                }
                let mut resources = Vec::with_capacity(rows.len());
                for row in &rows {
                    let mut r = resource_from_row(row)?;
                    if query.include_members {
                        r.members =
                            Some(member_list(conn, tenant, r.id.as_str(), 0, usize::MAX).await?);
                    }
                    resources.push(r);
                }
                return Ok((
                    Page {
                        resources,
                        total_results: total,
                        pushdown: Pushdown::Exact,
                    },
                    None,
                ));
            }
        }
    }
    let order = match &query.paging {
        // A keyset query this store cannot walk: the caller pages the candidates.
        Paging::Keyset(_) => None,
        Paging::Index => order,
    };
    match (exact, order) {
        (true, Some(order)) => {
            // One statement: the total (an uncorrelated subquery, computed once), the
            // page, and with `with_groups` each resource's groups, computed outside the
            // page's subquery so only the returned rows pay for them.
            let groups_column = if with_groups {
                groups_of("p")
            } else {
                String::new()
            };
            let start = query.start_index.saturating_sub(1);
            // SQLite refuses a LIMIT or OFFSET past i64 ("datatype mismatch").
            let (limit, offset) = (
                crate::store::to_i64(query.count as u64),
                crate::store::to_i64(start as u64),
            );
            let rows = sqlx::query_with(
                AssertSqlSafe(format!(
                    "SELECT ({count_sql}) AS total, p.*{groups_column} FROM \
                         (SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc, r.tenant \
                          FROM resources AS r WHERE {where_sql} ORDER BY {order} \
                          LIMIT {limit} OFFSET {offset}) AS p"
                )),
                args()?,
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(be)?;
            let mut total = None;
            let mut resources = Vec::with_capacity(rows.len());
            let mut groups = Vec::with_capacity(if with_groups { rows.len() } else { 0 });
            for row in &rows {
                total = Some(row.try_get::<i64, _>("total").map_err(be)?);
                resources.push(resource_from_row(row)?);
                if with_groups {
                    let g: String = row.try_get("groups").map_err(be)?;
                    groups.push(crate::store::groups_from_json(&g)?);
                }
            }
            let total = match total {
                Some(n) => n,
                // No row in the window: with a window from the first match and room
                // for one, no match at all; otherwise the total needs its own count.
                None if start == 0 && query.count > 0 => 0,
                None => sqlx::query_with(AssertSqlSafe(count_sql.clone()), args()?)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(be)?
                    .try_get::<i64, _>("n")
                    .map_err(be)?,
            };
            if query.include_members {
                for r in &mut resources {
                    r.members =
                        Some(member_list(conn, tenant, r.id.as_str(), 0, usize::MAX).await?);
                }
            }
            Ok((
                Page {
                    resources,
                    total_results: usize::try_from(total).unwrap_or(0),
                    pushdown: Pushdown::Exact,
                },
                with_groups.then_some(groups),
            ))
        }
        (exact, _) => {
            // A superset (or an order SQL cannot give): the service evaluates, sorts and
            // pages the candidates.
            // At most one candidate past what the caller evaluates (it refuses more).
            let limit = crate::store::candidate_limit(query.max_candidates);
            let rows = sqlx::query_with(
                AssertSqlSafe(format!(
                    "{SELECT_RESOURCE} WHERE {where_sql} ORDER BY r.ord ASC{limit}"
                )),
                args()?,
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(be)?;
            let with_members = query.include_members
                || Needs::of(query.filter.as_ref(), query.sort.as_ref()).members;
            let mut resources = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut r = resource_from_row(row)?;
                if with_members {
                    r.members =
                        Some(member_list(conn, tenant, r.id.as_str(), 0, usize::MAX).await?);
                }
                resources.push(r);
            }
            let pushdown = if !exact && filter.selects_all() {
                Pushdown::Unsupported
            } else {
                Pushdown::Inexact
            };
            Ok((
                Page {
                    total_results: resources.len(),
                    resources,
                    pushdown,
                },
                None,
            ))
        }
    }
}

/// Binds translated parameters.
fn bind_all(args: &mut SqliteArguments, params: &[Param]) -> Result<(), StoreError> {
    for p in params {
        let r = match p {
            Param::Text(s) => args.add(s.clone()),
            Param::Int(i) => args.add(*i),
            Param::Real(f) => args.add(*f),
        };
        r.map_err(|e| StoreError::Backend(Arc::from(e)))?;
    }
    Ok(())
}

/// How a keyset page (RFC 9865 cursors, [`Paging::Keyset`]) walks an index: by id alone, or
/// by a value column and id. Rows without a value (a NULL or empty text column) come after
/// the others, by ascending id, as the cursor order puts them.
struct KeysetWalk {
    /// The value column; `None` walks by id.
    col: Option<&'static str>,
    /// The column holds the chronological key of a dateTime (never without a value).
    date: bool,
    desc: bool,
}

/// One index range of a keyset walk: a condition with `?N` placeholders numbered from 0
/// (renumbered by [`KeysetPhase::cond`]), its parameters and its order.
struct KeysetPhase {
    cond: String,
    params: Vec<Param>,
    order: String,
}

impl KeysetPhase {
    fn cond(&self, first: usize) -> String {
        let mut out = self.cond.clone();
        // Highest first, so that `?1` is not a prefix of `?10` being replaced.
        for i in (0..self.params.len()).rev() {
            out = out.replace(&format!("?{{{i}}}"), &format!("?{}", first + i));
        }
        out
    }
}

/// The walk for a keyset page sorted by `sort`, when an index serves it; `None` when the
/// caller must page the candidates itself.
fn keyset_walk(rt: &ResourceDef, sort: Option<&SortSpec>) -> Option<KeysetWalk> {
    let Some(spec) = sort else {
        return Some(KeysetWalk {
            col: None,
            date: false,
            desc: false,
        });
    };
    let desc = spec.order == SortOrder::Descending;
    let by = &spec.by;
    let r = rt.resolve(by)?;
    if r.extension.is_some() {
        return None;
    }
    if r.attr.name == "meta" {
        let col = match r.sub.map(|s| s.name.as_str()) {
            Some("created") => "r.created_key",
            Some("lastModified") => "r.modified_key",
            _ => return None,
        };
        return Some(KeysetWalk {
            col: Some(col),
            date: true,
            desc,
        });
    }
    if r.sub.is_some() {
        return None;
    }
    if r.attr.name == "id" && r.attr.case_exact {
        return Some(KeysetWalk {
            col: None,
            date: false,
            desc,
        });
    }
    let keys = [Box::<str>::from(r.attr.name.as_str())];
    let col = column_for(rt, &keys, !r.attr.case_exact)?;
    Some(KeysetWalk {
        col: Some(col),
        date: false,
        desc,
    })
}

impl KeysetWalk {
    /// The index ranges after `after`, in cursor order.
    fn phases(&self, after: Option<&Keyset>) -> Result<Vec<KeysetPhase>, StoreError> {
        let (cmp, dir) = if self.desc {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let Some(col) = self.col else {
            return Ok(vec![match after {
                None => KeysetPhase {
                    cond: "1".into(),
                    params: Vec::new(),
                    order: format!("r.id {dir}"),
                },
                Some(k) => KeysetPhase {
                    cond: format!("r.id {cmp} ?{{0}}"),
                    params: vec![Param::Text(k.id.as_str().to_owned())],
                    order: format!("r.id {dir}"),
                },
            }]);
        };
        let value_text = |k: &Keyset| -> Result<Option<String>, StoreError> {
            match (&k.value, self.date) {
                (None, _) => Ok(None),
                (Some(SortValue::String(s)), false) => Ok(Some(s.clone())),
                (Some(SortValue::DateTime(d)), true) => Ok(Some(docs::date_key(d))),
                _ => Err(StoreError::InvalidValue(
                    "the cursor's position does not fit the sort".to_owned(),
                )),
            }
        };
        let has_value = if self.date {
            "1".to_owned()
        } else {
            format!("{col} > ''")
        };
        let order = format!("{col} {dir}, r.id {dir}");
        let none_order = "r.id ASC".to_owned();
        let none_cond = format!("({col} IS NULL OR {col} = '')");
        let mut out = Vec::with_capacity(2);
        match after {
            None => {
                out.push(KeysetPhase {
                    cond: has_value,
                    params: Vec::new(),
                    order,
                });
                if !self.date {
                    out.push(KeysetPhase {
                        cond: none_cond,
                        params: Vec::new(),
                        order: none_order,
                    });
                }
            }
            Some(k) => match value_text(k)? {
                Some(v) => {
                    // Ascending, the position is the range's start: `{col} > ''` must not be
                    // (SQLite takes one lower bound, and from '' it would filter every row
                    // before the position), so the unary `+` keeps it off the index.
                    let has_value = if self.date || self.desc {
                        has_value
                    } else {
                        format!("+{col} > ''")
                    };
                    out.push(KeysetPhase {
                        cond: format!("{has_value} AND ({col}, r.id) {cmp} (?{{0}}, ?{{1}})"),
                        params: vec![Param::Text(v), Param::Text(k.id.as_str().to_owned())],
                        order,
                    });
                    if !self.date {
                        out.push(KeysetPhase {
                            cond: none_cond,
                            params: Vec::new(),
                            order: none_order,
                        });
                    }
                }
                None => out.push(KeysetPhase {
                    cond: format!("{none_cond} AND r.id > ?{{0}}"),
                    params: vec![Param::Text(k.id.as_str().to_owned())],
                    order: none_order,
                }),
            },
        }
        Ok(out)
    }
}

/// The precomputed key path a sort walks ([`sort_keys`]), when the sort is on an attribute
/// without an indexed column of its own (`userName`, `externalId`, `displayName`, `id` and
/// the meta dates sort on their columns).
fn keyed_sort(rt: &ResourceDef, spec: &SortSpec) -> Option<String> {
    let r = rt.resolve(&spec.by)?;
    if r.extension.is_none() && r.sub.is_none() {
        let keys = [Box::<str>::from(r.attr.name.as_str())];
        if column_for(rt, &keys, !r.attr.case_exact).is_some() {
            return None;
        }
    }
    crate::store::sql::sort_keys::key_path(rt, &spec.by)
}
