//! Listing: offset pages, keyset (cursor) pages and pages sorted on precomputed keys.

use chrono::Utc;
use sqlx::{AssertSqlSafe, Row};

use super::dialect::{self, Pg};
use super::sort_keys;
use super::{
    bind_all, db_err, resource_from_row, resource_from_row_at, to_ns, PostgresStore, Tx,
    GROUPS_COLUMN, RESOURCE_COLUMNS,
};
use crate::filter::{SortOrder, SortSpec, SortValue};
use crate::schema::ResourceDef;
use crate::store::query::compile;
use crate::store::sql::{translate, Params};
use crate::store::{GroupRef, Keyset, ListQuery, Page, Paging, Pushdown, StoreError};
use crate::tenant::TenantId;

/// The precomputed key path a sort walks ([`sort_keys`]), when the sort is not on a column
/// of its own (`userName`, `displayName`, `externalId`, `id`, the meta attributes).
fn keyed_sort(rt: &ResourceDef, spec: &SortSpec) -> Option<String> {
    let r = rt.resolve(&spec.by)?;
    if r.extension.is_none() && r.sub.is_none() {
        let simple = r.attr.ty == crate::schema::AttributeType::String && !r.attr.multi_valued;
        match r.attr.name.as_str() {
            "userName" | "displayName" if simple && !r.attr.case_exact => return None,
            "externalId" if simple && r.attr.case_exact => return None,
            _ => {}
        }
    }
    crate::store::sql::sort_keys::key_path(rt, &spec.by)
}

/// How a keyset page (RFC 9865 cursors, [`Paging::Keyset`]) walks an index: by id alone,
/// or by a value column and id (indexes of migration 6). Rows without a value (NULL or an
/// empty string) come after the others, by ascending id, as the cursor order puts them.
struct KeysetWalk {
    /// The value column; `None` walks by id.
    col: Option<&'static str>,
    /// The column holds the nanoseconds of `meta.created`/`lastModified`.
    time: bool,
    desc: bool,
}

/// The walk for a keyset page sorted by `sort`, when an index serves it.
fn keyset_walk(rt: &ResourceDef, sort: Option<&SortSpec>) -> Option<KeysetWalk> {
    let Some(spec) = sort else {
        return Some(KeysetWalk {
            col: None,
            time: false,
            desc: false,
        });
    };
    let desc = spec.order == SortOrder::Descending;
    let r = rt.resolve(&spec.by)?;
    if r.extension.is_some() {
        return None;
    }
    let simple = r.sub.is_none()
        && r.attr.ty == crate::schema::AttributeType::String
        && !r.attr.multi_valued;
    let (col, time) = match (r.attr.name.as_str(), r.sub.map(|s| s.name.as_str())) {
        ("id", None) if r.attr.case_exact => (None, false),
        ("meta", Some("created")) => (Some("r.created"), true),
        ("meta", Some("lastModified")) => (Some("r.last_modified"), true),
        ("userName", None) if simple && !r.attr.case_exact => (Some("r.user_name_fold"), false),
        ("displayName", None) if simple && !r.attr.case_exact => {
            (Some("r.display_name_fold"), false)
        }
        ("externalId", None) if simple && r.attr.case_exact => (Some("r.external_id"), false),
        _ => return None,
    };
    Some(KeysetWalk { col, time, desc })
}

