//! Token secrets, their hashes and the records a store keeps.
//!
//! A token is `scimkit_` followed by 32 bytes from the operating system's CSPRNG encoded as
//! base64url without padding (51 ASCII characters in all). The prefix lets secret scanners
//! and humans recognise a leaked scimkit token; the 256 random bits make guessing hopeless.
//! Only the SHA-256 of the whole token string is stored: a fast hash is enough for a
//! full-entropy secret, and lets a request be verified with one lookup.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroize;

use crate::error::{ScimError, ScimResult};
use crate::tenant::TenantId;

/// The prefix of every token scimkit issues.
pub const TOKEN_PREFIX: &str = "scimkit_";

/// How many random bytes a token carries.
const TOKEN_RANDOM_BYTES: usize = 32;

/// The length in characters of every token scimkit issues: the prefix and 32 bytes in
/// unpadded base64 (`ceil(32 * 8 / 6)` = 43 characters).
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;

/// What Debug and Display print in place of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// The SHA-256 of a token string: what a store keeps and looks tokens up by.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `token` has the shape of a token scimkit issues (prefix, then 43 base64url
/// characters). Says nothing about whether it is valid.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
            body.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A bearer token in plaintext. It exists only between issuance and the moment it is shown
/// to the admin who asked for it; scimkit never stores it.
///
/// `Debug` and `Display` print `[redacted]`; there is no `PartialEq` (compare hashes in
/// constant time instead) and no `Clone`; the memory is zeroed on drop. The plaintext is
/// reachable only through [`TokenSecret::expose_secret`], so every use of it is visible in
/// review.
pub struct TokenSecret(String);

impl TokenSecret {
    /// Draws a new token from the operating system's CSPRNG.
    ///
    /// Fails with [`ScimError::Internal`] only if the operating system cannot provide
    /// randomness.
    pub fn generate() -> ScimResult<Self> {
        let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            ScimError::internal_msg(format!("operating system randomness unavailable: {e}"))
        })?;
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
        bytes.zeroize();
        Ok(TokenSecret(token))
    }

    /// The token in plaintext, to show once to the admin who issued it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token: what a store keeps.
    pub fn hash(&self) -> [u8; 32] {
        hash_token(&self.0)
    }
}

impl Drop for TokenSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenSecret").field(&Redacted).finish()
    }
}

impl fmt::Display for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Prints `[redacted]` as a Debug field without quotes.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The public id of a token: safe to show, log and put in audit trails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(Uuid);

impl TokenId {
    /// A new random id.
    pub fn new_random() -> Self {
        TokenId(Uuid::new_v4())
    }

    /// Wraps a UUID (for stores reading ids back).
    pub fn from_uuid(id: Uuid) -> Self {
        TokenId(id)
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for TokenId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(TokenId)
    }
}

/// What a store keeps about an issued token. It holds the token's hash, never the token.
///
/// `Debug` prints the hash as `[redacted]`: it is not the secret, but there is no reason to
/// put it in logs either.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public id.
    pub id: TokenId,
    /// The only tenant the token opens.
    pub tenant: TenantId,
    /// A note for admins ("Okta production, issued by alice").
    pub label: String,
    /// SHA-256 of the token string (see [`hash_token`]).
    pub hash: [u8; 32],
    /// When the token was issued.
    pub created: DateTime<Utc>,
    /// When the token stops working, if ever. A request at or after this instant is refused.
    pub expires: Option<DateTime<Utc>>,
    /// Whether the token was revoked. Revocation is final.
    pub revoked: bool,
    /// When the token last authenticated a request, to within the verifier's coalescing
    /// interval.
    pub last_used: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    /// Whether the token opens its tenant at `now` (neither revoked nor expired). The
    /// tenant's own SCIM switch is checked separately.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && !self.is_expired(now)
    }
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("label", &self.label)
            .field("hash", &Redacted)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .field("revoked", &self.revoked)
            .field("last_used", &self.last_used)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let t = TokenSecret::generate().unwrap();
            let s = t.expose_secret();
            assert_eq!(s.len(), TOKEN_LEN);
            assert!(s.starts_with(TOKEN_PREFIX));
            assert!(is_well_formed(s), "{s}");
            let raw = URL_SAFE_NO_PAD
                .decode(s.strip_prefix(TOKEN_PREFIX).unwrap())
                .unwrap();
            assert_eq!(raw.len(), 32);
            assert!(seen.insert(s.to_owned()), "duplicate token");
        }
    }

    #[test]
    fn hash_is_sha256_of_the_whole_token() {
        let t = TokenSecret::generate().unwrap();
        let want: [u8; 32] = Sha256::digest(t.expose_secret().as_bytes()).into();
        assert_eq!(t.hash(), want);
        assert_eq!(hash_token(t.expose_secret()), want);
        // Known-answer: SHA-256("abc").
        assert_eq!(
            hash_token("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256 known answer"
        );
    }

    #[test]
    fn secret_never_printed() {
        let t = TokenSecret::generate().unwrap();
        let body = t.expose_secret().strip_prefix(TOKEN_PREFIX).unwrap();
        for out in [format!("{t:?}"), format!("{t:#?}"), format!("{t}")] {
            assert!(!out.contains(body), "{out}");
            assert!(!out.contains(TOKEN_PREFIX), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }

    #[test]
    #[allow(clippy::string_slice)]
    fn well_formed_rejects_other_shapes() {
        let t = TokenSecret::generate().unwrap();
        let s = t.expose_secret();
        assert!(!is_well_formed(&s[..TOKEN_LEN - 1]));
        assert!(!is_well_formed(&format!("{s}A")));
        assert!(!is_well_formed(&s.to_uppercase()));
        assert!(!is_well_formed(&s.replacen('_', "-", 1)));
        assert!(!is_well_formed(&format!("{}+", &s[..TOKEN_LEN - 1])));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn record_expiry() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut r = TokenRecord {
            id: TokenId::new_random(),
            tenant: TenantId::new("t").unwrap(),
            label: "l".into(),
            hash: [7; 32],
            created: now,
            expires: Some(now + chrono::Duration::seconds(10)),
            revoked: false,
            last_used: None,
        };
        assert!(r.is_active(now));
        assert!(r.is_active(now + chrono::Duration::seconds(9)));
        assert!(!r.is_active(now + chrono::Duration::seconds(10)));
        r.expires = None;
        assert!(r.is_active(now + chrono::Duration::days(10_000)));
        r.revoked = true;
        assert!(!r.is_active(now));
        let dbg = format!("{r:?}");
        assert!(dbg.contains(REDACTED));
        assert!(!dbg.contains("7, 7"));
    }

    #[test]
    fn token_id_round_trips() {
        let id = TokenId::new_random();
        assert_eq!(id.to_string().parse::<TokenId>().unwrap(), id);
        assert!("not-a-uuid".parse::<TokenId>().is_err());
    }
}
