//! The tenant-store contract (tenants and tokens).

#[allow(unused_imports)]
use super::*;

/// The [`TenantStore`] contract: tenants, token records, tenant-scoped token operations,
/// cascading deletion, forward-only `last_used`, and records read back exactly as stored.
/// Run it on an empty store.
pub async fn check_tenant_store(store: &dyn TenantStore) {
    let t0 = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let tid = |s: &str| TenantId::new(s).unwrap();
    let tenant = |id: &str| Tenant {
        id: tid(id),
        display_name: id.to_owned(),
        scim_enabled: true,
        settings: Settings::default(),
        created: t0,
    };
    let record = |tenant: &str, n: u8, created: DateTime<Utc>| TokenRecord {
        id: TokenId::new_random(),
        tenant: tid(tenant),
        label: format!("r{n}"),
        hash: [n; 32],
        created,
        expires: None,
        revoked: false,
        last_used: None,
    };
    store.create_tenant(tenant("b")).await.unwrap();
    store.create_tenant(tenant("a")).await.unwrap();
    assert!(matches!(
        store.create_tenant(tenant("a")).await,
        Err(ScimError::Conflict(_))
    ));
    let ids: Vec<_> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(matches!(
        store.set_scim_enabled(&tid("zz"), false).await,
        Err(ScimError::NotFound(_))
    ));

    let r2 = record("a", 2, t0 + Duration::seconds(2));
    let r1 = record("a", 1, t0 + Duration::seconds(1));
    let rb = record("b", 3, t0);
    for r in [&r2, &r1, &rb] {
        store.insert_token(r.clone()).await.unwrap();
    }
    assert!(matches!(
        store.insert_token(record("zz", 9, t0)).await,
        Err(ScimError::NotFound(_))
    ));
    let mut same_hash = record("a", 1, t0);
    assert!(matches!(
        store.insert_token(same_hash.clone()).await,
        Err(ScimError::Conflict(_))
    ));
    same_hash.hash = [8; 32];
    same_hash.id = r1.id;
    assert!(matches!(
        store.insert_token(same_hash).await,
        Err(ScimError::Conflict(_))
    ));

    let listed: Vec<_> = store
        .list_tokens(&tid("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [r1.id, r2.id]);
    assert_eq!(
        store.find_token_by_hash(&[3; 32]).await.unwrap(),
        Some(rb.clone())
    );
    assert_eq!(store.find_token_by_hash(&[4; 32]).await.unwrap(), None);
    assert_eq!(store.get_token(&tid("b"), &r1.id).await.unwrap(), None);

    // Tenant-scoped mutation.
    assert!(!store.revoke_token(&tid("b"), &r1.id).await.unwrap());
    assert!(!store
        .set_token_expiry(&tid("b"), &r1.id, Some(t0))
        .await
        .unwrap());
    assert!(store.revoke_token(&tid("a"), &r1.id).await.unwrap());
    assert_eq!(store.revoke_all_tokens(&tid("a")).await.unwrap(), 1);
    assert!(
        !store
            .find_token_by_hash(&[3; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );

    // last_used only moves forward.
    let later = t0 + Duration::minutes(5);
    store.record_token_use(&rb.id, later).await.unwrap();
    store.record_token_use(&rb.id, t0).await.unwrap();
    store
        .record_token_use(&TokenId::new_random(), t0)
        .await
        .unwrap();
    let got = store.get_token(&tid("b"), &rb.id).await.unwrap().unwrap();
    assert_eq!(got.last_used, Some(later));

    // Deleting cascades to the tenant's tokens only.
    assert!(store.delete_tenant(&tid("a")).await.unwrap());
    assert!(!store.delete_tenant(&tid("a")).await.unwrap());
    assert_eq!(store.find_token_by_hash(&[1; 32]).await.unwrap(), None);
    assert!(store.find_token_by_hash(&[3; 32]).await.unwrap().is_some());
    // The id index was cleaned up too: the ids can be reused.
    store.create_tenant(tenant("a")).await.unwrap();
    store.insert_token(r1.clone()).await.unwrap();

    // Updates come back as stored; times keep their sub-second part.
    let t = store
        .set_display_name(&tid("b"), "Bee".into())
        .await
        .unwrap();
    assert_eq!(t.display_name, "Bee");
    let t = store.set_scim_enabled(&tid("b"), false).await.unwrap();
    assert!(!t.scim_enabled);
    let mut settings = Settings::default();
    settings.limits.max_filter_length += 1;
    settings.rate_limit = Some(crate::settings::RateLimit {
        requests_per_second: 7,
        burst: 30,
        per_token: true,
    });
    let t = store
        .update_tenant_settings(&tid("b"), settings.clone())
        .await
        .unwrap();
    assert_eq!(t.settings, settings);
    assert_eq!(store.get_tenant(&tid("b")).await.unwrap(), Some(t));
    assert!(matches!(
        store.set_display_name(&tid("zz"), "x".into()).await,
        Err(ScimError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update_tenant_settings(&tid("zz"), Settings::default())
            .await,
        Err(ScimError::NotFound(_))
    ));
    assert_eq!(store.get_tenant(&tid("zz")).await.unwrap(), None);
    let precise = t0 + Duration::nanoseconds(123_456_789);
    let mut exact = record("b", 7, precise);
    exact.expires = Some(precise + Duration::days(1));
    exact.last_used = Some(precise);
    store.insert_token(exact.clone()).await.unwrap();
    assert_eq!(
        store.get_token(&tid("b"), &exact.id).await.unwrap(),
        Some(exact.clone())
    );
    assert!(store
        .set_token_expiry(&tid("b"), &exact.id, None)
        .await
        .unwrap());
    assert_eq!(
        store
            .find_token_by_hash(&[7; 32])
            .await
            .unwrap()
            .unwrap()
            .expires,
        None
    );
}
