//! The service and the tenant admin API over the chosen store, and what `serve` does before
//! it listens: create the tenant, register or issue its token, optionally seed users.

use std::sync::Arc;

use bytes::Bytes;
use scimkit::auth::{hash_token, MemoryTenantStore, TenantStore, TokenId, TokenRecord};
use scimkit::schema::{AgentScope, Catalog, SchemaRegistry};
use scimkit::service::ScimService;
use scimkit::store::ProvisioningLog;
use scimkit::store::StoreEventSink;
use scimkit::store::{ChangeRetention, MemoryStore, ResourceStore};
use scimkit::{auth::Tenants, settings::Settings, tenant::TenantId};

use super::cli::{Cli, StoreSpec};

/// Everything a request handler or admin command needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The SCIM service (it also holds the resource store and the tenant store).
    pub service: ScimService,
    /// The tenant and token admin API over the same tenant store.
    pub tenants: Tenants,
    /// The provisioning log: one event per SCIM request, kept in the same store (a bounded
    /// ring per tenant in memory; a table pruned with the change feeds in SQLite and
    /// PostgreSQL, see [`App::prune_change_feeds`]).
    pub log: Arc<dyn ProvisioningLog>,
    /// With `--governance`: whether [`bootstrap`](Self::bootstrap) publishes the demo
    /// values of the `Entitlement` catalog. The axum example turns it off: there the admin
    /// console's access policies are that catalog.
    pub demo_entitlements: bool,
}

impl App {
    /// Opens `spec` and builds the service for tenants under `public_url`.
    #[cfg_attr(not(test), allow(dead_code))] // the console's tests open apps this way
    pub async fn open(spec: &StoreSpec, public_url: &str) -> Result<App, String> {
        App::open_with(spec, public_url, false, None).await
    }

    /// [`open`](Self::open); with `governance` (`--governance`), the registry also has the
    /// agent schema pack and the demo Entitlement and Role catalogs; pagination cursors are
    /// authenticated with `cursor_key` (`--cursor-key`; a random key without it).
    pub async fn open_with(
        spec: &StoreSpec,
        public_url: &str,
        governance: bool,
        cursor_key: Option<&str>,
    ) -> Result<App, String> {
        let (store, tenant_store, log) = open_store(spec).await?;
        // Events are queued by the request (never blocking it) and appended in batches by
        // a task of their own.
        let (sink, writer) = StoreEventSink::new(Arc::clone(&log), EVENT_QUEUE);
        tokio::spawn(writer.run());
        let mut registry = SchemaRegistry::default();
        if governance {
            registry
                .enable_agents(AgentScope::AllTenants)
                .and_then(|()| {
                    registry.add_catalog(Catalog::entitlements("Entitlement", "/Entitlements"))
                })
                .and_then(|()| registry.add_catalog(Catalog::roles("Role", "/Roles")))
                .map_err(|e| format!("--governance: {e}"))?;
            // The draft's `agentExtension` in /ServiceProviderConfig is outside RFC 7643's
            // schema for that document, and scim2-models based clients (the scim2-tester
            // conformance run) reject the whole document for it; the agent types are
            // discovered through /ResourceTypes.
            registry.advertise_agent_extension(false);
        }
        let mut builder = ScimService::builder(public_url, store, Arc::clone(&tenant_store))
            .registry(registry)
            // Writes that lost a version race back off on tokio's timer.
            .retry_pause(tokio::time::sleep)
            .event_sink(sink);
        if let Some(key) = cursor_key {
            builder = builder.cursor_key(key.as_bytes());
        }
        let service = builder
            .build()
            .map_err(|e| format!("--public-url `{public_url}`: {e}"))?;
        // The admin API over the service's tenant store and clock.
        let tenants = service.tenants();
        Ok(App {
            service,
            tenants,
            log,
            demo_entitlements: true,
        })
    }

    /// The resource store.
    pub fn store(&self) -> &Arc<dyn ResourceStore> {
        self.service.store()
    }

