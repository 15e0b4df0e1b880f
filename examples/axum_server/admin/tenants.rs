//! IdP connections (tenants): SCIM on or off, and their bearer tokens.

use super::*;

// ---- connections and tokens --------------------------------------------------------------------

pub(super) async fn list_tenants(
    State(admin): State<Admin>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let mut tenants = admin.app().tenants.list_tenants().await?;
    tenants.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then_with(|| a.id.cmp(&b.id))
    });
    let list: Vec<Value> = tenants
        .iter()
        .map(|t| tenant_json(&admin, &t.id, &t.display_name, t.scim_enabled, t.created))
        .collect();
    Ok(ok_json(json!({ "tenants": list })))
}

pub(super) fn tenant_json(
    admin: &Admin,
    id: &TenantId,
    name: &str,
    enabled: bool,
    created: DateTime<Utc>,
) -> Value {
    json!({
        "id": id.as_str(),
        "name": name,
        "scimEnabled": enabled,
        "baseUrl": admin.app().service.base_url(id),
        "created": time(created),
    })
}

#[derive(Deserialize)]
pub(super) struct NewTenant {
    id: String,
    name: String,
}

/// Creates a connection with SCIM switched off: the admin switches it on when the IdP side
/// is ready (scimkit creates tenants switched on; no token exists in between, so nothing can
/// get in).
pub(super) async fn create_tenant(
    State(admin): State<Admin>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let new: NewTenant = parse(&body)?;
    let id = TenantId::new(new.id.trim()).map_err(|_| {
        ApiError::bad(
            "The connection id must be 1-64 letters, digits or '-', starting with a letter or \
             digit (it becomes the last segment of the SCIM base URL).",
        )
    })?;
    let name = new.name.trim();
    if name.is_empty() {
        return Err(ApiError::bad("Give the connection a name."));
    }
    let t = admin
        .app()
        .tenants
        .create_tenant(id.clone(), name, Settings::default())
        .await?;
    let t = admin.app().tenants.set_scim_enabled(&t.id, false).await?;
    tracing::info!(tenant = %t.id, "admin console: created connection");
    Ok((
        StatusCode::CREATED,
        ok_json(tenant_json(
            &admin,
            &t.id,
            &t.display_name,
            t.scim_enabled,
            t.created,
        )),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct Switch {
    enabled: bool,
}

pub(super) async fn set_scim(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let switch: Switch = parse(&body)?;
    let t = admin
        .app()
        .tenants
        .set_scim_enabled(&id, switch.enabled)
        .await?;
    tracing::info!(tenant = %id, enabled = switch.enabled, "admin console: SCIM switch");
    Ok(ok_json(tenant_json(
        &admin,
        &t.id,
        &t.display_name,
        t.scim_enabled,
        t.created,
    )))
}

pub(super) async fn list_tokens(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let now = Utc::now();
    let mut tokens = admin.app().tenants.list_tokens(&id).await?;
    let revoked_at = admin
        .0
        .db
        .revocations(&id)
        .await
        .map_err(ApiError::internal)?;
    tokens.reverse(); // newest first
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let status = if t.revoked {
                "revoked"
            } else if t.is_expired(now) {
                "expired"
            } else {
                "active"
            };
            let token_id = t.id.to_string();
            json!({
                "prefix": token_prefix(&token_id),
                "revokedAt": revoked_at.get(&token_id).copied().map(time),
                "id": token_id,
                "label": t.label,
                "created": time(t.created),
                "lastUsed": t.last_used.map(time),
                "expires": t.expires.map(time),
                "status": status,
            })
        })
        .collect();
    Ok(ok_json(json!({ "tokens": list })))
}

/// What the console shows to tell tokens apart: the first 8 characters of the token's
/// public id (never anything of the secret).
pub(super) fn token_prefix(id: &str) -> String {
    id.chars().take(8).collect()
}

#[derive(Deserialize)]
pub(super) struct NewToken {
    #[serde(default)]
    label: String,
}

/// Issues a token and returns its secret: the only response that ever carries it.
pub(super) async fn issue_token(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let new: NewToken = parse(&body)?;
    let label = match new.label.trim() {
        "" => format!("generated in the admin console {}", time(Utc::now())),
        l => l.to_owned(),
    };
    let (record, secret) = admin.app().tenants.issue_token(&id, label, None).await?;
    tracing::info!(tenant = %id, token = %record.id, "admin console: issued a token");
    let mut r = ok_json(json!({
        "id": record.id.to_string(),
        "prefix": token_prefix(&record.id.to_string()),
        "label": record.label,
        "token": secret.expose_secret(),
        "baseUrl": admin.app().service.base_url(&id),
    }));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

pub(super) async fn revoke_token(
    State(admin): State<Admin>,
    Path((tenant, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let token: TokenId = token
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "No such token."))?;
    admin.app().tenants.revoke_token(&id, &token).await?;
    admin
        .0
        .db
        .record_revocation(&id, &token.to_string(), Utc::now())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(tenant = %id, %token, "admin console: revoked a token");
    Ok(StatusCode::NO_CONTENT.into_response())
}
