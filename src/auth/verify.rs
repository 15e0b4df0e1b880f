//! Verifying the credentials of a SCIM request.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use http::HeaderValue;
use subtle::ConstantTimeEq;

use super::clock::Clock;
use super::store::TenantStore;
use super::token::{hash_token, is_well_formed, TokenId};
use crate::error::{ScimError, ScimResult};
use crate::tenant::{Tenant, TenantId};

/// The `WWW-Authenticate` value sent with every 401 (RFC 6750 §3, RFC 7235 §4.1).
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"scim\"";

/// The one `detail` of every authentication failure. RFC 6750 §3 allows saying more, but a
/// client probing with stolen or guessed tokens must not learn whether a token exists, was
/// revoked or expired, belongs to another tenant, or whether the tenant is switched off.
pub const UNAUTHORIZED_DETAIL: &str =
    "Authentication failed: a valid bearer token for this tenant is required.";

/// The longest `Authorization` value [`parse_bearer`] looks at: room for the large JWTs a
/// host's OAuth verifier may see, while a 10 KB value is refused before any work is done on
/// it. The built-in verifier is stricter (see [`BearerTokenVerifier`]).
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;

/// The longest `Authorization` value the built-in verifier looks at. A scimkit token makes
/// a 58-byte header; the rest is room for surrounding whitespace.
const BUILTIN_MAX_AUTHORIZATION_LEN: usize = 256;

/// The `WWW-Authenticate` header value to attach to a 401 answer.
pub fn www_authenticate() -> HeaderValue {
    HeaderValue::from_static(WWW_AUTHENTICATE)
}

/// The error of every authentication failure: 401 with [`UNAUTHORIZED_DETAIL`].
pub fn unauthorized() -> ScimError {
    ScimError::Unauthorized(UNAUTHORIZED_DETAIL.to_owned())
}

/// Extracts the token of an `Authorization: Bearer <token>` value, or `None` if the value is
/// anything else.
///
/// Accepted: the scheme `Bearer` in any case (RFC 7235 §2.1), surrounding spaces or tabs,
/// one or more spaces between scheme and token, and a single token with the `b64token`
/// syntax of RFC 6750 §2.1. Refused: values longer than [`MAX_AUTHORIZATION_LEN`], any byte
/// that is not visible ASCII, space or tab (NUL, CR, LF, obs-text), other schemes, a missing
/// token, more than one token, and auth-params.
///
/// ```
/// use scimkit::auth::parse_bearer;
///
/// assert_eq!(parse_bearer(b"  bearer abc.DEF-1~  "), Some("abc.DEF-1~"));
/// assert_eq!(parse_bearer(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
/// assert_eq!(parse_bearer(b"Bearer a b"), None);
/// ```
pub fn parse_bearer(value: &[u8]) -> Option<&str> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    // Every byte is checked below: the trimmed value must be the scheme, blanks and a
    // b64token, all ASCII (anything else, including non-UTF-8, is refused).
    let value = std::str::from_utf8(value).ok()?;
    let value = value.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches([' ', '\t']);
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let body_ok = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    body_ok.then_some(token)
}

/// Who a verified request acts for. Returned by a [`TokenVerifier`]; the service only serves
/// a request whose principal's tenant is the tenant of the URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    tenant: TenantId,
    subject: Subject,
}

/// The authenticated party within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// A scimkit bearer token, by its public id.
    Token(TokenId),
    /// An identity established by a host's own verifier (an OAuth client id, a certificate
    /// subject, an API key name).
    Host(String),
}

impl Principal {
    /// A principal authenticated by a scimkit token.
    pub fn token(tenant: TenantId, id: TokenId) -> Self {
        Principal {
            tenant,
            subject: Subject::Token(id),
        }
    }

    /// A principal authenticated by a host's own verifier.
    pub fn host(tenant: TenantId, subject: impl Into<String>) -> Self {
        Principal {
            tenant,
            subject: Subject::Host(subject.into()),
        }
    }

    /// The tenant the principal may act on.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Who the principal is.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The token id, when a scimkit token authenticated the request.
    pub fn token_id(&self) -> Option<TokenId> {
        match &self.subject {
            Subject::Token(id) => Some(*id),
            Subject::Host(_) => None,
        }
    }
}

