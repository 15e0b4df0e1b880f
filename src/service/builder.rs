//! The service's construction: [`ScimServiceBuilder`] and the host hooks it takes
//! ([`MeResolver`], [`RetryPause`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;

use crate::auth::{BearerTokenVerifier, Clock, Principal, TenantStore, TokenVerifier};
use crate::error::ScimError;
use crate::events::EventSink;
use crate::resource::ResourceId;
use crate::schema::SchemaRegistry;
use crate::store::ResourceStore;
use crate::tenant::BaseUrl;

use super::{cursor, emit, rate, Inner, ScimService, WritePolicy};

/// Maps the authenticated principal to the User it acts as, for `/Me` (RFC 7644 §3.11).
///
/// Without one, `/Me` answers 501: a bearer token issued to an identity provider does not
/// stand for any user.
#[async_trait]
pub trait MeResolver: Send + Sync {
    /// The id of the User resource `principal` is, or `None` (then `/Me` answers 404).
    async fn resolve(&self, principal: &Principal) -> Result<Option<ResourceId>, ScimError>;
}

/// Waits between the attempts of a write that lost a version race (a PATCH or PUT changing
/// attributes, without `If-Match`, while another write to the same resource committed).
///
/// The library runs on any executor and has no timer of its own. The default pause yields to
/// the executor once; a host on tokio passes its timer, so that retries back off for real
/// (the service adds random jitter):
///
/// ```
/// # fn build(b: scimkit::service::ScimServiceBuilder) -> scimkit::service::ScimServiceBuilder {
/// b.retry_pause(tokio::time::sleep)
/// # }
/// ```
///
/// Membership-only PATCHes without `If-Match` never wait: the store applies them as set
/// operations, which commute.
pub trait RetryPause: Send + Sync {
    /// A future that completes after about `duration`.
    fn pause(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<F, Fut> RetryPause for F
where
    F: Fn(Duration) -> Fut + Send + Sync,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn pause(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self(duration))
    }
}

/// The default [`RetryPause`]: gives other tasks one turn, whatever the duration.
pub(super) struct YieldOnce;

impl RetryPause for YieldOnce {
    fn pause(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(Yield(false))
    }
}

struct Yield(bool);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// An error in how the host configured the service (caller misuse, not untrusted input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service configuration: {0}")]
pub struct ConfigError(String);

/// Builds a [`ScimService`].
pub struct ScimServiceBuilder {
    pub(super) public_url: String,
    pub(super) mount_path: Option<String>,
    pub(super) store: Arc<dyn ResourceStore>,
    pub(super) tenants: Arc<dyn TenantStore>,
    pub(super) registry: SchemaRegistry,
    pub(super) verifier: Option<Arc<dyn TokenVerifier>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) me: Option<Arc<dyn MeResolver>>,
    pub(super) documentation_uri: Option<String>,
    pub(super) retry_pause: Arc<dyn RetryPause>,
    pub(super) rate_limit_buckets: usize,
    pub(super) write_policy: Option<Arc<dyn WritePolicy>>,
    pub(super) event_sink: Option<Arc<dyn EventSink>>,
    pub(super) log_request_bodies: bool,
    pub(super) cursor_key: Option<cursor::CursorKey>,
    pub(super) cursor_timeout: std::time::Duration,
}

impl ScimServiceBuilder {
    /// Hands one [`ProvisioningEvent`](crate::events::ProvisioningEvent) per request to
    /// `sink` (see [`crate::events`]). Without a sink no event is built.
    ///
    /// With a sink, the real reason of a 401 ([`AuthFailure`](crate::events::AuthFailure))
    /// is found after the uniform answer is built, with up to two reads of the tenant store
    /// (the tenant, the token by hash), and a `DELETE` reads the resource first to log its
    /// name.
    pub fn event_sink(mut self, sink: impl EventSink + 'static) -> Self {
        self.event_sink = Some(Arc::new(sink));
        self
    }

    /// Puts the request body in each event (off by default), without `password` and every
    /// attribute the schema marks `writeOnly` or `returned: never`, at any depth, including
    /// extension objects, PATCH operation values and Bulk operation data. Only with an
    /// [`event_sink`](Self::event_sink).
    pub fn log_request_bodies(mut self, on: bool) -> Self {
        self.log_request_bodies = on;
        self
    }