    /// Makes sure the tenant of `cli` exists (and is in strict mode with `--strict`),
    /// registers the token given with `--token` if any, and returns the token to print: a
    /// freshly issued one when the tenant has no active token. `None` when the operator gave
    /// the token (it is never echoed: stdout may end up in a log) or the tenant already has
    /// working tokens (their secrets were shown once and are not kept).
    pub async fn bootstrap(&self, cli: &Cli) -> Result<Option<String>, String> {
        let id = &cli.tenant;
        let existing = self.tenants.store().get_tenant(id).await.map_err(show)?;
        match existing {
            None => {
                let mut settings = if cli.strict {
                    Settings::strict()
                } else {
                    Settings::default()
                };
                settings.rate_limit = cli.rate_limit;
                self.tenants
                    .create_tenant(id.clone(), id.as_str(), settings)
                    .await
                    .map_err(show)?;
                tracing::info!(tenant = %id, "created tenant");
            }
            Some(t) => {
                let mut settings = if cli.strict {
                    let mut strict = Settings::strict();
                    strict.rate_limit = t.settings.rate_limit;
                    strict
                } else {
                    t.settings.clone()
                };
                if cli.rate_limit.is_some() {
                    settings.rate_limit = cli.rate_limit;
                }
                if settings != t.settings {
                    self.tenants
                        .update_settings(id, settings)
                        .await
                        .map_err(show)?;
                }
                if !t.scim_enabled {
                    tracing::warn!(
                        tenant = %id,
                        "SCIM provisioning is switched off for this tenant: every request gets \
                         401 until `tenant enable`"
                    );
                }
            }
        }

        if cli.governance {
            self.publish_demo_catalogs(id).await?;
        }
        if let Some(token) = &cli.token {
            self.register_token(id, token).await?;
            tracing::info!(tenant = %id, "the --token value is registered (not shown)");
            return Ok(None);
        }
        let now = chrono::Utc::now();
        let active = self
            .tenants
            .list_tokens(id)
            .await
            .map_err(show)?
            .iter()
            .filter(|t| t.is_active(now))
            .count();
        if active > 0 {
            tracing::info!(
                tenant = %id,
                active,
                "the tenant has active tokens; none is shown (`token create` issues a new one)"
            );
            return Ok(None);
        }
        let (_, secret) = self
            .tenants
            .issue_token(id, "generated by the example server on start", None)
            .await
            .map_err(show)?;
        Ok(Some(secret.expose_secret().to_owned()))
    }

    /// Publishes the `--governance` demo catalogs for `tenant` (again on every start: the
    /// host's list is the source of truth; unchanged values are not written again, values
    /// no longer in the list are withdrawn).
    async fn publish_demo_catalogs(&self, tenant: &TenantId) -> Result<(), String> {
        let entitlements = [
            ("reports-read", "Read reports", "Can open every report"),
            (
                "reports-export",
                "Export reports",
                "Can export reports as CSV",
            ),
            ("billing-view", "View billing", "Can see invoices and plans"),
        ];
        let roles = [
            ("admin", "Administrator", "Manages the workspace"),
            ("member", "Member", "Works in the workspace"),
        ];
        let mut catalogs = vec![("Role", &roles[..])];
        if self.demo_entitlements {
            catalogs.insert(0, ("Entitlement", &entitlements[..]));
        }
        for (rt, values) in catalogs {
            let values = values.iter().map(|(id, name, description)| {
                (
                    (*id).to_owned(),
                    serde_json::json!({
                        "displayName": name,
                        "type": rt,
                        "description": description,
                    }),
                )
            });
            self.service
                .sync_catalog(tenant, rt, values)
                .await
                .map_err(|e| format!("publishing the demo {rt} catalog: {}", show(e)))?;
        }
        Ok(())
    }

