//! Tenants and bearer tokens (issue 5): issuance, verification, rotation, revocation,
//! expiry, cross-tenant refusal and secrets hygiene.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use http::{HeaderValue, StatusCode};
use scimkit::auth::{
    authenticate, hash_token, parse_bearer, unauthorized, www_authenticate, BearerTokenVerifier,
    Clock, ManualClock, MemoryTenantStore, Principal, Subject, TenantStore, Tenants, TokenId,
    TokenRecord, TokenSecret, TokenVerifier, TOKEN_PREFIX, UNAUTHORIZED_DETAIL,
};
use scimkit::settings::Settings;
use scimkit::tenant::{Tenant, TenantId};
use scimkit::{error::ScimError, error::ScimResult};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<CountingStore>,
    tenants: Tenants,
    verifier: BearerTokenVerifier,
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(CountingStore::default());
    let tenants = Tenants::new(store.clone(), clock.clone());
    for (id, name) in [("acme", "Acme Okta"), ("globex", "Globex Entra")] {
        tenants
            .create_tenant(tid(id), name, Settings::default())
            .await
            .unwrap();
    }
    let verifier = tenants.verifier();
    Fixture {
        clock,
        store,
        tenants,
        verifier,
    }
}

/// Asserts the one 401 every failure must be, and that nothing in it echoes `secret`.
fn assert_refused(result: ScimResult<Principal>, secret: &str, case: &str) {
    let err = match result {
        Ok(p) => panic!("{case}: accepted as {p:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(err, ScimError::Unauthorized(_)),
        "{case}: wrong error {err:?}"
    );
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{case}");
    assert_eq!(err.scim_type(), None, "{case}");
    assert_eq!(err.to_body(), unauthorized().to_body(), "{case}");
    assert_eq!(err.to_body()["detail"], UNAUTHORIZED_DETAIL, "{case}");
    assert_eq!(err.to_body()["status"], "401", "{case}");
    let body = secret.strip_prefix(TOKEN_PREFIX).unwrap_or(secret);
    for out in [
        format!("{err}"),
        format!("{err:?}"),
        err.to_body().to_string(),
    ] {
        assert!(!out.contains(body), "{case}: error echoes the token: {out}");
    }
    assert_eq!(
        www_authenticate(),
        HeaderValue::from_static("Bearer realm=\"scim\"")
    );
}

// ---------------------------------------------------------------- round trip

#[tokio::test]
async fn issue_then_verify_round_trip() {
    let f = fixture().await;
    let acme = tid("acme");
    let (record, secret) = f
        .tenants
        .issue_token(&acme, "Okta production", None)
        .await
        .unwrap();
    assert_eq!(record.tenant, acme);
    assert_eq!(record.label, "Okta production");
    assert_eq!(record.created, t0());
    assert_eq!(record.hash, hash_token(secret.expose_secret()));
    assert!(!record.revoked);
    assert!(secret.expose_secret().starts_with(TOKEN_PREFIX));

    let p = f
        .verifier
        .verify(&acme, Some(&bearer(secret.expose_secret())))
        .await
        .unwrap();
    assert_eq!(p.tenant(), &acme);
    assert_eq!(p.token_id(), Some(record.id));
    assert_eq!(p.subject(), &Subject::Token(record.id));

    // The store holds the hash only: the plaintext appears nowhere in what it keeps.
    let stored = f.tenants.list_tokens(&acme).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].hash, record.hash);
    assert_ne!(&stored[0].hash[..], secret.expose_secret().as_bytes());
}

#[tokio::test]
async fn accepted_header_spellings() {
    let f = fixture().await;
    let acme = tid("acme");
    let (_, secret) = f.tenants.issue_token(&acme, "", None).await.unwrap();
    let s = secret.expose_secret();
    for value in [
        format!("Bearer {s}"),
        format!("bearer {s}"),
        format!("BEARER {s}"),
        format!("bEaReR {s}"),
        format!("  Bearer {s}  "),
        format!("\tBearer\t{s}\t"),
        format!("Bearer   {s}"),
    ] {
        let h = HeaderValue::from_str(&value).unwrap();
        assert!(
            f.verifier.verify(&acme, Some(&h)).await.is_ok(),
            "{:?}",
            value.replace(s, "<token>")
        );
    }
}

// ---------------------------------------------------------------- malformed headers

