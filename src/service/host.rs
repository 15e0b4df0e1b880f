//! Typed reads for the host: [`ScimService::users`] and [`ScimService::groups`] read a
//! tenant's Users and Groups as [`User`] and [`Group`] values, with no [`ResourceDef`]
//! plumbing, through the same store the service writes.

use serde_json::Value;

use super::ScimService;
use crate::error::{ScimError, ScimResult};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::resource::{Group, User};
use crate::schema::{AttrPath, ResourceDef};
use crate::settings::Limits;
use crate::store::{apply_query, ListQuery, MemberPage, Pushdown, StoreError, StoredResource};
use crate::tenant::TenantId;

/// The most resources one typed page holds (a larger `count` is capped to it).
pub const MAX_TYPED_PAGE: usize = 1_000;

/// One page of a typed list.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedPage<T> {
    /// The resources of this page.
    pub resources: Vec<T>,
    /// The number of matches across all pages.
    pub total_results: usize,
    /// The 1-based index of the first resource of this page.
    pub start_index: usize,
}

/// A tenant's Users, typed ([`ScimService::users`]).
#[derive(Debug, Clone)]
pub struct Users<'a> {
    reader: Reader<'a>,
}

/// A tenant's Groups, typed ([`ScimService::groups`]).
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    reader: Reader<'a>,
}

#[derive(Debug, Clone)]
struct Reader<'a> {
    service: &'a ScimService,
    tenant: TenantId,
    rt: &'static str,
}

impl ScimService {
    /// The Users of `tenant`, read as [`User`] values.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use scimkit::{store::MemoryStore, service::ScimService, auth::Tenants, tenant::TenantId};
    ///
    /// let tenants = Tenants::in_memory();
    /// let service = ScimService::builder("https://app.example.com/scim/v2",
    ///     Arc::new(MemoryStore::new()), Arc::clone(tenants.store())).build()?;
    /// let acme = TenantId::new("acme")?;
    /// assert!(service.users(&acme).by_user_name("bjensen").await?.is_none());
    /// let page = service.users(&acme).list(Some(r#"active eq true"#), 1, 100).await?;
    /// assert_eq!(page.total_results, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn users(&self, tenant: &TenantId) -> Users<'_> {
        Users {
            reader: Reader {
                service: self,
                tenant: tenant.clone(),
                rt: "User",
            },
        }
    }

    /// The Groups of `tenant`, read as [`Group`] values (without members: page through
    /// them with [`Groups::members`]).
    pub fn groups(&self, tenant: &TenantId) -> Groups<'_> {
        Groups {
            reader: Reader {
                service: self,
                tenant: tenant.clone(),
                rt: "Group",
            },
        }
    }
}

impl Users<'_> {
    /// The user with this id, if any.
    pub async fn get(&self, id: &str) -> ScimResult<Option<User>> {
        self.reader
            .get(id)
            .await?
            .as_ref()
            .map(typed_user)
            .transpose()
    }

    /// The user with this `userName` (compared case-insensitively, as the service does).
    pub async fn by_user_name(&self, user_name: &str) -> ScimResult<Option<User>> {
        self.reader
            .first_eq("userName", user_name)
            .await?
            .as_ref()
            .map(typed_user)
            .transpose()
    }

    /// The user with this `externalId`, if any (the first one, should several share it).
    pub async fn by_external_id(&self, external_id: &str) -> ScimResult<Option<User>> {
        self.reader
            .first_eq("externalId", external_id)
            .await?
            .as_ref()
            .map(typed_user)
            .transpose()
    }

    /// A page of the users matching `filter` (SCIM filter syntax; all users when `None`),
    /// from the 1-based `start_index`, at most `count` of them (capped at
    /// [`MAX_TYPED_PAGE`]). A filter the store cannot narrow is evaluated on at most the
    /// tenant's `max_resources_scanned` candidates, as for a SCIM request (400 `tooMany`
    /// beyond).
    pub async fn list(
        &self,
        filter: Option<&str>,
        start_index: usize,
        count: usize,
    ) -> ScimResult<TypedPage<User>> {
        let page = self.reader.list(filter, start_index, count).await?;
        Ok(TypedPage {
            resources: page
                .resources
                .iter()
                .map(typed_user)
                .collect::<ScimResult<_>>()?,
            total_results: page.total_results,
            start_index: page.start_index,
        })
    }
}

