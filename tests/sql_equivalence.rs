//! Issue 14: the SQL stores return exactly what the engine's evaluator returns.
//!
//! A property test generates a small population of users, groups and devices (non-ASCII
//! text whose case folding is not simple: final sigma, `ß`/`ẞ`, the Kelvin sign, ligatures,
//! the dotted and dotless `I`; empty strings, empty arrays and absent attributes;
//! multi-valued emails and phone numbers with and without `primary`; booleans; dates in
//! several notations; integers and decimals; enterprise extension attributes; group
//! members, nested groups included) and filters over it (every operator, `and`/`or`/`not`,
//! value paths, `meta` dates, `pr` on empty values, unknown attributes and values of the
//! wrong type). For each case the population is written to a fresh tenant of the store
//! under test, and every filter must select exactly the resources for which the compiled
//! filter (the evaluator) is true over the documents the store returns; sorted lists must
//! be in the evaluator's order.
//!
//! The stores: SQLite on a real file in a temporary directory, and PostgreSQL on a real
//! server (`scimkit::store::testing::postgres`: `SCIMKIT_POSTGRES_URL`, else a throw-away
//! cluster; the test skips without one unless `SCIMKIT_REQUIRE_POSTGRES=1`).
//!
//! The fixed corpora (`scimkit::store::testing::{check_filter_equivalence,
//! check_filter_regressions}`) stay in the store contract suites; what this test found is
//! recorded there.
#![cfg(any(feature = "sqlite", feature = "postgres"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestError, TestRunner};
use serde_json::{json, Value};

use scimkit::filter::{compare_resources, SortOrder, SortSpec};
use scimkit::resource::{MemberRef, UnknownMembers};
use scimkit::schema::{GROUP_SCHEMA, USER_SCHEMA};
use scimkit::store::testing::{base_time, Fixture, DEVICE_SCHEMA};
use scimkit::store::{
    apply_query, view_document, CreateRequest, ListQuery, Page, Pushdown, ResourceStore,
    StoredResource,
};
use scimkit::{
    filter::Filter, resource::ResourceId, schema::AttrPath, schema::ResourceDef, tenant::TenantId,
};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Pieces of text whose case folding is not one-to-one or not ASCII: generated values are
/// made of them, so that folded comparisons meet every hard case, and generated filter
/// values share pieces with the documents, so that comparisons match often.
const ATOMS: &[&str] = &[
    "a",
    "B",
    "z",
    "0",
    "7",
    " ",
    "@",
    "-",
    "%",
    "_",
    "'",
    "\\",
    "straße",
    "STRASSE",
    "ẞ",
    "ss",
    "ß",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "Σ",
    "σ",
    "ς",
    "\u{212A}", // KELVIN SIGN
    "k",
    "K",
    "\u{FB01}", // LATIN SMALL LIGATURE FI
    "FI",
    "fi",
    "\u{FB00}", // LATIN SMALL LIGATURE FF
    "İ",
    "i\u{307}",
    "ı",
    "I",
    "i",
    "é",
    "É",
    "e\u{301}",
    "\u{2126}", // OHM SIGN
    "ω",
    "Ω",
    "ǅ",
    "ǆ",
    "Ǆ",
    "µ",
    "μ",
    "ŉ",
    "ΐ",
    "ᾳ",
    "ᾼ",
    "Ⅻ",
    "ⅻ",
    "Ａ",
    "ａ",
    "🦀",
    "ǰ",
];

/// A text of up to `max` atoms (possibly empty).
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ATOMS), 0..=max).prop_map(|v| v.concat())
}

/// A non-empty text.
fn text1(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ATOMS), 1..=max).prop_map(|v| v.concat())
}

/// An optional attribute value: absent, `null`, or generated.
fn maybe(s: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        6 => s.prop_map(Some),
    ]
}

fn text_value(max: usize) -> impl Strategy<Value = Value> {
    text(max).prop_map(Value::String)
}

fn set(doc: &mut Value, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        doc[key] = v;
    }
}

/// A multi-valued complex attribute (emails, phone numbers): absent, `null`, `[]`, or
/// elements with optional `value`, `type` and `primary`.
fn multi(types: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    let element = (
        maybe(text_value(3)),
        maybe(prop::sample::select(types).prop_map(|t| json!(t))),
        maybe(any::<bool>().prop_map(Value::Bool)),
    )
        .prop_map(|(value, ty, primary)| {
            let mut e = json!({});
            set(&mut e, "value", value);
            set(&mut e, "type", ty);
            set(&mut e, "primary", primary);
            e
        });
    maybe(prop::collection::vec(element, 0..4).prop_map(Value::Array))
}