#[tokio::test]
async fn malformed_authorization_headers_are_all_the_same_401() {
    let f = fixture().await;
    let acme = tid("acme");
    let (record, secret) = f.tenants.issue_token(&acme, "idp", None).await.unwrap();
    let s = secret.expose_secret();
    let body = s.strip_prefix(TOKEN_PREFIX).unwrap();
    let flip = |i: usize| {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let ten_kb = "a".repeat(10 * 1024);

    let b = |tail: &[u8]| [&b"Bearer "[..], tail].concat();
    let hash_hex: String = record.hash.iter().map(|x| format!("{x:02x}")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("blank", b"   ".to_vec()),
        ("basic", b"Basic YWxhZGRpbjpvcGVuc2VzYW1l".to_vec()),
        ("basic with token", format!("Basic {s}").into_bytes()),
        ("bearer alone", b"Bearer".to_vec()),
        ("bearer and space", b"Bearer ".to_vec()),
        ("no space", format!("Bearer{s}").into_bytes()),
        ("colon", format!("Bearer: {s}").into_bytes()),
        ("token without scheme", s.as_bytes().to_vec()),
        ("other scheme", format!("Token {s}").into_bytes()),
        ("two tokens", format!("Bearer {s} {s}").into_bytes()),
        (
            "two credentials",
            format!("Bearer {s}, Bearer {s}").into_bytes(),
        ),
        ("comma", b(format!("{s},").as_bytes())),
        ("auth param", b(format!("token={s}").as_bytes())),
        ("quoted", b(format!("\"{s}\"").as_bytes())),
        ("first char changed", b(flip(TOKEN_PREFIX.len()).as_bytes())),
        ("middle char changed", b(flip(30).as_bytes())),
        ("last char changed", b(flip(s.len() - 1).as_bytes())),
        ("truncated", b(&s.as_bytes()[..s.len() - 1])),
        ("half", b(&s.as_bytes()[..s.len() / 2])),
        ("extended", b(format!("{s}A").as_bytes())),
        ("padded", b(format!("{s}=").as_bytes())),
        ("upper-cased", b(s.to_uppercase().as_bytes())),
        ("lower-cased", b(s.to_lowercase().as_bytes())),
        ("prefix only", b(TOKEN_PREFIX.as_bytes())),
        ("body without prefix", b(body.as_bytes())),
        ("other prefix", b(format!("scimkit-{body}").as_bytes())),
        ("hash as token", b(hash_hex.as_bytes())),
        ("trailing obs-text", b(format!("{s}\u{e9}").as_bytes())),
        ("latin-1 byte", b(&[s.as_bytes(), &[0xff]].concat())),
        ("percent NUL", b(format!("{s}%00").as_bytes())),
        ("10 KB token", b(ten_kb.as_bytes())),
        ("token then 10 KB", b(format!("{s}{ten_kb}").as_bytes())),
        (
            "10 KB of spaces then token",
            format!("{}Bearer {s}", " ".repeat(10 * 1024)).into_bytes(),
        ),
    ];
    let mut sent = 0;
    for (name, raw) in cases {
        let header = HeaderValue::from_bytes(&raw).unwrap();
        assert_refused(f.verifier.verify(&acme, Some(&header)).await, s, name);
        sent += 1;
    }
    assert!(sent >= 30);

    // Missing header.
    assert_refused(f.verifier.verify(&acme, None).await, s, "missing");

    // Bytes the `http` crate will not even put in a HeaderValue (so no server can hand them
    // to the verifier); the parser refuses them on its own as well.
    for raw in [
        [&b"Bearer "[..], s.as_bytes(), b"\0"].concat(),
        [&b"Bearer \0"[..], s.as_bytes()].concat(),
        [&b"Bearer "[..], s.as_bytes(), b"\r\n"].concat(),
        [
            &b"Bearer "[..],
            &s.as_bytes()[..20],
            b"\0",
            &s.as_bytes()[20..],
        ]
        .concat(),
    ] {
        assert!(HeaderValue::from_bytes(&raw).is_err());
        assert_eq!(parse_bearer(&raw), None);
    }

    // After all that, the genuine token still works and nothing was recorded for the rest.
    assert!(f.verifier.verify(&acme, Some(&bearer(s))).await.is_ok());
}

// ---------------------------------------------------------------- tenancy and state

#[tokio::test]
async fn token_of_one_tenant_is_refused_on_another() {
    let f = fixture().await;
    let (acme, globex) = (tid("acme"), tid("globex"));
    let (_, a) = f.tenants.issue_token(&acme, "a", None).await.unwrap();
    let (gid, g) = f.tenants.issue_token(&globex, "g", None).await.unwrap();
    let a = a.expose_secret();
    let g = g.expose_secret();

    assert!(f.verifier.verify(&acme, Some(&bearer(a))).await.is_ok());
    assert!(f.verifier.verify(&globex, Some(&bearer(g))).await.is_ok());
    assert_refused(
        f.verifier.verify(&globex, Some(&bearer(a))).await,
        a,
        "A on B",
    );
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(g))).await,
        g,
        "B on A",
    );
    assert_refused(
        f.verifier.verify(&tid("nobody"), Some(&bearer(a))).await,
        a,
        "A on unknown tenant",
    );

    // Admin operations are tenant-scoped too: acme's admin cannot revoke globex's token.
    let err = f.tenants.revoke_token(&acme, &gid.id).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    assert!(f.tenants.get_token(&acme, &gid.id).await.is_err());
    assert!(f.verifier.verify(&globex, Some(&bearer(g))).await.is_ok());
}