/// Decides whether a request may act on a tenant.
///
/// The service calls `verify` with the tenant named by the request URL and the request's
/// `Authorization` header (`None` when absent) before doing anything else. The contract:
///
/// - Return a [`Principal`] whose tenant is `tenant`, or an error. The service refuses a
///   principal for another tenant, but a verifier should never produce one.
/// - Every credential problem is [`ScimError::Unauthorized`]; use [`unauthorized`] so that
///   all failures look alike to the client. The service adds `WWW-Authenticate`.
/// - A failure of the verifier's own machinery (database, introspection endpoint) is
///   [`ScimError::Internal`], answered 500, so an IdP does not mistake an outage for a bad
///   token.
/// - Never put the credential in an error or a log line.
///
/// [`BearerTokenVerifier`] is the built-in implementation; a host plugs in OAuth
/// introspection, mTLS identities or its existing API keys by implementing this trait.
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    /// Verifies the credentials of a request to `tenant`.
    async fn verify(
        &self,
        tenant: &TenantId,
        authorization: Option<&HeaderValue>,
    ) -> ScimResult<Principal>;

    /// [`verify`](Self::verify), also handing back the tenant's record when the verifier
    /// read it anyway, so that the service does not read it a second time (one query less per
    /// request on a database). The default calls `verify` and hands back no tenant.
    async fn verify_loading_tenant(
        &self,
        tenant: &TenantId,
        authorization: Option<&HeaderValue>,
    ) -> ScimResult<(Principal, Option<Tenant>)> {
        Ok((self.verify(tenant, authorization).await?, None))
    }
}

/// Authenticates a request to `tenant` from its headers: what the service calls before
/// routing.
///
/// Beyond [`TokenVerifier::verify`] it refuses, with the same [`unauthorized`] error, a
/// request carrying more than one `Authorization` header (which one a proxy or framework
/// would pick is unpredictable, RFC 9110 §5.3 does not allow combining them), and a
/// principal that a misbehaving verifier issued for another tenant.
pub async fn authenticate(
    verifier: &dyn TokenVerifier,
    tenant: &TenantId,
    headers: &http::HeaderMap,
) -> ScimResult<Principal> {
    Ok(authenticate_loading_tenant(verifier, tenant, headers)
        .await?
        .0)
}

/// [`authenticate`] through [`TokenVerifier::verify_loading_tenant`]: the principal, and the
/// tenant's record when the verifier read it (only ever the record of `tenant`).
pub(crate) async fn authenticate_loading_tenant(
    verifier: &dyn TokenVerifier,
    tenant: &TenantId,
    headers: &http::HeaderMap,
) -> ScimResult<(Principal, Option<Tenant>)> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let authorization = values.next();
    if values.next().is_some() {
        return Err(unauthorized());
    }
    let (principal, record) = verifier
        .verify_loading_tenant(tenant, authorization)
        .await?;
    if principal.tenant() != tenant {
        return Err(unauthorized());
    }
    Ok((principal, record.filter(|t| t.id == *tenant)))
}

/// The built-in verifier of scimkit bearer tokens, over a [`TenantStore`].
///
/// A request is accepted when its `Authorization` (at most 256 bytes) is `Bearer <token>`
/// with a well-formed
/// scimkit token whose SHA-256 is stored, and the record belongs to the URL's tenant, is not
/// revoked, has not expired at the clock's `now`, and the tenant has SCIM enabled. Every
/// other case gives the same [`unauthorized`] error.
///
/// `last_used` is written at most once per interval per token (60 s by default), so a busy
/// IdP does not cause a store write on every request. The write is best-effort: a failure
/// to record it does not fail the request.
pub struct BearerTokenVerifier {
    store: Arc<dyn TenantStore>,
    clock: Arc<dyn Clock>,
    last_used_interval: Duration,
}

impl BearerTokenVerifier {
    /// The default coalescing interval of `last_used` writes.
    pub const DEFAULT_LAST_USED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

    /// A verifier over `store`, reading time from `clock`.
    pub fn new(store: Arc<dyn TenantStore>, clock: Arc<dyn Clock>) -> Self {
        BearerTokenVerifier {
            store,
            clock,
            last_used_interval: Duration::zero(),
        }
        .with_last_used_interval(Self::DEFAULT_LAST_USED_INTERVAL)
    }

    /// Sets how stale the stored `last_used` may get before a request rewrites it. Zero
    /// writes on every request.
    pub fn with_last_used_interval(mut self, interval: std::time::Duration) -> Self {
        self.last_used_interval = Duration::from_std(interval).unwrap_or(Duration::MAX);
        self
    }
}