    /// The secret that authenticates RFC 9865 pagination cursors (any length; a
    /// 32-byte key is derived from it with SHA-256). Every instance of a service sharing a
    /// database must be given the same secret, so that a cursor issued by one instance is
    /// accepted by the others (a load balancer may send consecutive pages to different
    /// instances). Without it, each process draws a random key: cursors then fail with
    /// `invalidCursor` after a restart or on another instance. Treat it as a secret: who
    /// holds it can forge cursors (which only ever select resources the caller may list
    /// anyway, but could be replayed across queries).
    pub fn cursor_key(mut self, secret: &[u8]) -> Self {
        self.cursor_key = Some(cursor::CursorKey::from_secret(secret));
        self
    }

    /// How long a pagination cursor stays valid after it was issued (advertised as
    /// `pagination.cursorTimeout`); older cursors are answered 400 `expiredCursor`.
    /// Default [`DEFAULT_CURSOR_TIMEOUT`](super::DEFAULT_CURSOR_TIMEOUT) (one hour).
    pub fn cursor_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.cursor_timeout = timeout;
        self
    }

    /// The most rate-limit buckets kept at once (one per tenant with a
    /// [`RateLimit`](crate::settings::RateLimit), or per token with `per_token`); 10,000 by
    /// default. When full, the buckets that have refilled completely are forgotten (they
    /// would start full anyway), else the one unused the longest: memory stays bounded, and
    /// an evicted tenant or token at worst gets a fresh burst.
    pub fn rate_limit_buckets(mut self, buckets: usize) -> Self {
        self.rate_limit_buckets = buckets;
        self
    }

    /// Lets `policy` accept or refuse every create, replace, patch and delete before it
    /// commits (seat limits, domain allow-lists, protected accounts); see [`WritePolicy`].
    pub fn write_policy(mut self, policy: impl WritePolicy + 'static) -> Self {
        self.write_policy = Some(Arc::new(policy));
        self
    }

    /// How the service waits between attempts of a write that lost a version race; see
    /// [`RetryPause`].
    pub fn retry_pause(mut self, pause: impl RetryPause + 'static) -> Self {
        self.retry_pause = Arc::new(pause);
        self
    }

    /// Serves `registry` instead of the default User/Group registry.
    pub fn registry(mut self, registry: SchemaRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// Uses the host's own verifier instead of the built-in bearer tokens.
    pub fn verifier(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Uses `clock` for timestamps and token expiry (tests inject a manual clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The path under which requests arrive, when it differs from the path of the public URL
    /// (a reverse proxy rewrote it). Defaults to the public URL's path.
    pub fn mount_path(mut self, path: impl Into<String>) -> Self {
        self.mount_path = Some(path.into());
        self
    }

    /// Answers `/Me` through `resolver`.
    pub fn me_resolver(mut self, resolver: Arc<dyn MeResolver>) -> Self {
        self.me = Some(resolver);
        self
    }

    /// Advertised as `documentationUri` in `/ServiceProviderConfig`.
    pub fn documentation_uri(mut self, uri: impl Into<String>) -> Self {
        self.documentation_uri = Some(uri.into());
        self
    }

    /// Builds the service.
    pub fn build(self) -> Result<ScimService, ConfigError> {
        let base = BaseUrl::new(self.public_url.clone()).map_err(|e| ConfigError(e.to_string()))?;
        let mount = match self.mount_path {
            Some(m) => m,
            None => url_path(base.as_str()).to_owned(),
        };
        let mount = mount.trim_end_matches('/').to_owned();
        if !(mount.is_empty() || mount.starts_with('/')) {
            return Err(ConfigError(format!(
                "mount path `{mount}` must be empty or start with `/`"
            )));
        }
        let builtin_verifier = self.verifier.is_none();
        let secret_names = emit::secret_names(&self.registry);
        let verifier = self.verifier.unwrap_or_else(|| {
            Arc::new(BearerTokenVerifier::new(
                Arc::clone(&self.tenants),
                Arc::clone(&self.clock),
            ))
        });
        Ok(ScimService {
            inner: Arc::new(Inner {
                base,
                mount,
                store: self.store,
                tenants: self.tenants,
                registry: Arc::new(self.registry),
                verifier,
                clock: self.clock,
                me: self.me,
                documentation_uri: self.documentation_uri,
                retry_pause: self.retry_pause,
                limiter: rate::RateLimiter::new(self.rate_limit_buckets),
                write_policy: self.write_policy,
                event_sink: self.event_sink,
                log_request_bodies: self.log_request_bodies,
                builtin_verifier,
                secret_names,
                cursor_key: self.cursor_key.unwrap_or_else(cursor::CursorKey::random),
                cursor_timeout: self.cursor_timeout,
            }),
        })
    }
}

/// The path part of an absolute URL (`https://h/scim/v2` gives `/scim/v2`).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => after_scheme.get(i..).unwrap_or(""),
        None => "",
    }
}