#[tokio::test]
async fn disabled_tenant_refuses_valid_tokens() {
    let f = fixture().await;
    let acme = tid("acme");
    let (_, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    let s = secret.expose_secret();
    let off = f.tenants.set_scim_enabled(&acme, false).await.unwrap();
    assert!(!off.scim_enabled);
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(s))).await,
        s,
        "disabled",
    );
    // The other tenant is unaffected, and switching back on restores access.
    let (_, g) = f
        .tenants
        .issue_token(&tid("globex"), "g", None)
        .await
        .unwrap();
    assert!(f
        .verifier
        .verify(&tid("globex"), Some(&bearer(g.expose_secret())))
        .await
        .is_ok());
    f.tenants.set_scim_enabled(&acme, true).await.unwrap();
    assert!(f.verifier.verify(&acme, Some(&bearer(s))).await.is_ok());
}

#[tokio::test]
async fn expiry_follows_the_injected_clock() {
    let f = fixture().await;
    let acme = tid("acme");
    let expires = t0() + Duration::hours(1);
    let (rec, secret) = f
        .tenants
        .issue_token(&acme, "short", Some(expires))
        .await
        .unwrap();
    let (_, forever) = f.tenants.issue_token(&acme, "long", None).await.unwrap();
    assert_eq!(rec.expires, Some(expires));
    let s = secret.expose_secret();

    f.clock.advance(Duration::minutes(59));
    assert!(f.verifier.verify(&acme, Some(&bearer(s))).await.is_ok());
    f.clock.set(expires - Duration::milliseconds(1));
    assert!(f.verifier.verify(&acme, Some(&bearer(s))).await.is_ok());
    f.clock.set(expires);
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(s))).await,
        s,
        "at expiry",
    );
    f.clock.advance(Duration::days(365));
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(s))).await,
        s,
        "long after",
    );
    assert!(f
        .verifier
        .verify(&acme, Some(&bearer(forever.expose_secret())))
        .await
        .is_ok());

    // An expiry that is not in the future is refused at issuance.
    let now = f.clock.now();
    for past in [now, now - Duration::seconds(1)] {
        let err = f
            .tenants
            .issue_token(&acme, "x", Some(past))
            .await
            .unwrap_err();
        assert!(matches!(err, ScimError::InvalidValue(_)), "{err:?}");
    }
}