/// Seconds and milliseconds after [`base_time`]: few distinct values, so that dates tie.
fn instant() -> impl Strategy<Value = (i64, i64)> {
    (0i64..5, prop_oneof![3 => Just(0i64), 1 => 0i64..1000])
}

fn at((secs, millis): (i64, i64)) -> DateTime<Utc> {
    base_time() + Duration::seconds(secs) + Duration::milliseconds(millis)
}

/// A dateTime text for the instant, in one of several notations.
fn date_text() -> impl Strategy<Value = String> {
    (-1i64..7, 0u8..6).prop_map(|(secs, form)| {
        let t = base_time() + Duration::seconds(secs);
        match form {
            0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            1 => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            2 => (t + Duration::milliseconds(500))
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            3 => t
                .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
                .to_rfc3339(),
            4 => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            _ => t
                .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600 + 1800).unwrap())
                .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                .to_string(),
        }
    })
}

#[derive(Debug, Clone)]
struct User {
    doc: Value,
    created: (i64, i64),
}

fn user() -> impl Strategy<Value = User> {
    let core = (
        text1(3),
        maybe(text_value(2)),
        maybe(text_value(3)),
        maybe(text_value(2)),
        maybe(text_value(3)),
        maybe(any::<bool>().prop_map(Value::Bool)),
        maybe(
            (
                maybe(text_value(2)),
                maybe(text_value(2)),
                maybe(text_value(3)),
            )
                .prop_map(|(g, f, fm)| {
                    let mut n = json!({});
                    set(&mut n, "givenName", g);
                    set(&mut n, "familyName", f);
                    set(&mut n, "formatted", fm);
                    n
                }),
        ),
    );
    let more = (
        multi(&["work", "home", "other", "WORK"]),
        multi(&["work", "mobile"]),
        maybe(
            (
                maybe(text_value(2)),
                maybe(prop::sample::select(&["0042", "42", "7", ""][..]).prop_map(|s| json!(s))),
                maybe(maybe(text_value(1)).prop_map(|v| {
                    let mut m = json!({});
                    set(&mut m, "value", v);
                    m
                })),
            )
                .prop_map(|(dept, num, manager)| {
                    let mut e = json!({});
                    set(&mut e, "department", dept);
                    set(&mut e, "employeeNumber", num);
                    set(&mut e, "manager", manager);
                    e
                }),
        ),
        instant(),
        maybe(prop::sample::select(&["en-US", "de-DE", ""][..]).prop_map(|s| json!(s))),
    );
    (core, more).prop_map(
        |(
            (user_name, external_id, display, nick, title, active, name),
            (emails, phones, enterprise, created, locale),
        )| {
            let mut doc = json!({"schemas": [USER_SCHEMA], "userName": user_name});
            set(&mut doc, "externalId", external_id);
            set(&mut doc, "displayName", display);
            set(&mut doc, "nickName", nick);
            set(&mut doc, "title", title);
            set(&mut doc, "active", active);
            set(&mut doc, "name", name);
            set(&mut doc, "emails", emails);
            set(&mut doc, "phoneNumbers", phones);
            set(&mut doc, "locale", locale);
            if let Some(e) = enterprise {
                doc["schemas"].as_array_mut().unwrap().push(json!(ENT));
                doc[ENT] = e;
            }
            User { doc, created }
        },
    )
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    external_id: Option<Value>,
    /// Indexes into the users (modulo their number).
    users: Vec<usize>,
    /// Whether the group contains the previous group.
    nested: bool,
    created: (i64, i64),
}

fn group() -> impl Strategy<Value = Group> {
    (
        text(3),
        maybe(text_value(2)),
        prop::collection::btree_set(0usize..16, 0..5),
        any::<bool>(),
        instant(),
    )
        .prop_map(|(name, external_id, users, nested, created)| Group {
            name,
            external_id,
            users: users.into_iter().collect(),
            nested,
            created,
        })
}

#[derive(Debug, Clone)]
struct Device {
    doc: Value,
    created: (i64, i64),
}