    /// Registers a token the operator chose, unless it is already registered for `tenant`.
    async fn register_token(&self, tenant: &TenantId, token: &str) -> Result<(), String> {
        let hash = hash_token(token);
        let store = self.tenants.store();
        match store.find_token_by_hash(&hash).await.map_err(show)? {
            Some(record) if &record.tenant != tenant => Err(format!(
                "the --token value is already registered for tenant `{}`",
                record.tenant
            )),
            Some(record) if !record.is_active(chrono::Utc::now()) => Err(format!(
                "the --token value was registered before as token {} and is revoked or \
                 expired; choose another",
                record.id
            )),
            Some(_) => Ok(()),
            None => {
                let record = TokenRecord {
                    id: TokenId::new_random(),
                    tenant: tenant.clone(),
                    label: "given with --token".to_owned(),
                    hash,
                    created: chrono::Utc::now(),
                    expires: None,
                    revoked: false,
                    last_used: None,
                };
                store.insert_token(record).await.map_err(show)
            }
        }
    }

    /// Creates `n` users (`user00000@example.com`, ...) through the service itself, with a
    /// token issued for the purpose and revoked afterwards, so they are exactly what an IdP
    /// would have created.
    pub async fn seed_users(&self, tenant: &TenantId, n: usize) -> Result<(), String> {
        if n == 0 {
            return Ok(());
        }
        let (record, secret) = self
            .tenants
            .issue_token(tenant, "seeding users", None)
            .await
            .map_err(show)?;
        let auth = format!("Bearer {}", secret.expose_secret());
        let path = format!("{}/Users", url_path(&self.service.base_url(tenant)));
        let started = std::time::Instant::now();
        let mut result = Ok(());
        for i in 0..n {
            let body = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("user{i:05}@example.com"),
                "externalId": format!("ext-{i:05}"),
                "name": {"givenName": "User", "familyName": format!("Number {i}")},
                "displayName": format!("User Number {i}"),
                "emails": [{"value": format!("user{i:05}@example.com"), "type": "work", "primary": true}],
                "active": true
            });
            let request = http::Request::post(path.as_str())
                .header(http::header::AUTHORIZATION, auth.as_str())
                .header(http::header::CONTENT_TYPE, "application/scim+json")
                .body(Bytes::from(body.to_string()));
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    result = Err(format!("seeding users: {e}"));
                    break;
                }
            };
            let response = self.service.handle(request).await;
            // 409: the user exists from an earlier run with a durable store.
            if !(response.status().is_success() || response.status() == http::StatusCode::CONFLICT)
            {
                result = Err(format!(
                    "seeding user {i} failed with {}: {}",
                    response.status(),
                    String::from_utf8_lossy(response.body())
                ));
                break;
            }
        }
        self.tenants
            .revoke_token(tenant, &record.id)
            .await
            .map_err(show)?;
        tracing::info!(
            users = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "seeded users"
        );
        result
    }
}

/// The most provisioning events waiting to be appended; beyond, events are dropped (and
/// counted) rather than slowing requests down.
const EVENT_QUEUE: usize = 10_000;

/// The most provisioning events kept per tenant, whatever their age.
pub const LOG_MAX_ENTRIES: u64 = 100_000;