#[tokio::test]
async fn revoked_and_unknown_look_the_same() {
    let f = fixture().await;
    let acme = tid("acme");
    let (rec, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    let s = secret.expose_secret();
    let unknown = TokenSecret::generate().unwrap();
    f.tenants.revoke_token(&acme, &rec.id).await.unwrap();
    let revoked_err = f
        .verifier
        .verify(&acme, Some(&bearer(s)))
        .await
        .unwrap_err();
    let unknown_err = f
        .verifier
        .verify(&acme, Some(&bearer(unknown.expose_secret())))
        .await
        .unwrap_err();
    assert_eq!(revoked_err.to_body(), unknown_err.to_body());
    assert_eq!(revoked_err.to_string(), unknown_err.to_string());
    assert_refused(Err(revoked_err), s, "revoked");
    // Revoking twice is fine; a token id the tenant does not have is NotFound.
    f.tenants.revoke_token(&acme, &rec.id).await.unwrap();
    let err = f
        .tenants
        .revoke_token(&acme, &TokenId::new_random())
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------- rotation

#[tokio::test]
async fn two_active_tokens_then_revoke_one() {
    let f = fixture().await;
    let acme = tid("acme");
    let (old, old_s) = f.tenants.issue_token(&acme, "old", None).await.unwrap();
    let (new, new_s) = f.tenants.issue_token(&acme, "new", None).await.unwrap();
    assert_ne!(old.id, new.id);
    assert_ne!(old.hash, new.hash);
    let (o, n) = (old_s.expose_secret(), new_s.expose_secret());
    for s in [o, n] {
        assert!(f.verifier.verify(&acme, Some(&bearer(s))).await.is_ok());
    }
    f.tenants.revoke_token(&acme, &old.id).await.unwrap();
    assert_refused(f.verifier.verify(&acme, Some(&bearer(o))).await, o, "old");
    let p = f.verifier.verify(&acme, Some(&bearer(n))).await.unwrap();
    assert_eq!(p.token_id(), Some(new.id));

    let listed = f.tenants.list_tokens(&acme).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|r| (r.id, r.revoked)).collect();
    assert!(ids.contains(&(old.id, true)));
    assert!(ids.contains(&(new.id, false)));
}

#[tokio::test]
async fn rotate_with_overlap_then_without() {
    let f = fixture().await;
    let acme = tid("acme");
    let lifetime = Duration::days(90);
    let (old, old_s) = f
        .tenants
        .issue_token(&acme, "Okta prod", Some(t0() + lifetime))
        .await
        .unwrap();
    f.clock.advance(Duration::days(10));
    let rotated_at = f.clock.now();
    let (new, new_s) = f
        .tenants
        .rotate_token(&acme, &old.id, StdDuration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(new.label, "Okta prod");
    assert_eq!(new.expires, Some(rotated_at + lifetime));
    let (o, n) = (old_s.expose_secret(), new_s.expose_secret());
    // During the overlap both work.
    f.clock.advance(Duration::minutes(59));
    assert!(f.verifier.verify(&acme, Some(&bearer(o))).await.is_ok());
    assert!(f.verifier.verify(&acme, Some(&bearer(n))).await.is_ok());
    // After it only the new one.
    f.clock.advance(Duration::minutes(1));
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(o))).await,
        o,
        "overlap over",
    );
    assert!(f.verifier.verify(&acme, Some(&bearer(n))).await.is_ok());
    // A dead token cannot be rotated.
    let err = f
        .tenants
        .rotate_token(&acme, &old.id, StdDuration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, ScimError::Conflict(_)), "{err:?}");

    // Zero overlap: the old one stops at once.
    let (newer, newer_s) = f
        .tenants
        .rotate_token(&acme, &new.id, StdDuration::ZERO)
        .await
        .unwrap();
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(n))).await,
        n,
        "rotated",
    );
    let p = f
        .verifier
        .verify(&acme, Some(&bearer(newer_s.expose_secret())))
        .await
        .unwrap();
    assert_eq!(p.token_id(), Some(newer.id));
    assert!(f.tenants.get_token(&acme, &new.id).await.unwrap().revoked);

    // Overlap never lengthens a token's life.
    let (short, _) = f
        .tenants
        .issue_token(&acme, "s", Some(f.clock.now() + Duration::minutes(5)))
        .await
        .unwrap();
    f.tenants
        .rotate_token(&acme, &short.id, StdDuration::from_secs(86_400))
        .await
        .unwrap();
    let after = f.tenants.get_token(&acme, &short.id).await.unwrap();
    assert_eq!(after.expires, short.expires);
}