fn device() -> impl Strategy<Value = Device> {
    (
        text1(2),
        maybe(text_value(2)),
        maybe(prop_oneof![
            date_text().prop_map(Value::String),
            Just(json!("soon")),
            Just(json!(""))
        ]),
        maybe(prop_oneof![
            (-3i64..5).prop_map(|n| json!(n)),
            Just(json!(2.0)),
            Just(json!(2.5)),
            Just(json!(-0.5)),
            Just(json!(9_007_199_254_740_993u64)),
        ]),
        maybe(prop::collection::vec(text_value(2), 0..3).prop_map(Value::Array)),
        instant(),
    )
        .prop_map(|(serial, display, last_seen, ports, tags, created)| {
            let mut doc = json!({"schemas": [DEVICE_SCHEMA], "serialNumber": serial});
            set(&mut doc, "displayName", display);
            set(&mut doc, "lastSeen", last_seen);
            set(&mut doc, "ports", ports);
            set(&mut doc, "tags", tags);
            Device { doc, created }
        })
}

// ---------------------------------------------------------------------------------------
// Filters.

const STRING_OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
const ORDER_OPS: &[&str] = &["eq", "ne", "gt", "ge", "lt", "le"];

fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A comparison value for a string attribute: mostly text made of the same atoms as the
/// documents, sometimes `null`, a number or a boolean.
fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => text(2).prop_map(|t| lit(&t)),
        1 => Just("null".to_string()),
        1 => Just("7".to_string()),
        1 => Just("true".to_string()),
    ]
}

fn string_leaf(attrs: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(attrs),
        prop::sample::select(STRING_OPS),
        string_value(),
    )
        .prop_map(|(a, op, v)| format!("{a} {op} {v}"))
}

fn present_leaf(attrs: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(attrs).prop_map(|a| format!("{a} pr"))
}

fn bool_leaf(attrs: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(attrs),
        prop::sample::select(&["eq", "ne"][..]),
        prop::sample::select(&["true", "false", "\"true\"", "null"][..]),
    )
        .prop_map(|(a, op, v)| format!("{a} {op} {v}"))
}

fn date_leaf(attrs: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(attrs),
        prop::sample::select(ORDER_OPS),
        date_text(),
    )
        .prop_map(|(a, op, v)| format!("{a} {op} {}", lit(&v)))
}

/// `and`, `or` and `not` over `leaf`, up to three levels.
fn combine(leaf: BoxedStrategy<String>) -> BoxedStrategy<String> {
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
    .boxed()
}

/// A value path over a multi-valued complex attribute with `value`, `type` and `primary`.
fn value_path(attr: &'static str, types: &'static [&'static str]) -> BoxedStrategy<String> {
    let inner = prop_oneof![
        string_leaf(&["value", "type"]),
        (
            prop::sample::select(&["eq", "ne"][..]),
            prop::sample::select(types)
        )
            .prop_map(|(op, t)| format!("type {op} {}", lit(t))),
        bool_leaf(&["primary"]),
        present_leaf(&["value", "type", "primary"]),
    ]
    .boxed();
    combine(inner)
        .prop_map(move |f| format!("{attr}[{f}]"))
        .boxed()
}

const USER_STRINGS: &[&str] = &[
    "userName",
    "displayName",
    "nickName",
    "title",
    "externalId",
    "locale",
    "name.givenName",
    "name.familyName",
    "name.formatted",
    "emails",
    "emails.value",
    "emails.type",
    "phoneNumbers.value",
    "phoneNumbers.type",
    "id",
    "meta.resourceType",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "unknownAttribute",
];

const USER_PRESENT: &[&str] = &[
    "userName",
    "displayName",
    "nickName",
    "title",
    "externalId",
    "active",
    "locale",
    "name",
    "name.givenName",
    "name.formatted",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "phoneNumbers",
    "phoneNumbers.value",
    "groups",
    "meta.created",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "unknownAttribute",
];

/// `meta.version`, the view's ETag text (`W/"<n>"`), compared with every string operator.
fn version_leaf() -> impl Strategy<Value = String> {
    (
        prop::sample::select(STRING_OPS),
        0u32..4,
        prop::sample::select(&["W/\"", "w/\"", ""][..]),
    )
        .prop_map(|(op, n, prefix)| format!("meta.version {op} {}", lit(&format!("{prefix}{n}\""))))
}

fn user_filter() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        8 => string_leaf(USER_STRINGS),
        2 => bool_leaf(&["active", "emails.primary"]),
        2 => date_leaf(&["meta.created", "meta.lastModified"]),
        3 => present_leaf(USER_PRESENT),
        2 => value_path("emails", &["work", "home", "other"]),
        1 => value_path("phoneNumbers", &["work", "mobile"]),
        1 => version_leaf(),
    ]
    .boxed();
    combine(leaf)
}