impl Groups<'_> {
    /// The group with this id, if any (without members).
    pub async fn get(&self, id: &str) -> ScimResult<Option<Group>> {
        self.reader
            .get(id)
            .await?
            .as_ref()
            .map(typed_group)
            .transpose()
    }

    /// The group with this `displayName` (compared case-insensitively).
    pub async fn by_display_name(&self, display_name: &str) -> ScimResult<Option<Group>> {
        self.reader
            .first_eq("displayName", display_name)
            .await?
            .as_ref()
            .map(typed_group)
            .transpose()
    }

    /// The group with this `externalId`, if any.
    pub async fn by_external_id(&self, external_id: &str) -> ScimResult<Option<Group>> {
        self.reader
            .first_eq("externalId", external_id)
            .await?
            .as_ref()
            .map(typed_group)
            .transpose()
    }

    /// A page of the groups matching `filter` (see [`Users::list`]), without members.
    pub async fn list(
        &self,
        filter: Option<&str>,
        start_index: usize,
        count: usize,
    ) -> ScimResult<TypedPage<Group>> {
        let page = self.reader.list(filter, start_index, count).await?;
        Ok(TypedPage {
            resources: page
                .resources
                .iter()
                .map(typed_group)
                .collect::<ScimResult<_>>()?,
            total_results: page.total_results,
            start_index: page.start_index,
        })
    }

    /// A page of the group's members, ordered by member id, from the 1-based `start_index`,
    /// at most `count` (capped at [`MAX_TYPED_PAGE`]). 404 for an unknown group.
    pub async fn members(
        &self,
        group_id: &str,
        start_index: usize,
        count: usize,
    ) -> ScimResult<MemberPage> {
        let def = self.reader.def()?;
        Ok(self
            .reader
            .service
            .store()
            .members(
                &self.reader.tenant,
                def,
                &group_id.into(),
                start_index.max(1),
                count.min(MAX_TYPED_PAGE),
            )
            .await?)
    }
}

impl Reader<'_> {
    fn def(&self) -> ScimResult<&ResourceDef> {
        self.service
            .registry()
            .resource_type(self.rt)
            .map(|d| &**d)
            .ok_or_else(|| {
                ScimError::NotFound(format!("this service does not serve {} resources", self.rt))
            })
    }

    async fn get(&self, id: &str) -> ScimResult<Option<StoredResource>> {
        let def = self.def()?;
        match self
            .service
            .store()
            .get(&self.tenant, def, &id.into(), false)
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn first_eq(&self, attribute: &str, value: &str) -> ScimResult<Option<StoredResource>> {
        let filter = Filter::compare(
            AttrPath::new(attribute),
            CompareOp::Eq,
            CompValue::String(value.to_owned()),
        );
        let page = self.query(Some(filter), 1, 1).await?;
        Ok(page.resources.into_iter().next())
    }

    async fn list(
        &self,
        filter: Option<&str>,
        start_index: usize,
        count: usize,
    ) -> ScimResult<TypedPage<StoredResource>> {
        let limits = self.limits().await?;
        let filter = filter.map(|f| Filter::parse_with(f, &limits)).transpose()?;
        self.query(filter, start_index, count).await
    }

    async fn limits(&self) -> ScimResult<Limits> {
        Ok(self
            .service
            .tenants()
            .store()
            .get_tenant(&self.tenant)
            .await?
            .map(|t| t.settings.limits)
            .unwrap_or_default())
    }

    async fn query(
        &self,
        filter: Option<Filter>,
        start_index: usize,
        count: usize,
    ) -> ScimResult<TypedPage<StoredResource>> {
        let def = self.def()?;
        let limits = self.limits().await?;
        let query = ListQuery {
            filter,
            sort: None,
            start_index: start_index.max(1),
            count: count.min(MAX_TYPED_PAGE),
            include_members: false,
            max_candidates: limits.max_resources_scanned,
            paging: crate::store::Paging::Index,
        };
        let page = self.service.store().list(&self.tenant, def, &query).await?;
        let page = if page.pushdown == Pushdown::Exact {
            page
        } else if page.resources.len() > query.max_candidates {
            return Err(ScimError::TooMany(format!(
                "the filter cannot be answered from the store's index for {} and would evaluate more than {} resources; narrow it with a condition the store indexes (userName, externalId, displayName or id)",
                def.name(),
                query.max_candidates
            )));
        } else {
            apply_query(def, &query, page.resources)?
        };
        Ok(TypedPage {
            resources: page.resources,
            total_results: page.total_results,
            start_index: query.start_index,
        })
    }
}

/// The stored document with `id` and `meta` (without `location`), as the typed views read it.
fn with_id_and_meta(r: &StoredResource) -> Value {
    let mut doc = r.doc.clone();
    if let Value::Object(map) = &mut doc {
        map.insert("id".to_owned(), Value::String(r.id.as_str().to_owned()));
        map.insert(
            "meta".to_owned(),
            serde_json::json!({
                "resourceType": r.resource_type,
                "created": r.created,
                "lastModified": r.last_modified,
                "version": r.version.etag(),
            }),
        );
    }
    doc
}

/// A stored User as a typed [`User`].
pub(crate) fn typed_user(r: &StoredResource) -> ScimResult<User> {
    User::try_from(&with_id_and_meta(r))
}

/// A stored Group as a typed [`Group`] (members as stored: none, unless read with them).
pub(crate) fn typed_group(r: &StoredResource) -> ScimResult<Group> {
    let mut doc = with_id_and_meta(r);
    if let (Value::Object(map), Some(members)) = (&mut doc, &r.members) {
        let list: Vec<Value> = members
            .iter()
            .map(|m| {
                serde_json::json!({
                    "value": m.value.as_str(),
                    "type": m.resource_type,
                    "display": m.display,
                })
            })
            .collect();
        map.insert("members".to_owned(), Value::Array(list));
    }
    Group::try_from(&doc)
}
