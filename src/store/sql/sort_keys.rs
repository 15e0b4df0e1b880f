//! Precomputed sort keys for the SQL stores (RFC 7644 §3.4.2.3 sorting without computing a
//! key for every row of a tenant at query time).
//!
//! For each resource the stores keep, next to the document, one row per *sortable path* that
//! has a value in it: `(tenant, rt, path, key, ord)`, indexed in that order, so that a sorted
//! page walks the index (`ORDER BY key, ord LIMIT n`) instead of sorting the whole tenant.
//!
//! - The sortable paths of a resource type are every attribute the sorter can sort by: simple
//!   attributes (singular or multi-valued), and the simple sub-attributes of complex ones, in
//!   the core schema and in every extension; not `id`, `meta` (columns), `members` (a table)
//!   or attributes that are never returned (`password`: no key derived from a secret is kept).
//! - The key is the engine's [`sort_value`] of the document (primary value, else the first;
//!   strings folded with [`crate::filter::fold_case`] unless `caseExact`; dateTimes
//!   chronological), encoded by [`encode`] as text whose byte order is the sorter's order.
//!   Resources without a value have no row: they come after the others in both orders, by
//!   creation order, as the sorter puts them; equal keys keep creation order (the `ord`).
//! - The keys depend on the resource type's schema (which attributes, which are `caseExact`
//!   or dateTimes), which the stores do not otherwise know: [`fingerprint`] names the schema
//!   the keys were computed with, and a store uses the keys of a `(tenant, resource type)`
//!   only while they are complete for the schema the query uses; otherwise it sorts as before
//!   (computing the key per row, or leaving the sort to the service).

use async_trait::async_trait;
use serde_json::Value;

use crate::filter::{sort_value, SortOrder, SortSpec, SortValue};
use crate::schema::{AttrPath, AttributeDef, ResourceDef, Returned, SchemaRegistry};
use crate::store::sql::rows::SqlRow;
use crate::store::{BatchConnection, StoreError};

/// Bumped whenever [`encode`] or the choice of paths changes: keys computed under another
/// version are not used.
const KEY_VERSION: u32 = 1;

/// The canonical name of the sortable path `spec.by` resolves to in `rt`, `None` when it has
/// no precomputed key (not an attribute of `rt`, `id`, `meta.*`, `members`, a complex
/// attribute without a simple `value`, or an attribute never returned).
pub(crate) fn key_path(rt: &ResourceDef, by: &AttrPath) -> Option<String> {
    let r = rt.resolve(by)?;
    if r.extension.is_none() && matches!(r.attr.name.as_str(), "id" | "meta" | "members") {
        return None;
    }
    if r.attr.returned == Returned::Never {
        return None;
    }
    let mut sub: Option<&AttributeDef> = r.sub;
    let target = r.sub.unwrap_or(r.attr);
    if target.is_complex() {
        let v = target.sub_attribute("value")?;
        if v.is_complex() || sub.is_some() {
            return None;
        }
        sub = Some(v);
    }
    if sub.is_some_and(|s| s.returned == Returned::Never || s.is_complex()) {
        return None;
    }
    Some(format!(
        "{}|{}|{}",
        r.extension.unwrap_or(""),
        r.attr.name,
        sub.map(|s| s.name.as_str()).unwrap_or("")
    ))
}

