//! The schemas, tenants, requests and helpers the checks share.

#[allow(unused_imports)]
use super::*;

/// Schemas, resource types and tenants the checks use.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The default registry plus a custom `Device` resource type.
    pub registry: SchemaRegistry,
    /// The User resource type.
    pub users: Arc<ResourceDef>,
    /// The Group resource type.
    pub groups: Arc<ResourceDef>,
    /// A host-registered resource type (`Device`, with a unique `serialNumber`).
    pub devices: Arc<ResourceDef>,
    /// The tenant the checks write in.
    pub tenant: TenantId,
    /// Another tenant, which must see nothing of the first.
    pub other: TenantId,
}

/// The schema URN of the custom `Device` resource type.
pub const DEVICE_SCHEMA: &str = "urn:example:params:scim:schemas:Device";

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// The fixture.
    pub fn new() -> Self {
        let mut registry = SchemaRegistry::default();
        registry
            .register_schema(Schema {
                id: DEVICE_SCHEMA.into(),
                name: "Device".into(),
                description: "A managed device".into(),
                attributes: vec![
                    AttributeDef::string("serialNumber").required(),
                    AttributeDef::string("displayName"),
                    AttributeDef::date_time("lastSeen"),
                    AttributeDef::new("ports", crate::schema::AttributeType::Integer),
                    AttributeDef::string("tags").multi(),
                ],
            })
            .expect("device schema");
        registry
            .register_resource_type(ResourceType::new("Device", "/Devices", DEVICE_SCHEMA))
            .expect("device type");
        let users = Arc::clone(registry.user().expect("User"));
        let groups = Arc::clone(registry.group().expect("Group"));
        let devices = Arc::clone(registry.resource_type("Device").expect("Device"));
        Fixture {
            registry,
            users,
            groups,
            devices,
            tenant: TenantId::new("tenant-a").expect("tenant"),
            other: TenantId::new("tenant-b").expect("tenant"),
        }
    }
}

/// A fixed base time, so documents and feeds are reproducible.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

/// The `userName` uniqueness key (not `caseExact`, so folded).
pub fn user_name_key(user_name: &str) -> UniqueKey {
    UniqueKey::new("userName", crate::filter::fold_case_owned(user_name))
}

/// A user create request with `userName` as its only uniqueness key.
pub fn user_request(id: &str, doc: Value, now: DateTime<Utc>) -> CreateRequest {
    let unique_keys = doc
        .get("userName")
        .and_then(Value::as_str)
        .map(user_name_key)
        .into_iter()
        .collect();
    CreateRequest {
        id: ResourceId::new(id),
        doc,
        unique_keys,
        members: Vec::new(),
        unknown_members: UnknownMembers::Reject,
        now,
        actor: None,
    }
}

/// A group create request (`displayName` unique, folded, as a host may configure).
pub fn group_request(id: &str, name: &str, members: &[&str], now: DateTime<Utc>) -> CreateRequest {
    CreateRequest {
        id: ResourceId::new(id),
        doc: json!({"schemas": [GROUP_SCHEMA], "displayName": name}),
        unique_keys: vec![UniqueKey::new(
            "displayName",
            crate::filter::fold_case_owned(name),
        )],
        members: members.iter().map(|m| MemberRef::new(*m)).collect(),
        unknown_members: UnknownMembers::Reject,
        now,
        actor: None,
    }
}

/// A page of `count` resources under `filter`, sorted by `userName` ascending: the query
/// shape the store benchmarks measure.
pub fn sorted_by_user_name(filter: &str, count: usize) -> ListQuery {
    ListQuery {
        filter: Some(Filter::parse(filter).expect("a valid filter")),
        sort: Some(SortSpec {
            by: AttrPath::new("userName"),
            order: SortOrder::Ascending,
        }),
        start_index: 1,
        count,
        include_members: false,
        max_candidates: usize::MAX,
        paging: crate::store::Paging::Index,
    }
}

/// A plain user document.
pub fn simple_user(user_name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true})
}

pub(crate) fn replace_request(
    doc: Value,
    expected: Option<Version>,
    now: DateTime<Utc>,
) -> UpdateRequest {
    let unique_keys = doc
        .get("userName")
        .and_then(Value::as_str)
        .map(user_name_key)
        .into_iter()
        .collect();
    UpdateRequest {
        expected_version: expected,
        document: Some(NewDocument { doc, unique_keys }),
        members: None,
        return_members: Some(usize::MAX),
        kind: UpdateKind::Replace,
        now,
        actor: None,
    }
}