fn group_filter() -> BoxedStrategy<String> {
    let ids = (0usize..18).prop_map(|i| {
        if i >= 16 {
            format!("g{:02}", i - 16)
        } else {
            format!("u{i:02}")
        }
    });
    let id_leaf = (
        prop::sample::select(&["members.value", "members", "id"][..]),
        prop::sample::select(STRING_OPS),
        ids.clone(),
        any::<bool>(),
    )
        .prop_map(|(a, op, id, upper)| {
            let id = if upper { id.to_uppercase() } else { id };
            format!("{a} {op} {}", lit(&id))
        });
    let member_path = (
        prop::sample::select(&["eq", "ne", "sw"][..]),
        ids,
        prop::sample::select(&["User", "Group", "user"][..]),
        any::<bool>(),
    )
        .prop_map(|(op, id, ty, with_type)| {
            if with_type {
                format!("members[value {op} {} and type eq {}]", lit(&id), lit(ty))
            } else {
                format!("members[value {op} {}]", lit(&id))
            }
        });
    let leaf = prop_oneof![
        4 => string_leaf(&["displayName", "externalId", "members.type", "members.$ref", "unknownAttribute"]),
        3 => id_leaf,
        2 => member_path,
        2 => present_leaf(&["displayName", "externalId", "members", "members.value", "members.type", "members.$ref"]),
        1 => date_leaf(&["meta.created", "meta.lastModified"]),
        1 => version_leaf(),
    ]
    .boxed();
    combine(leaf)
}

fn device_filter() -> BoxedStrategy<String> {
    let number =
        prop::sample::select(&["2", "2.0", "2.5", "-1", "0", "9007199254740993", "\"2\""][..]);
    let leaf = prop_oneof![
        3 => string_leaf(&["serialNumber", "displayName", "tags"]),
        3 => (prop::sample::select(ORDER_OPS), number).prop_map(|(op, n)| format!("ports {op} {n}")),
        3 => date_leaf(&["lastSeen", "meta.created"]),
        2 => present_leaf(&["serialNumber", "displayName", "lastSeen", "ports", "tags"]),
    ]
    .boxed();
    combine(leaf)
}

/// One generated case: a population and filters over each resource type.
#[derive(Debug, Clone)]
struct Case {
    users: Vec<User>,
    groups: Vec<Group>,
    devices: Vec<Device>,
    user_filters: Vec<String>,
    group_filters: Vec<String>,
    device_filters: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(user(), 1..16),
        prop::collection::vec(group(), 0..5),
        prop::collection::vec(device(), 0..6),
        prop::collection::vec(user_filter(), 8..24),
        prop::collection::vec(group_filter(), 0..8),
        prop::collection::vec(device_filter(), 0..8),
    )
        .prop_map(
            |(users, groups, devices, user_filters, group_filters, device_filters)| Case {
                users,
                groups,
                devices,
                user_filters,
                group_filters,
                device_filters,
            },
        )
}

// ---------------------------------------------------------------------------------------
// The check.

fn request(id: String, doc: Value, members: Vec<MemberRef>, now: DateTime<Utc>) -> CreateRequest {
    CreateRequest {
        id: ResourceId::new(id),
        doc,
        unique_keys: Vec::new(),
        members,
        unknown_members: UnknownMembers::Reject,
        now,
        actor: None,
    }
}

/// Writes the case's population to a new tenant.
async fn load(store: &dyn ResourceStore, fx: &Fixture, tenant: &TenantId, case: &Case) {
    for (i, u) in case.users.iter().enumerate() {
        store
            .create(
                tenant,
                &fx.users,
                request(format!("u{i:02}"), u.doc.clone(), Vec::new(), at(u.created)),
            )
            .await
            .expect("create user");
    }
    for (i, g) in case.groups.iter().enumerate() {
        let mut members: Vec<MemberRef> = g
            .users
            .iter()
            .map(|u| u % case.users.len())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|u| MemberRef::new(format!("u{u:02}")))
            .collect();
        if g.nested && i > 0 {
            members.push(MemberRef::new(format!("g{:02}", i - 1)));
        }
        let mut doc = json!({"schemas": [GROUP_SCHEMA], "displayName": g.name});
        set(&mut doc, "externalId", g.external_id.clone());
        store
            .create(
                tenant,
                &fx.groups,
                request(format!("g{i:02}"), doc, members, at(g.created)),
            )
            .await
            .expect("create group");
    }
    for (i, d) in case.devices.iter().enumerate() {
        store
            .create(
                tenant,
                &fx.devices,
                request(format!("d{i:02}"), d.doc.clone(), Vec::new(), at(d.created)),
            )
            .await
            .expect("create device");
    }
}