impl PostgresStore {
    /// A page sorted on precomputed keys ([`sort_keys`]): the resources with a value walking
    /// the key index, then those without in creation order; `totalResults` from the
    /// maintained count when the filter is always true.
    #[allow(clippy::too_many_arguments)]
    async fn keyed_list(
        tx: &mut Tx,
        rt: &ResourceDef,
        query: &ListQuery,
        spec: &SortSpec,
        path: &str,
        all: bool,
        where_sql: &str,
        params: &Params,
    ) -> Result<Page, StoreError> {
        let mut p = params.clone();
        let t = "$1";
        let ty = "$2";
        let count_sql = if all {
            format!(
                "SELECT COALESCE((SELECT n FROM scimkit_type_counts WHERE tenant = {t} \
                 AND resource_type = {ty}), 0) AS n"
            )
        } else {
            format!("SELECT count(*) AS n FROM scimkit_resources r WHERE {where_sql}")
        };
        let total: i64 = bind_all(sqlx::query(AssertSqlSafe(count_sql)), &params.args)
            .persistent(!params.plan_per_value)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        let total = usize::try_from(total).unwrap_or(0);
        let window = crate::store::page_window(query.start_index, query.count, total);
        let dir = match spec.order {
            SortOrder::Ascending => "ASC",
            SortOrder::Descending => "DESC",
        };
        let kp = p.text(path);
        let mut resources = Vec::with_capacity(window.len());
        if !window.is_empty() {
            let rows = bind_all(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM scimkit_sort_keys k \
                     JOIN scimkit_resources r ON r.ord = k.ord \
                     WHERE k.tenant = {t} AND k.resource_type = {ty} AND k.path = {kp} AND {where_sql} \
                     ORDER BY k.key {dir}, k.rest {dir}, k.ord LIMIT {} OFFSET {}",
                    window.len(),
                    window.start
                ))),
                &p.args,
            )
            .persistent(!params.plan_per_value)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_err)?;
            for row in &rows {
                resources.push(resource_from_row(rt, row)?);
            }
        }
        if resources.len() < window.len() {
            let got = resources.len();
            let with_value = if got == 0 {
                let n: i64 = bind_all(
                    sqlx::query(AssertSqlSafe(format!(
                        "SELECT count(*) FROM scimkit_sort_keys k JOIN scimkit_resources r ON r.ord = k.ord \
                         WHERE k.tenant = {t} AND k.resource_type = {ty} AND k.path = {kp} AND {where_sql}"
                    ))),
                    &p.args,
                )
                .persistent(!params.plan_per_value)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?;
                usize::try_from(n).unwrap_or(0)
            } else {
                window.start + got
            };
            let skip = (window.start + got).saturating_sub(with_value);
            let rows = bind_all(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r WHERE {where_sql} \
                     AND NOT EXISTS (SELECT 1 FROM scimkit_sort_keys k WHERE k.ord = r.ord AND k.path = {kp}) \
                     ORDER BY r.ord LIMIT {} OFFSET {skip}",
                    window.len() - got
                ))),
                &p.args,
            )
            .persistent(!params.plan_per_value)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_err)?;
            for row in &rows {
                resources.push(resource_from_row(rt, row)?);
            }
        }
        Ok(Page {
            resources,
            total_results: total,
            pushdown: Pushdown::Exact,
        })
    }

    /// A keyset page: the count and the first index range in one statement, the rows
    /// without a value in a second when the first range runs out before the page is full.
    #[allow(clippy::too_many_arguments)]
    async fn keyset_list(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
        where_sql: &str,
        params: &Params,
        walk: &KeysetWalk,
        after: Option<&Keyset>,
    ) -> Result<Page, StoreError> {
        let (cmp, dir) = if walk.desc {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        // (condition, order) of each range, in cursor order, with their parameters.
        let mut phases: Vec<(String, String, Params)> = Vec::with_capacity(2);
        match walk.col {
            None => {
                let mut p = params.clone();
                let cond = match after {
                    None => "TRUE".to_owned(),
                    Some(k) => format!("r.id {cmp} {}", p.text(k.id.as_str())),
                };
                phases.push((cond, format!("r.id {dir}"), p));
            }
            Some(col) => {
                let has_value = if walk.time {
                    "TRUE".to_owned()
                } else {
                    format!("{col} > ''")
                };
                let none = format!("({col} IS NULL OR {col} = '')");
                let order = format!("{col} {dir}, r.id {dir}");
                let value = |p: &mut Params, v: &SortValue| -> Result<String, StoreError> {
                    match (v, walk.time) {
                        (SortValue::String(s), false) => Ok(p.text(s.as_str())),
                        (SortValue::DateTime(d), true) => Ok(p.int(to_ns(d.with_timezone(&Utc))?)),
                        _ => Err(StoreError::InvalidValue(
                            "the cursor's position does not fit the sort".to_owned(),
                        )),
                    }
                };
                match after {
                    None => {
                        phases.push((has_value, order, params.clone()));
                        if !walk.time {
                            phases.push((none, "r.id".to_owned(), params.clone()));
                        }
                    }
                    Some(Keyset { value: Some(v), id }) => {
                        // Ascending from a non-empty value, the row comparison implies a
                        // value and must be the index range's only start (a second lower
                        // bound, `> ''`, could start the scan at the first user instead).
                        let implied =
                            !walk.desc && matches!(v, SortValue::String(s) if !s.is_empty());
                        let mut p = params.clone();
                        let v = value(&mut p, v)?;
                        let i = p.text(id.as_str());
                        let has_value = if implied {
                            "TRUE".to_owned()
                        } else {
                            has_value
                        };
                        phases.push((
                            format!("{has_value} AND ({col}, r.id) {cmp} ({v}, {i})"),
                            order,
                            p,
                        ));
                        if !walk.time {
                            phases.push((none, "r.id".to_owned(), params.clone()));
                        }
                    }
                    Some(Keyset { value: None, id }) => {
                        let mut p = params.clone();
                        let i = p.text(id.as_str());
                        phases.push((format!("{none} AND r.id > {i}"), "r.id".to_owned(), p));
                    }
                }
            }
        }
        let mut tx = if query.include_members {
            Some(self.begin_snapshot().await?)
        } else {
            None
        };
        let mut total = 0usize;
        let mut resources = Vec::new();
        for (n, (cond, order, mut p)) in phases.into_iter().enumerate() {
            let left = query.count.saturating_sub(resources.len());
            if n > 0 && left == 0 {
                break;
            }
            let limit = p.int(crate::store::to_i64(left as u64));
            let sql = if n == 0 {
                format!(
                    "SELECT t.n, p.* FROM \
                     (SELECT count(*) AS n FROM scimkit_resources r WHERE {where_sql}) AS t \
                     LEFT JOIN LATERAL (SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r \
                       WHERE {where_sql} AND {cond} ORDER BY {order} LIMIT {limit}) AS p \
                     ON true"
                )
            } else {
                format!(
                    "SELECT 0::bigint AS n, {RESOURCE_COLUMNS} FROM scimkit_resources r \
                     WHERE {where_sql} AND {cond} ORDER BY {order} LIMIT {limit}"
                )
            };
            let q = sqlx::query(AssertSqlSafe(sql));
            let q = bind_all(q, &p.args).persistent(!p.plan_per_value);
            let rows = match tx.as_mut() {
                Some(tx) => q.fetch_all(&mut **tx).await,
                None => self.reads.fetch_all(q).await,
            }
            .map_err(db_err)?;
            for row in &rows {
                if n == 0 {
                    let t: i64 = row.try_get(0).map_err(db_err)?;
                    total = usize::try_from(t).unwrap_or(0);
                }
                let id: Option<String> = row.try_get(1).map_err(db_err)?;
                if id.is_some() {
                    resources.push(resource_from_row_at(rt, row, 1)?);
                }
            }
        }
        if let Some(mut tx) = tx {
            Self::attach_members(&mut tx, tenant, &mut resources).await?;
            tx.commit().await.map_err(db_err)?;
        }
        Ok(Page {
            resources,
            total_results: total,
            pushdown: Pushdown::Exact,
        })
    }

    /// [`ResourceStore::list`](crate::store::ResourceStore::list), and with `with_groups` the derived groups of every resource
    /// of an index page read by the page's own statement (`None` when the page was read
    /// another way: the caller asks [`ResourceStore::groups_of_many`](crate::store::ResourceStore::groups_of_many)).
    pub(super) async fn list_page(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
        with_groups: bool,
    ) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
        let mut params = dialect::params();
        let t = params.text(tenant.as_str());
        let ty = params.text(rt.name());
        let filter = match &query.filter {
            // The engine's compiler: the same validation, so errors do not depend on the
            // backend.
            Some(f) => translate(&Pg, rt, compile(rt, f)?.root(), &mut params),
            None => crate::store::sql::Where::all(),
        };
        let (cond, exact, all) = (
            filter.render::<Pg>(),
            filter.is_exact(),
            filter.selects_all(),
        );
        let where_sql = format!("r.tenant = {t} AND r.resource_type = {ty} AND ({cond})");
        if let (Paging::Keyset(after), true) = (&query.paging, exact) {
            if let Some(walk) = keyset_walk(rt, query.sort.as_ref()) {
                let page = self
                    .keyset_list(
                        tenant,
                        rt,
                        query,
                        &where_sql,
                        &params,
                        &walk,
                        after.as_ref(),
                    )
                    .await?;
                return Ok((page, None));
            }
        }
        if let (Paging::Index, true, Some(spec)) = (&query.paging, exact, query.sort.as_ref()) {
            if let Some(path) = keyed_sort(rt, spec) {
                let mut tx = self.begin_snapshot().await?;
                if sort_keys::usable(&mut tx, tenant.as_str(), rt).await? {
                    let mut page =
                        Self::keyed_list(&mut tx, rt, query, spec, &path, all, &where_sql, &params)
                            .await?;
                    if query.include_members {
                        Self::attach_members(&mut tx, tenant, &mut page.resources).await?;
                    }
                    tx.commit().await.map_err(db_err)?;
                    return Ok((page, None));
                }
                tx.commit().await.map_err(db_err)?;
            }
        }
        // An always-true filter (or none): the maintained count, not a count of the rows.
        let count_sql = if all {
            format!(
                "SELECT COALESCE((SELECT n FROM scimkit_type_counts WHERE tenant = {t} \
                 AND resource_type = {ty}), 0) AS n"
            )
        } else {
            format!("SELECT count(*) AS n FROM scimkit_resources r WHERE {where_sql}")
        };
        let mut page_params = params.clone();
        let order = match &query.sort {
            None => Some("r.ord".to_owned()),
            Some(spec) if exact => dialect::order_by(rt, spec, &mut page_params),
            Some(_) => None,
        };
        let needs_members =
            query.include_members || (!(exact && order.is_some()) && query.reads_members());
        // One statement is one snapshot; a second query for members needs a transaction.
        let mut tx = if needs_members {
            Some(self.begin_snapshot().await?)
        } else {
            None
        };
        let (mut resources, total, pushdown, groups) = match order {
            // A keyset query this store cannot walk: the caller pages the candidates.
            Some(order) if exact && query.paging == Paging::Index => {
                let start = query.start_index.saturating_sub(1);
                let limit = page_params.int(crate::store::to_i64(query.count as u64));
                let offset = page_params.int(crate::store::to_i64(start as u64));
                // The count and the page together: a row with the count and no resource when
                // the page is empty; with `with_groups`, each resource's groups in a column.
                let groups_column = if with_groups { GROUPS_COLUMN } else { "" };
                let q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT t.n, p.* FROM ({count_sql}) AS t \
                     LEFT JOIN LATERAL (SELECT {RESOURCE_COLUMNS}{groups_column} \
                       FROM scimkit_resources r \
                       WHERE {where_sql} ORDER BY {order} LIMIT {limit} OFFSET {offset}) AS p \
                     ON true"
                )));
                let q = bind_all(q, &page_params.args).persistent(!params.plan_per_value);
                let rows = match tx.as_mut() {
                    Some(tx) => q.fetch_all(&mut **tx).await,
                    None => self.reads.fetch_all(q).await,
                }
                .map_err(db_err)?;
                let mut total = 0i64;
                let mut resources = Vec::with_capacity(rows.len());
                let mut groups = Vec::with_capacity(if with_groups { rows.len() } else { 0 });
                for row in &rows {
                    total = row.try_get(0).map_err(db_err)?;
                    let id: Option<String> = row.try_get(1).map_err(db_err)?;
                    if id.is_some() {
                        resources.push(resource_from_row_at(rt, row, 1)?);
                        if with_groups {
                            let g: String = row.try_get(7).map_err(db_err)?;
                            groups.push(crate::store::groups_from_json(&g)?);
                        }
                    }
                }
                (
                    resources,
                    usize::try_from(total).unwrap_or(0),
                    Pushdown::Exact,
                    with_groups.then_some(groups),
                )
            }
            _ => {
                let q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r WHERE {where_sql} \
                     ORDER BY r.ord{}",
                    crate::store::candidate_limit(query.max_candidates)
                )));
                let q = bind_all(q, &params.args).persistent(!params.plan_per_value);
                let rows = match tx.as_mut() {
                    Some(tx) => q.fetch_all(&mut **tx).await,
                    None => self.reads.fetch_all(q).await,
                }
                .map_err(db_err)?;
                let resources = rows
                    .iter()
                    .map(|row| resource_from_row(rt, row))
                    .collect::<Result<Vec<_>, _>>()?;
                let pushdown = if !exact && all {
                    Pushdown::Unsupported
                } else {
                    Pushdown::Inexact
                };
                let n = resources.len();
                (resources, n, pushdown, None)
            }
        };
        if let Some(mut tx) = tx {
            Self::attach_members(&mut tx, tenant, &mut resources).await?;
            tx.commit().await.map_err(db_err)?;
        }
        Ok((
            Page {
                resources,
                total_results: total,
                pushdown,
            },
            groups,
        ))
    }
}