#[tokio::test]
async fn revoke_all_and_delete_tenant() {
    let f = fixture().await;
    let acme = tid("acme");
    let mut secrets = Vec::new();
    for i in 0..3 {
        secrets.push(
            f.tenants
                .issue_token(&acme, format!("t{i}"), None)
                .await
                .unwrap(),
        );
    }
    let (_, g) = f
        .tenants
        .issue_token(&tid("globex"), "g", None)
        .await
        .unwrap();
    f.tenants
        .revoke_token(&acme, &secrets[0].0.id)
        .await
        .unwrap();
    assert_eq!(f.tenants.revoke_all_tokens(&acme).await.unwrap(), 2);
    for (_, s) in &secrets {
        let s = s.expose_secret();
        assert_refused(
            f.verifier.verify(&acme, Some(&bearer(s))).await,
            s,
            "all revoked",
        );
    }
    assert!(f
        .verifier
        .verify(&tid("globex"), Some(&bearer(g.expose_secret())))
        .await
        .is_ok());
    // A token issued after revoke_all works (the recovery path after a leak).
    let (_, fresh) = f.tenants.issue_token(&acme, "fresh", None).await.unwrap();
    assert!(f
        .verifier
        .verify(&acme, Some(&bearer(fresh.expose_secret())))
        .await
        .is_ok());

    // Deleting a tenant removes its tokens; a new tenant with the same id does not inherit them.
    f.tenants.delete_tenant(&acme).await.unwrap();
    assert!(f.store.inner.list_tokens(&acme).await.unwrap().is_empty());
    f.tenants
        .create_tenant(acme.clone(), "Acme again", Settings::default())
        .await
        .unwrap();
    let s = fresh.expose_secret();
    assert_refused(
        f.verifier.verify(&acme, Some(&bearer(s))).await,
        s,
        "deleted",
    );
    assert_eq!(
        f.tenants
            .delete_tenant(&tid("nobody"))
            .await
            .unwrap_err()
            .status(),
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------- last_used coalescing

#[tokio::test]
async fn last_used_is_written_once_per_interval() {
    let f = fixture().await;
    let acme = tid("acme");
    let (rec, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    let h = bearer(secret.expose_secret());
    for _ in 0..100 {
        f.verifier.verify(&acme, Some(&h)).await.unwrap();
        f.clock.advance(Duration::milliseconds(500));
    }
    // 100 requests over 50 s: one write, at the first request.
    assert_eq!(f.store.touches.load(Ordering::SeqCst), 1);
    let r = f.tenants.get_token(&acme, &rec.id).await.unwrap();
    assert_eq!(r.last_used, Some(t0()));

    f.clock.set(t0() + Duration::seconds(60));
    f.verifier.verify(&acme, Some(&h)).await.unwrap();
    assert_eq!(f.store.touches.load(Ordering::SeqCst), 2);
    let r = f.tenants.get_token(&acme, &rec.id).await.unwrap();
    assert_eq!(r.last_used, Some(t0() + Duration::seconds(60)));

    // Failed verifications never write.
    f.verifier.verify(&acme, None).await.unwrap_err();
    f.clock.advance(Duration::hours(1));
    f.verifier
        .verify(&tid("globex"), Some(&h))
        .await
        .unwrap_err();
    assert_eq!(f.store.touches.load(Ordering::SeqCst), 2);

    // A zero interval writes on every request.
    let eager = f
        .tenants
        .verifier()
        .with_last_used_interval(StdDuration::ZERO);
    for _ in 0..3 {
        eager.verify(&acme, Some(&h)).await.unwrap();
    }
    assert_eq!(f.store.touches.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn last_used_write_failure_does_not_fail_the_request() {
    let f = fixture().await;
    let acme = tid("acme");
    let (_, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    f.store.fail_touch.store(true, Ordering::SeqCst);
    assert!(f
        .verifier
        .verify(&acme, Some(&bearer(secret.expose_secret())))
        .await
        .is_ok());
}

#[tokio::test]
async fn backend_failure_is_a_500_not_a_401() {
    let f = fixture().await;
    let acme = tid("acme");
    let (_, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    f.store.fail_lookup.store(true, Ordering::SeqCst);
    let err = f
        .verifier
        .verify(&acme, Some(&bearer(secret.expose_secret())))
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!err.to_body().to_string().contains("database"));
}

// ---------------------------------------------------------------- secrets hygiene

#[tokio::test]
async fn debug_of_secret_holding_types_shows_no_secret() {
    let f = fixture().await;
    let acme = tid("acme");
    let issued = f.tenants.issue_token(&acme, "label", None).await.unwrap();
    let (record, secret) = &issued;
    let s = secret.expose_secret();
    let body = s.strip_prefix(TOKEN_PREFIX).unwrap();
    let hash_hex: String = record.hash.iter().map(|b| format!("{b:02x}")).collect();
    let hash_dbg = format!("{:?}", record.hash);
    let hash_dbg_inner = hash_dbg.trim_matches(['[', ']']);
    let principal = f.verifier.verify(&acme, Some(&bearer(s))).await.unwrap();
    let listed = f.tenants.list_tokens(&acme).await.unwrap();
    let err = f
        .verifier
        .verify(&acme, Some(&bearer(&format!("{s}x"))))
        .await
        .unwrap_err();

    let outputs = [
        format!("{secret:?}"),
        format!("{secret:#?}"),
        format!("{secret}"),
        format!("{record:?}"),
        format!("{record:#?}"),
        format!("{issued:?}"),
        format!("{listed:?}"),
        format!("{principal:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{:?}", f.verifier),
        format!("{:?}", f.tenants),
        format!("{:?}", f.store.inner),
    ];
    for out in &outputs {
        assert!(!out.contains(body), "secret in {out}");
        assert!(!out.contains(&hash_hex), "hash in {out}");
        assert!(!out.contains(hash_dbg_inner), "hash in {out}");
    }
    assert_eq!(format!("{secret}"), "[redacted]");
    assert!(format!("{secret:?}").contains("[redacted]"));
    assert!(format!("{record:?}").contains("hash: [redacted]"));
}

// ---------------------------------------------------------------- admin validation

#[tokio::test]
async fn admin_input_is_validated() {
    let f = fixture().await;
    let acme = tid("acme");
    let err = f
        .tenants
        .create_tenant(acme.clone(), "dup", Settings::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::CONFLICT);
    for bad in ["", "   ", "a\nb", "x\u{0}"] {
        let err = f
            .tenants
            .create_tenant(tid("new"), bad, Settings::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ScimError::InvalidValue(_)),
            "{bad:?}: {err:?}"
        );
    }
    for bad in ["a\u{7}", &"x".repeat(257)] {
        let err = f.tenants.issue_token(&acme, bad, None).await.unwrap_err();
        assert!(matches!(err, ScimError::InvalidValue(_)), "{err:?}");
        assert!(err.detail().contains("label"), "{err:?}");
    }
    let err = f
        .tenants
        .issue_token(&tid("nobody"), "x", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    assert!(err.detail().contains("nobody"));
    // Nothing was stored by the refused calls.
    assert!(f.tenants.list_tokens(&acme).await.unwrap().is_empty());
    assert_eq!(f.tenants.list_tenants().await.unwrap().len(), 2);

    let t = f
        .tenants
        .update_settings(&acme, Settings::strict())
        .await
        .unwrap();
    assert_eq!(t.settings, Settings::strict());
    let t = f.tenants.rename_tenant(&acme, "Acme (Okta)").await.unwrap();
    assert_eq!(t.display_name, "Acme (Okta)");
    assert_eq!(f.tenants.get_tenant(&acme).await.unwrap(), t);
    assert_eq!(t.created, t0());
}

// ---------------------------------------------------------------- pluggability

/// A host's own verifier: an existing API-key table, by key name.
struct ApiKeys(Vec<(TenantId, String, &'static str)>);

#[async_trait]
impl TokenVerifier for ApiKeys {
    async fn verify(
        &self,
        tenant: &TenantId,
        authorization: Option<&HeaderValue>,
    ) -> ScimResult<Principal> {
        let token = authorization
            .and_then(|h| parse_bearer(h.as_bytes()))
            .ok_or_else(unauthorized)?;
        self.0
            .iter()
            .find(|(t, key, _)| t == tenant && key == token)
            .map(|(t, _, name)| Principal::host(t.clone(), *name))
            .ok_or_else(unauthorized)
    }
}

#[tokio::test]
async fn host_verifiers_plug_in_as_trait_objects() {
    let f = fixture().await;
    let acme = tid("acme");
    let (_, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    let verifiers: Vec<Arc<dyn TokenVerifier>> = vec![
        Arc::new(f.tenants.verifier()),
        Arc::new(ApiKeys(vec![(
            acme.clone(),
            "legacy-key-1".into(),
            "ci-bot",
        )])),
    ];
    let ok = verifiers[0]
        .verify(&acme, Some(&bearer(secret.expose_secret())))
        .await
        .unwrap();
    assert!(matches!(ok.subject(), Subject::Token(_)));
    let host = verifiers[1]
        .verify(&acme, Some(&bearer("legacy-key-1")))
        .await
        .unwrap();
    assert_eq!(host.subject(), &Subject::Host("ci-bot".into()));
    assert_eq!(host.token_id(), None);
    assert!(verifiers[1]
        .verify(&tid("globex"), Some(&bearer("legacy-key-1")))
        .await
        .is_err());
}

/// A broken host verifier that always vouches for tenant "acme".
struct Confused;

#[async_trait]
impl TokenVerifier for Confused {
    async fn verify(&self, _: &TenantId, _: Option<&HeaderValue>) -> ScimResult<Principal> {
        Ok(Principal::host(tid("acme"), "anyone"))
    }
}

#[tokio::test]
async fn authenticate_guards_header_count_and_tenant() {
    let f = fixture().await;
    let acme = tid("acme");
    let (rec, secret) = f.tenants.issue_token(&acme, "x", None).await.unwrap();
    let s = secret.expose_secret();
    let mut headers = http::HeaderMap::new();
    assert_refused(authenticate(&f.verifier, &acme, &headers).await, s, "none");
    headers.insert(http::header::AUTHORIZATION, bearer(s));
    let p = authenticate(&f.verifier, &acme, &headers).await.unwrap();
    assert_eq!(p.token_id(), Some(rec.id));
    // A second Authorization header, even a copy of the first, is refused.
    headers.append(http::header::AUTHORIZATION, bearer(s));
    assert_refused(
        authenticate(&f.verifier, &acme, &headers).await,
        s,
        "two headers",
    );
    // A verifier answering for another tenant is overruled.
    let mut one = http::HeaderMap::new();
    one.insert(http::header::AUTHORIZATION, bearer("whatever"));
    assert!(authenticate(&Confused, &acme, &one).await.is_ok());
    assert_refused(
        authenticate(&Confused, &tid("globex"), &one).await,
        s,
        "confused verifier",
    );
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tenants>();
    check::<BearerTokenVerifier>();
    check::<MemoryTenantStore>();
    check::<TokenSecret>();
    check::<TokenRecord>();
    check::<Principal>();
    check::<Arc<dyn TokenVerifier>>();
    check::<Arc<dyn TenantStore>>();
    check::<Arc<dyn Clock>>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verification_and_revocation() {
    let f = fixture().await;
    let acme = tid("acme");
    let (keep, keep_s) = f.tenants.issue_token(&acme, "keep", None).await.unwrap();
    let (gone, gone_s) = f.tenants.issue_token(&acme, "gone", None).await.unwrap();
    let verifier = Arc::new(f.tenants.verifier());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let v = verifier.clone();
        let acme = acme.clone();
        let h = bearer(keep_s.expose_secret());
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                assert_eq!(
                    v.verify(&acme, Some(&h)).await.unwrap().token_id(),
                    Some(keep.id)
                );
            }
        }));
    }
    f.tenants.revoke_token(&acme, &gone.id).await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(verifier
        .verify(&acme, Some(&bearer(gone_s.expose_secret())))
        .await
        .is_err());
}

// ---------------------------------------------------------------- property tests

mod props {
    use super::*;
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes: no panic, and whatever is accepted is one b64token.
        #[test]
        fn parse_bearer_is_total(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(tok) = parse_bearer(&raw) {
                prop_assert!(!tok.is_empty());
                prop_assert!(tok.bytes().all(|b| b.is_ascii_alphanumeric()
                    || b"-._~+/=".contains(&b)));
            }
        }

        /// Any header value a server could deliver is refused with the one 401 unless it
        /// carries the real token.
        #[test]
        fn random_headers_are_refused(s in "[ -~\t]{0,120}") {
            let rt = runtime();
            rt.block_on(async {
                let f = fixture().await;
                let (_, secret) = f.tenants.issue_token(&tid("acme"), "x", None).await.unwrap();
                let h = HeaderValue::from_str(&s).unwrap();
                let r = f.verifier.verify(&tid("acme"), Some(&h)).await;
                prop_assert!(!s.contains(secret.expose_secret()));
                prop_assert!(r.is_err());
                assert_refused(r, secret.expose_secret(), &s);
                Ok(())
            })?;
        }

        /// Any single-character change of a real token is refused.
        #[test]
        fn mutated_tokens_are_refused(pos in 0usize..51, c in "[A-Za-z0-9_-]") {
            let rt = runtime();
            rt.block_on(async {
                let f = fixture().await;
                let (_, secret) = f.tenants.issue_token(&tid("acme"), "x", None).await.unwrap();
                let s = secret.expose_secret();
                let mut b = s.as_bytes().to_vec();
                b[pos] = c.as_bytes()[0];
                let mutated = String::from_utf8(b).unwrap();
                let r = f.verifier.verify(&tid("acme"), Some(&bearer(&mutated))).await;
                prop_assert_eq!(r.is_ok(), mutated == s);
                Ok(())
            })?;
        }
    }
}

// ---------------------------------------------------------------- service

/// With the built-in verifier the service reads the tenant once per request (the verifier
/// hands over the record it checked), not twice: on a database that is a query less.
#[tokio::test]
async fn the_service_reads_the_tenant_once_per_request() {
    let f = fixture().await;
    let (_, secret) = f
        .tenants
        .issue_token(&tid("acme"), "okta", None)
        .await
        .unwrap();
    let service = scimkit::service::ScimService::builder(
        "https://app.example.com/scim/v2",
        Arc::new(scimkit::store::MemoryStore::new()),
        f.store.clone(),
    )
    .build()
    .unwrap();
    let request = |token: &str| {
        http::Request::get("/scim/v2/acme/Users")
            .header("Authorization", format!("Bearer {token}"))
            .body(bytes::Bytes::new())
            .unwrap()
    };
    let before = f.store.tenant_reads.load(Ordering::SeqCst);
    let r = service.handle(request(secret.expose_secret())).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(f.store.tenant_reads.load(Ordering::SeqCst) - before, 1);
    // Switched off, the same token is refused (the record the verifier read says so).
    f.tenants
        .set_scim_enabled(&tid("acme"), false)
        .await
        .unwrap();
    let r = service.handle(request(secret.expose_secret())).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A host verifier hands back no tenant record: the service reads it itself, once, and
/// still refuses a tenant with SCIM switched off.
#[tokio::test]
async fn the_service_reads_the_tenant_for_host_verifiers() {
    let f = fixture().await;
    let acme = tid("acme");
    let service = scimkit::service::ScimService::builder(
        "https://app.example.com/scim/v2",
        Arc::new(scimkit::store::MemoryStore::new()),
        f.store.clone(),
    )
    .verifier(Arc::new(ApiKeys(vec![(acme.clone(), "k1".into(), "ci")])))
    .build()
    .unwrap();
    let request = || {
        http::Request::get("/scim/v2/acme/Users")
            .header("Authorization", "Bearer k1")
            .body(bytes::Bytes::new())
            .unwrap()
    };
    let before = f.store.tenant_reads.load(Ordering::SeqCst);
    assert_eq!(service.handle(request()).await.status(), StatusCode::OK);
    assert_eq!(f.store.tenant_reads.load(Ordering::SeqCst) - before, 1);
    f.tenants.set_scim_enabled(&acme, false).await.unwrap();
    assert_eq!(
        service.handle(request()).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------- test store

/// A MemoryTenantStore that counts `record_token_use` calls and can be made to fail.
#[derive(Default)]
struct CountingStore {
    inner: MemoryTenantStore,
    touches: AtomicUsize,
    tenant_reads: AtomicUsize,
    fail_touch: std::sync::atomic::AtomicBool,
    fail_lookup: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl TenantStore for CountingStore {
    async fn create_tenant(&self, tenant: Tenant) -> ScimResult<()> {
        self.inner.create_tenant(tenant).await
    }
    async fn get_tenant(&self, id: &TenantId) -> ScimResult<Option<Tenant>> {
        self.tenant_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_tenant(id).await
    }
    async fn list_tenants(&self) -> ScimResult<Vec<Tenant>> {
        self.inner.list_tenants().await
    }
    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: Settings,
    ) -> ScimResult<Tenant> {
        self.inner.update_tenant_settings(id, settings).await
    }
    async fn set_scim_enabled(&self, id: &TenantId, enabled: bool) -> ScimResult<Tenant> {
        self.inner.set_scim_enabled(id, enabled).await
    }
    async fn set_display_name(&self, id: &TenantId, name: String) -> ScimResult<Tenant> {
        self.inner.set_display_name(id, name).await
    }
    async fn delete_tenant(&self, id: &TenantId) -> ScimResult<bool> {
        self.inner.delete_tenant(id).await
    }
    async fn insert_token(&self, record: TokenRecord) -> ScimResult<()> {
        self.inner.insert_token(record).await
    }
    async fn find_token_by_hash(&self, hash: &[u8; 32]) -> ScimResult<Option<TokenRecord>> {
        if self.fail_lookup.load(Ordering::SeqCst) {
            return Err(ScimError::internal_msg("database unreachable"));
        }
        self.inner.find_token_by_hash(hash).await
    }
    async fn get_token(&self, t: &TenantId, id: &TokenId) -> ScimResult<Option<TokenRecord>> {
        self.inner.get_token(t, id).await
    }
    async fn list_tokens(&self, t: &TenantId) -> ScimResult<Vec<TokenRecord>> {
        self.inner.list_tokens(t).await
    }
    async fn set_token_expiry(
        &self,
        t: &TenantId,
        id: &TokenId,
        e: Option<DateTime<Utc>>,
    ) -> ScimResult<bool> {
        self.inner.set_token_expiry(t, id, e).await
    }
    async fn revoke_token(&self, t: &TenantId, id: &TokenId) -> ScimResult<bool> {
        self.inner.revoke_token(t, id).await
    }
    async fn revoke_all_tokens(&self, t: &TenantId) -> ScimResult<usize> {
        self.inner.revoke_all_tokens(t).await
    }
    async fn record_token_use(&self, id: &TokenId, at: DateTime<Utc>) -> ScimResult<()> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        if self.fail_touch.load(Ordering::SeqCst) {
            return Err(ScimError::internal_msg("database read-only"));
        }
        self.inner.record_token_use(id, at).await
    }
}