/// Sort paths compared per resource type.
fn sorts(rt: &ResourceDef) -> &'static [&'static str] {
    match rt.name() {
        "User" => &[
            "userName",
            "title",
            "name.familyName",
            "emails.value",
            "emails",
            "active",
            "meta.created",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ],
        "Group" => &["displayName", "externalId", "meta.lastModified"],
        _ => &["ports", "lastSeen", "tags", "serialNumber"],
    }
}

/// The store's answer to `query`, completed with [`apply_query`] when the store did not
/// push everything down (what the service does); errors as text.
async fn answer(
    store: &dyn ResourceStore,
    tenant: &TenantId,
    rt: &ResourceDef,
    query: &ListQuery,
) -> Result<(Page, Pushdown), String> {
    let page = store
        .list(tenant, rt, query)
        .await
        .map_err(|e| format!("the store failed: {e:?}"))?;
    let pushdown = page.pushdown;
    let page = match pushdown {
        Pushdown::Exact => page,
        Pushdown::Inexact | Pushdown::Unsupported => apply_query(rt, query, page.resources)
            .map_err(|e| format!("apply_query failed: {e:?}"))?,
    };
    Ok((page, pushdown))
}

fn ids(resources: &[StoredResource]) -> BTreeSet<String> {
    resources.iter().map(|r| r.id.to_string()).collect()
}

/// What the runs exercised, printed at the end: a generator that never produces a match,
/// or only filters the stores leave to the evaluator, would test nothing.
#[derive(Debug, Default)]
struct Stats {
    filters: AtomicUsize,
    /// Selecting some but not all resources.
    discriminating: AtomicUsize,
    /// Answered [`scimkit::store::Pushdown::Exact`] by the store.
    exact: AtomicUsize,
    invalid: AtomicUsize,
}

fn stats() -> &'static Stats {
    static STATS: std::sync::OnceLock<Stats> = std::sync::OnceLock::new();
    STATS.get_or_init(Stats::default)
}