/// Every sortable path of `rt`, as `(canonical name, spec)`, in schema order.
pub(crate) fn sortable_paths(rt: &ResourceDef) -> Vec<(String, SortSpec)> {
    let mut out: Vec<(String, SortSpec)> = Vec::new();
    let mut schemas: Vec<(Option<&str>, &[AttributeDef])> =
        vec![(None, rt.core().attributes.as_slice())];
    for (s, _) in rt.extensions() {
        schemas.push((Some(s.id.as_str()), s.attributes.as_slice()));
    }
    for (urn, attrs) in schemas {
        for a in attrs {
            let mut candidates = vec![None];
            if a.is_complex() {
                candidates = a
                    .sub_attributes
                    .iter()
                    .map(|s| Some(s.name.clone()))
                    .collect();
            }
            for sub in candidates {
                let by = AttrPath {
                    urn: urn.map(str::to_owned),
                    name: a.name.clone(),
                    sub_attr: sub,
                };
                if let Some(name) = key_path(rt, &by) {
                    if !out.iter().any(|(n, _)| *n == name) {
                        out.push((
                            name,
                            SortSpec {
                                by,
                                order: SortOrder::Ascending,
                            },
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The keys of `doc`: `(path, key)` for every sortable path of `rt` with a value in it.
pub(crate) fn keys_of(
    paths: &[(String, SortSpec)],
    rt: &ResourceDef,
    doc: &Value,
) -> Vec<(String, String)> {
    paths
        .iter()
        .filter_map(|(name, spec)| sort_value(rt, spec, doc).map(|v| (name.clone(), encode(&v))))
        .collect()
}

/// Names the schema the keys of `rt` are computed with: the sortable paths with what decides
/// their keys (type, `caseExact`), and the key encoding's version. A hex FNV-1a hash.
pub(crate) fn fingerprint(rt: &ResourceDef) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&KEY_VERSION.to_string());
    for (name, spec) in sortable_paths(rt) {
        feed(&name);
        if let Some(r) = rt.resolve(&spec.by) {
            let mut d = r.target();
            if d.is_complex() {
                d = d.sub_attribute("value").unwrap_or(d);
            }
            feed(&format!("{:?}{}", d.ty, d.case_exact));
        }
    }
    format!("{h:016x}")
}

/// Magnitude beyond which an integer may not be exact as an `f64`.
const EXACT_F64: i128 = 1 << 53;

/// A sort value as text whose byte order (SQLite `BINARY`, PostgreSQL `COLLATE "C"`) is the
/// sorter's order ([`SortValue::compare`]): a rank character (booleans, numbers, dateTimes,
/// strings, then other JSON values by type), then the value:
/// - a boolean `0`/`1`;
/// - a number as the 16 hex digits of its `f64` bits, mapped so that unsigned order is
///   numeric order, followed for an integer beyond 2^53 by its exact value (32 hex digits,
///   offset), so that integers compare exactly as the sorter compares them;
/// - a dateTime as its chronological key ([`crate::store::sqlite`]'s `date_key` format:
///   UTC, fixed width);
/// - a string as itself (already folded unless `caseExact`): UTF-8 byte order is code point
///   order, the order the sorter compares strings in.
pub(crate) fn encode(v: &SortValue) -> String {
    match v {
        SortValue::Bool(b) => format!("1{}", u8::from(*b)),
        SortValue::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let bits = f.to_bits();
            let ordered = if f.is_sign_negative() {
                !bits
            } else {
                bits | (1 << 63)
            };
            let int = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from));
            match int {
                Some(i) if !(-EXACT_F64..=EXACT_F64).contains(&i) => {
                    // Offset so that the two's-complement value orders as unsigned.
                    let u = (i as u128) ^ (1u128 << 127);
                    format!("2{ordered:016x}{u:032x}")
                }
                _ => format!("2{ordered:016x}"),
            }
        }
        SortValue::DateTime(d) => format!("3{}", date_key(d)),
        SortValue::String(s) => format!("4{s}"),
        SortValue::Other(r) => format!("{}", 5 + u32::from(*r)),
    }
}

/// A dateTime's chronological key: UTC, fixed width, so that text order is time order.
fn date_key(d: &chrono::DateTime<chrono::FixedOffset>) -> String {
    d.with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Keeping the keys: the logic once, the statements per dialect

/// One resource being re-keyed by [`rebuild`]: its row position, id and document.
pub(crate) struct Stored {
    pub(crate) ord: i64,
    /// Read by the PostgreSQL store, which writes keys by id.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) id: String,
    pub(crate) doc: Value,
}

impl Stored {
    /// The resource of a `SELECT ord, id, doc` (doc as JSON text).
    pub(crate) fn from_row(row: &impl SqlRow) -> Result<Self, StoreError> {
        Ok(Stored {
            ord: row.int("ord")?,
            id: row.text("id")?,
            doc: row.json("doc")?,
        })
    }
}

/// The statements that keep the keys of a SQL store, implemented by each dialect's
/// connection type. What is done with them (the completeness marker kept honest on every
/// write, the rebuild in batches, the backfill of a migration) is written once below.
#[async_trait]
pub(crate) trait SortKeyStatements: BatchConnection {
    /// How a write names the resources it wrote (a row position, a list of ids).
    type Written: ?Sized + Sync;

    /// Resources re-keyed per transaction by [`rebuild`].
    const BATCH: i64;

    /// The schema fingerprint the keys of `(tenant, rt)` are complete for, if any.
    async fn marker(&mut self, tenant: &str, rt: &str) -> Result<Option<String>, StoreError>;

    /// Marks the keys of `(tenant, rt)` complete for the schema with fingerprint `fp`.
    async fn mark(&mut self, tenant: &str, rt: &str, fp: &str) -> Result<(), StoreError>;

    /// Drops the completeness mark of `(tenant, rt)`: queries fall back to the computed sort.
    async fn unmark(&mut self, tenant: &str, rt: &str) -> Result<(), StoreError>;

    /// True when `(tenant, rt)` holds a resource other than `written`.
    async fn has_others(
        &mut self,
        tenant: &str,
        rt: &str,
        written: &Self::Written,
    ) -> Result<bool, StoreError>;

    /// Up to `n` resources of `(tenant, rt)` after row position `after`, in row order.
    async fn batch(
        &mut self,
        tenant: &str,
        rt: &str,
        after: i64,
        n: i64,
    ) -> Result<Vec<Stored>, StoreError>;

    /// Replaces the keys of `resources` with those of their documents.
    async fn rekey(
        &mut self,
        tenant: &str,
        rt: &ResourceDef,
        resources: &[Stored],
    ) -> Result<(), StoreError>;

    /// Every `(tenant, resource type)` that has resources.
    async fn resource_types(&mut self) -> Result<Vec<(String, String)>, StoreError>;
}

/// Keeps the `(tenant, rt)` marker honest before the keys of `written` are replaced: a
/// marker for another schema is dropped (the keys are now mixed); a first resource of its
/// `(tenant, rt)` starts a complete set.
pub(crate) async fn keep_marker<C: SortKeyStatements>(
    conn: &mut C,
    tenant: &str,
    rt: &ResourceDef,
    written: &C::Written,
) -> Result<(), StoreError> {
    let fp = fingerprint(rt);
    match conn.marker(tenant, rt.name()).await? {
        Some(f) if f == fp => Ok(()),
        Some(_) => conn.unmark(tenant, rt.name()).await,
        None if conn.has_others(tenant, rt.name(), written).await? => Ok(()),
        None => conn.mark(tenant, rt.name(), &fp).await,
    }
}

/// True when the keys of `(tenant, rt)` are complete for `rt`'s schema.
pub(crate) async fn usable<C: SortKeyStatements>(
    conn: &mut C,
    tenant: &str,
    rt: &ResourceDef,
) -> Result<bool, StoreError> {
    Ok(conn
        .marker(tenant, rt.name())
        .await?
        .is_some_and(|f| f == fingerprint(rt)))
}

/// Recomputes every key of `(tenant, rt)` for `rt`'s schema, [`SortKeyStatements::BATCH`]
/// resources per transaction, then marks the set complete. Idempotent; writes running meanwhile write
/// their own keys with the same schema.
pub(crate) async fn rebuild<C: SortKeyStatements>(
    conn: &mut C,
    tenant: &str,
    rt: &ResourceDef,
) -> Result<(), StoreError> {
    let fp = fingerprint(rt);
    let mut after = i64::MIN;
    loop {
        let mut tx = conn.begin_batch().await?;
        if after == i64::MIN {
            tx.unmark(tenant, rt.name()).await?;
        }
        let resources = tx.batch(tenant, rt.name(), after, C::BATCH).await?;
        let Some(last) = resources.last() else {
            tx.mark(tenant, rt.name(), &fp).await?;
            return tx.commit().await.map_err(StoreError::backend);
        };
        after = last.ord;
        tx.rekey(tenant, rt, &resources).await?;
        tx.commit().await.map_err(StoreError::backend)?;
    }
}

/// A migration's backfill: keys for the resources stored before it, computed with the
/// built-in schemas (a `(tenant, rt)` whose registry differs keeps sorting as before until
/// the store's `rebuild_sort_keys` runs for it).
pub(crate) async fn backfill<C: SortKeyStatements>(conn: &mut C) -> Result<(), StoreError> {
    let registry = SchemaRegistry::default();
    for (tenant, rt) in conn.resource_types().await? {
        if let Some(def) = registry.resource_type(&rt) {
            rebuild(conn, &tenant, def).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Number};

    fn num(v: Value) -> String {
        let Value::Number(n) = v else { panic!() };
        encode(&SortValue::Number(n))
    }

    #[test]
    fn numbers_encode_in_numeric_order() {
        let vals = [
            json!(-1e300),
            json!(-9_007_199_254_740_993_i64),
            json!(-3.5),
            json!(-1),
            json!(0),
            json!(0.25),
            json!(1),
            json!(2),
            json!(10),
            json!(9_007_199_254_740_992_i64),
            json!(9_007_199_254_740_993_i64),
            json!(u64::MAX),
            json!(1e300),
        ];
        let keys: Vec<String> = vals.iter().cloned().map(num).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{w:?}");
        }
        assert_eq!(
            num(json!(3)),
            encode(&SortValue::Number(Number::from_f64(3.0).unwrap()))
        );
    }

    #[test]
    fn ranks_order_like_the_sorter() {
        let a = encode(&SortValue::Bool(true));
        let b = num(json!(-5));
        let c = encode(&SortValue::String(String::new()));
        let d = encode(&SortValue::Other(0));
        assert!(a < b && b < c && c < d);
        assert!(encode(&SortValue::Bool(false)) < a);
        assert!(encode(&SortValue::String("é".into())) > encode(&SortValue::String("z".into())));
    }

    #[test]
    fn paths_cover_multi_valued_and_extensions() {
        let reg = SchemaRegistry::default();
        let users = reg.user().unwrap();
        let paths = sortable_paths(users);
        let names: Vec<&str> = paths.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"|emails|value"), "{names:?}");
        assert!(names.contains(&"|name|familyName"), "{names:?}");
        assert!(names
            .iter()
            .any(|n| n.ends_with("enterprise:2.0:User|manager|value")));
        assert!(!names.iter().any(|n| n.contains("password")));
        assert!(!names
            .iter()
            .any(|n| n.starts_with("|meta") || n.starts_with("|id")));
        // `emails` sorts by `emails.value`: the same key.
        assert_eq!(
            key_path(users, &AttrPath::parse("emails").unwrap()).as_deref(),
            Some("|emails|value")
        );
        assert_eq!(
            key_path(users, &AttrPath::parse("EMAILS.Value").unwrap()).as_deref(),
            Some("|emails|value")
        );
        let doc = json!({"emails": [{"value": "B@x"}, {"value": "a@x", "primary": true}]});
        let keys = keys_of(&paths, users, &doc);
        assert!(
            keys.contains(&("|emails|value".to_owned(), "4a@x".to_owned())),
            "{keys:?}"
        );
        assert_eq!(fingerprint(users), fingerprint(users));
        assert_ne!(fingerprint(users), fingerprint(reg.group().unwrap()));
    }
}