impl fmt::Debug for BearerTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenVerifier")
            .field("last_used_interval", &self.last_used_interval)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenVerifier for BearerTokenVerifier {
    async fn verify(
        &self,
        tenant: &TenantId,
        authorization: Option<&HeaderValue>,
    ) -> ScimResult<Principal> {
        Ok(self.verify_loading_tenant(tenant, authorization).await?.0)
    }

    async fn verify_loading_tenant(
        &self,
        tenant: &TenantId,
        authorization: Option<&HeaderValue>,
    ) -> ScimResult<(Principal, Option<Tenant>)> {
        // Shape checks first: they are cheap and reveal nothing a client does not know.
        let token = authorization
            .filter(|v| v.len() <= BUILTIN_MAX_AUTHORIZATION_LEN)
            .and_then(|v| parse_bearer(v.as_bytes()))
            .filter(|t| is_well_formed(t))
            .ok_or_else(unauthorized)?;
        let hash = hash_token(token);
        let record = self
            .store
            .find_token_by_hash(&hash)
            .await?
            .ok_or_else(unauthorized)?;
        let now = self.clock.now();
        // The store found the record by hash; comparing again in constant time keeps the
        // decision independent of how a backend implements its lookup.
        let hash_ok = bool::from(record.hash.ct_eq(&hash));
        if !(hash_ok & (record.tenant == *tenant) & record.is_active(now)) {
            return Err(unauthorized());
        }
        let record_of_tenant = match self.store.get_tenant(tenant).await? {
            Some(t) if t.scim_enabled => t,
            _ => return Err(unauthorized()),
        };
        let stale = record
            .last_used
            .is_none_or(|at| now.signed_duration_since(at) >= self.last_used_interval);
        if stale {
            // Best-effort by design (see the type docs): an outage of this write must not
            // lock the IdP out.
            let _ = self.store.record_token_use(&record.id, now).await;
        }
        Ok((
            Principal::token(tenant.clone(), record.id),
            Some(record_of_tenant),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_bearer_variants() {
        for (input, want) in [
            ("Bearer abc", "abc"),
            ("bearer abc", "abc"),
            ("BEARER abc", "abc"),
            ("BeArEr abc", "abc"),
            ("  Bearer abc  ", "abc"),
            ("\tBearer\tabc\t", "abc"),
            ("Bearer    abc", "abc"),
            ("Bearer a-b.c_d~e+f/g==", "a-b.c_d~e+f/g=="),
        ] {
            assert_eq!(parse_bearer(input.as_bytes()), Some(want), "{input:?}");
        }
        // Room for a large JWT from a host's OAuth verifier.
        let jwt = format!(
            "{}.{}.{}",
            "e".repeat(40),
            "p".repeat(4000),
            "s".repeat(300)
        );
        assert_eq!(
            parse_bearer(format!("Bearer {jwt}").as_bytes()),
            Some(jwt.as_str())
        );
    }

    #[test]
    fn parse_refuses_everything_else() {
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        for input in [
            "",
            " ",
            "Bearer",
            "Bearer ",
            "Bearer\t",
            "Bearerabc",
            "Basic abc",
            "Token abc",
            "Bearer a b",
            "Bearer a\tb",
            "Bearer a,b",
            "Bearer realm=\"x\", abc",
            "Bearer ==",
            "Bearer =abc",
            "Bearer abc=def",
            "Bearer abc\"",
            "Bearer abc\0",
            "Bearer \0abc",
            "Bearer abc\r\n",
            "Bearer ab\u{e9}c",
            "Bearer: abc",
            long.as_str(),
        ] {
            assert_eq!(parse_bearer(input.as_bytes()), None, "{input:?}");
        }
    }

    #[test]
    fn unauthorized_is_a_401_without_scim_type() {
        let e = unauthorized();
        assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(e.scim_type(), None);
        assert_eq!(e.detail(), UNAUTHORIZED_DETAIL);
        assert_eq!(
            www_authenticate().to_str().unwrap(),
            "Bearer realm=\"scim\""
        );
    }

    #[test]
    fn principal_accessors() {
        let t = TenantId::new("t").unwrap();
        let id = TokenId::new_random();
        let p = Principal::token(t.clone(), id);
        assert_eq!(p.tenant(), &t);
        assert_eq!(p.token_id(), Some(id));
        let h = Principal::host(t, "oauth-client-7");
        assert_eq!(h.token_id(), None);
        assert_eq!(h.subject(), &Subject::Host("oauth-client-7".into()));
    }
}