pub(crate) fn delta_request(delta: MembershipDelta, now: DateTime<Utc>) -> UpdateRequest {
    UpdateRequest {
        expected_version: None,
        document: None,
        members: Some(delta),
        return_members: Some(usize::MAX),
        kind: UpdateKind::Patch,
        now,
        actor: None,
    }
}

pub(crate) fn add(ids: &[&str]) -> MembershipDelta {
    MembershipDelta {
        add: ids.iter().map(|m| MemberRef::new(*m)).collect(),
        ..MembershipDelta::default()
    }
}

/// Answers `query` completely: the store's answer, completed with [`apply_query`] when the
/// store did not push everything down (what the service does).
pub async fn list_exact(
    store: &dyn ResourceStore,
    tenant: &TenantId,
    rt: &ResourceDef,
    query: &ListQuery,
) -> Page {
    let page = store.list(tenant, rt, query).await.expect("list");
    match page.pushdown {
        Pushdown::Exact => page,
        Pushdown::Inexact | Pushdown::Unsupported => {
            // The service asks for members when the filter reads them.
            apply_query(rt, query, page.resources).expect("apply_query")
        }
    }
}

pub(crate) fn ids(resources: &[StoredResource]) -> Vec<String> {
    resources.iter().map(|r| r.id.to_string()).collect()
}

/// The queries issue 15 measures at 100,000 users (`count=1` sorted by a multi-valued
/// attribute, and a filter on a derived attribute), named, for the SQL stores' benches.
pub fn bounded_queries() -> [(&'static str, ListQuery); 5] {
    let sort = Some(SortSpec::parse("emails.value", None).expect("a valid sort"));
    let filter = Some(Filter::parse("meta.location pr").expect("a valid filter"));
    let by =
        |path: &str, order: Option<&str>| Some(SortSpec::parse(path, order).expect("a valid sort"));
    [
        (
            "count=1 sortBy=emails.value sortOrder=descending",
            ListQuery {
                sort: by("emails.value", Some("descending")),
                count: 1,
                ..ListQuery::default()
            },
        ),
        (
            "count=1 sortBy=name.familyName startIndex=500",
            ListQuery {
                sort: by("name.familyName", None),
                start_index: 500,
                count: 1,
                ..ListQuery::default()
            },
        ),
        (
            "count=1 sortBy=title filter=meta.location pr",
            ListQuery {
                sort: by("title", None),
                filter: filter.clone(),
                count: 1,
                ..ListQuery::default()
            },
        ),
        (
            "count=1 sortBy=emails.value",
            ListQuery {
                sort,
                count: 1,
                ..ListQuery::default()
            },
        ),
        (
            "count=1 filter=meta.location pr",
            ListQuery {
                filter,
                count: 1,
                ..ListQuery::default()
            },
        ),
    ]
}

/// The keyset pages the SQL stores' benches compare (RFC 9865 cursors, issue 16): the
/// first page of `count` users sorted by `userName`, and the page of `count` after the
/// `depth`-th user in that order (its position found once, with index paging).
pub async fn cursor_queries(
    store: &dyn ResourceStore,
    tenant: &TenantId,
    users: &ResourceDef,
    depth: usize,
    count: usize,
) -> [(String, ListQuery); 2] {
    let sort = Some(SortSpec::parse("userName", None).expect("a valid sort"));
    let at = store
        .list(
            tenant,
            users,
            &ListQuery {
                sort: sort.clone(),
                start_index: depth,
                count: 1,
                ..ListQuery::default()
            },
        )
        .await
        .expect("list");
    let last = at.resources.first().expect("a user at that depth");
    let after = crate::store::keyset_of(users, sort.as_ref(), last);
    let query = |after| ListQuery {
        sort: sort.clone(),
        count,
        paging: crate::store::Paging::Keyset(after),
        ..ListQuery::default()
    };
    [
        (
            format!("cursor first page of {count} by userName"),
            query(None),
        ),
        (
            format!("cursor page of {count} at depth {depth} by userName"),
            query(Some(after)),
        ),
    ]
}