/// Checks every filter of `case` (and a sort per filter) on `store`, in a new tenant.
async fn check_case(store: &dyn ResourceStore, fx: &Fixture, case: &Case) -> Result<(), String> {
    static TENANTS: AtomicUsize = AtomicUsize::new(0);
    let tenant = TenantId::new(format!(
        "prop-{}",
        TENANTS.fetch_add(1, AtomicOrdering::Relaxed)
    ))
    .unwrap();
    load(store, fx, &tenant, case).await;
    for (rt, filters) in [
        (&fx.users, &case.user_filters),
        (&fx.groups, &case.group_filters),
        (&fx.devices, &case.device_filters),
    ] {
        let (everything, _) = answer(
            store,
            &tenant,
            rt,
            &ListQuery {
                include_members: true,
                ..ListQuery::default()
            },
        )
        .await
        .map_err(|e| format!("{} everything: {e}", rt.name()))?;
        let views: Vec<(String, Value)> = everything
            .resources
            .iter()
            .map(|r| (r.id.to_string(), view_document(r)))
            .collect();
        let sort_paths = sorts(rt);
        for (n, text) in filters.iter().enumerate() {
            let filter =
                Filter::parse(text).map_err(|e| format!("`{text}` does not parse: {e}"))?;
            stats().filters.fetch_add(1, AtomicOrdering::Relaxed);
            let Ok(compiled) = filter.compile(rt, false) else {
                stats().invalid.fetch_add(1, AtomicOrdering::Relaxed);
                // invalidFilter for the resource type (`co` on a date): the service refuses it
                // before asking the store.
                continue;
            };
            let expected: BTreeSet<String> = views
                .iter()
                .filter(|(_, v)| compiled.matches(v))
                .map(|(id, _)| id.clone())
                .collect();
            if !expected.is_empty() && expected.len() < views.len() {
                stats().discriminating.fetch_add(1, AtomicOrdering::Relaxed);
            }
            let by = sort_paths[n % sort_paths.len()];
            let spec = SortSpec {
                by: AttrPath::parse(by).unwrap(),
                order: if n % 2 == 0 {
                    SortOrder::Ascending
                } else {
                    SortOrder::Descending
                },
            };
            for sort in [None, Some(spec)] {
                let query = ListQuery {
                    filter: Some(filter.clone()),
                    sort: sort.clone(),
                    include_members: rt.name() == "Group",
                    ..ListQuery::default()
                };
                let (page, pushdown) = answer(store, &tenant, rt, &query)
                    .await
                    .map_err(|e| format!("{} `{text}` (sort {sort:?}): {e}", rt.name()))?;
                if sort.is_none() && pushdown == Pushdown::Exact {
                    stats().exact.fetch_add(1, AtomicOrdering::Relaxed);
                }
                let got = ids(&page.resources);
                if got != expected || page.total_results != expected.len() {
                    return Err(format!(
                        "{} filter `{text}` ({pushdown:?}): the store returned {got:?} \
                         (totalResults {}), the evaluator {expected:?}",
                        rt.name(),
                        page.total_results
                    ));
                }
                if page.resources.len() != expected.len() {
                    return Err(format!("{} `{text}`: duplicates", rt.name()));
                }
                if let Some(spec) = &sort {
                    // The evaluator's order: a stable sort of the matches in creation order
                    // (ties keep creation order, RFC 7644 leaves it open).
                    let mut want: Vec<&(String, Value)> = views
                        .iter()
                        .filter(|(id, _)| expected.contains(id))
                        .collect();
                    want.sort_by(|a, b| compare_resources(rt, spec, &a.1, &b.1));
                    let want: Vec<&str> = want.iter().map(|(id, _)| id.as_str()).collect();
                    let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
                    if got != want {
                        return Err(format!(
                            "{} `{text}` sorted by {by} {:?} ({pushdown:?}): the store's order \
                             {got:?}, the evaluator's {want:?}",
                            rt.name(),
                            spec.order,
                        ));
                    }
                    // A page is a slice of that order.
                    let paged = ListQuery {
                        start_index: 2,
                        count: 2,
                        ..query.clone()
                    };
                    let (p, _) = answer(store, &tenant, rt, &paged)
                        .await
                        .map_err(|e| format!("{} `{text}` page: {e}", rt.name()))?;
                    let got: Vec<&str> = p.resources.iter().map(|r| r.id.as_str()).collect();
                    let slice: Vec<&str> = want.iter().skip(1).take(2).copied().collect();
                    if got != slice || p.total_results != want.len() {
                        return Err(format!(
                            "{} `{text}` sorted by {by} {:?}, startIndex 2, count 2: {got:?} \
                             (totalResults {}), the evaluator's {slice:?}",
                            rt.name(),
                            spec.order,
                            p.total_results
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The number of generated cases per store (`SCIMKIT_SQL_PROPTEST_CASES` overrides it, for
/// longer runs by hand).
fn cases() -> u32 {
    std::env::var("SCIMKIT_SQL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

/// Runs the generated cases against `store` on `rt`, failures persisted beside this file
/// (`tests/sql_equivalence.proptest-regressions`) and replayed first on the next run.
fn run_cases(rt: &tokio::runtime::Runtime, store: &dyn ResourceStore) {
    let fx = Fixture::new();
    let config = ProptestConfig {
        cases: cases(),
        max_shrink_iters: 4000,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        rt.block_on(check_case(store, &fx, &case))
            .map_err(TestCaseError::fail)
    });
    eprintln!("{:?}", stats());
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => panic!("{why}\nminimal failing case: {case:#?}"),
        Err(e) => panic!("{e}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_returns_what_the_evaluator_returns() {
    use scimkit::store::sqlite::SqliteStore;
    let dir = TempDir::new();
    let rt = runtime();
    let store = rt
        .block_on(SqliteStore::open(dir.0.join("prop.db")))
        .expect("open");
    run_cases(&rt, &store);
}

/// A fresh directory under the system temp dir, removed on drop.
#[cfg(feature = "sqlite")]
struct TempDir(std::path::PathBuf);

#[cfg(feature = "sqlite")]
impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "scimkit-sqlprop-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

#[cfg(feature = "sqlite")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_returns_what_the_evaluator_returns() {
    let rt = runtime();
    let Some(store) = rt.block_on(scimkit::store::testing::postgres::fresh_store()) else {
        return;
    };
    run_cases(&rt, &store);
}