/// How often `serve` prunes the change feeds.
pub const FEED_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl App {
    /// Prunes the change feed of every tenant to `retention`; returns the number of records
    /// removed. Each store call is bounded; a tenant with more due is called again.
    pub async fn prune_change_feeds(&self, retention: &ChangeRetention) -> Result<u64, String> {
        let mut removed = 0u64;
        for tenant in self.tenants.list_tenants().await.map_err(show)? {
            loop {
                let report = self
                    .store()
                    .prune_changes(&tenant.id, retention, chrono::Utc::now())
                    .await
                    .map_err(|e| format!("pruning the change feed of `{}`: {e}", tenant.id))?;
                removed = removed.saturating_add(report.removed);
                if report.complete {
                    break;
                }
                // Let requests in between two bounded batches.
                tokio::task::yield_now().await;
            }
        }
        Ok(removed)
    }

    /// Prunes the provisioning log of every tenant: events older than `max_age` (none when
    /// `None`), and all but the newest [`LOG_MAX_ENTRIES`]; returns the number removed.
    pub async fn prune_logs(&self, max_age: Option<std::time::Duration>) -> Result<u64, String> {
        let retention = ChangeRetention {
            max_age,
            max_entries: Some(LOG_MAX_ENTRIES),
            ..ChangeRetention::default()
        };
        let mut removed = 0u64;
        for tenant in self.tenants.list_tenants().await.map_err(show)? {
            loop {
                let report = self
                    .log
                    .prune_log(&tenant.id, &retention, chrono::Utc::now())
                    .await
                    .map_err(|e| format!("pruning the provisioning log of `{}`: {e}", tenant.id))?;
                removed = removed.saturating_add(report.removed);
                if report.complete {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(removed)
    }

    /// Starts pruning the change feeds and the provisioning logs every
    /// [`FEED_PRUNE_EVERY`] (the first time now), keeping `days` days of records (`None`:
    /// the feeds forever, the logs up to [`LOG_MAX_ENTRIES`] events per tenant).
    pub fn spawn_feed_pruning(&self, days: Option<u32>) {
        let max_age = days.map(|d| std::time::Duration::from_secs(u64::from(d) * 86_400));
        if max_age.is_none() {
            tracing::info!("change feed kept forever (--feed-retention-days 0)");
        }
        let app = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FEED_PRUNE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Some(age) = max_age {
                    match app.prune_change_feeds(&ChangeRetention::max_age(age)).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, ?days, "pruned the change feeds"),
                        Err(e) => tracing::warn!(error = %e, "change feed pruning failed"),
                    }
                }
                match app.prune_logs(max_age).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "pruned the provisioning logs"),
                    Err(e) => tracing::warn!(error = %e, "provisioning log pruning failed"),
                }
            }
        });
    }
}

/// The path of an absolute URL (`http://h:1/scim/v2/t` gives `/scim/v2/t`).
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/")
}

fn show(e: scimkit::error::ScimError) -> String {
    e.detail().to_owned()
}

type Stores = (
    Arc<dyn ResourceStore>,
    Arc<dyn TenantStore>,
    Arc<dyn ProvisioningLog>,
);

async fn open_store(spec: &StoreSpec) -> Result<Stores, String> {
    match spec {
        StoreSpec::Memory => {
            let store = Arc::new(MemoryStore::new());
            Ok((store.clone(), Arc::new(MemoryTenantStore::new()), store))
        }
        StoreSpec::Sqlite(path) => open_sqlite(path).await,
        StoreSpec::Postgres(url) => open_postgres(url).await,
    }
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_path: &std::path::Path) -> Result<Stores, String> {
    Err("--store sqlite:PATH needs the `sqlite` feature: `cargo run --example ... --features sqlite`"
        .to_owned())
}

/// One SQLite file holds the resources, the tenants and their token records.
#[cfg(feature = "sqlite")]
async fn open_sqlite(path: &std::path::Path) -> Result<Stores, String> {
    let store = scimkit::store::sqlite::SqliteStore::open(path)
        .await
        .map_err(|e| format!("cannot open the SQLite database {}: {e}", path.display()))?;
    let store = Arc::new(store);
    Ok((store.clone(), store.clone(), store))
}

/// One PostgreSQL database for resources, tenants and tokens (migrated on connect).
#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Stores, String> {
    let store = scimkit::store::postgres::PostgresStore::connect(url)
        .await
        .map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
    // Other instances on the same database: their revocations and "SCIM off" reach this
    // one's authentication cache at once, and their writes wake this one's feed readers.
    tokio::spawn(store.listen());
    Ok((
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store),
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str) -> Result<Stores, String> {
    Err("--store postgres:URL needs the `postgres` feature: `cargo run --example ... --features postgres`"
        .to_owned())
}
