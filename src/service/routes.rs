//! Routing: the endpoint table (RFC 7644 §3), from a path and method to the handler.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::catalog;
use super::discovery;
use super::query::parse_query;
use super::read::{get, search, ListParams};
use super::render::{list_response, respond_resource};
use super::request::{if_match, projection_from_query, read_json, read_write_body};
use super::response;
use super::write::{create, delete, patch, replace, write_payload_limit};
use super::{method_not_allowed, not_found_endpoint, Ctx, ScimService};
use crate::error::ScimError;
use crate::resource::ResourceId;
use crate::schema::ResourceDef;
use crate::settings::PatchResponse;

pub(super) async fn route(
    svc: &ScimService,
    ctx: &Ctx,
    request: Request<Bytes>,
    rest: &[String],
) -> Result<Response<Bytes>, ScimError> {
    let method = request.method().clone();
    let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let get = [Method::GET];
    let post = [Method::POST];
    match segs.as_slice() {
        [] => Err(not_found_endpoint()),
        ["ServiceProviderConfig"] => {
            allow(&method, &get)?;
            no_filter(&request)?;
            let mut doc = discovery::service_provider_config(
                &ctx.base_url,
                &ctx.tenant.settings,
                svc.inner.documentation_uri.as_deref(),
                svc.inner.cursor_timeout,
            );
            if let (Some(ext), Some(obj)) =
                (catalog::agent_extension(svc, ctx), doc.as_object_mut())
            {
                obj.insert("agentExtension".into(), ext);
            }
            Ok(response::json(StatusCode::OK, &doc))
        }
        ["ResourceTypes"] => {
            allow(&method, &get)?;
            no_filter(&request)?;
            let docs: Vec<Value> = catalog::visible_types(svc, ctx)
                .iter()
                .map(|d| discovery::resource_type_doc(&ctx.base_url, d))
                .collect();
            Ok(list_response(docs.len(), 1, docs))
        }
        ["ResourceTypes", id] => {
            allow(&method, &get)?;
            let def = svc
                .registry()
                .resource_types()
                .find(|d| d.resource_type().id == *id && catalog::visible(ctx, d))
                .ok_or_else(|| ScimError::NotFound(format!("no resource type `{id}`")))?;
            Ok(response::json(
                StatusCode::OK,
                &discovery::resource_type_doc(&ctx.base_url, def),
            ))
        }
        ["Schemas"] => {
            allow(&method, &get)?;
            no_filter(&request)?;
            let docs: Vec<Value> = svc
                .registry()
                .schemas()
                .filter(|s| catalog::schema_visible(svc, ctx, &s.id))
                .map(|s| discovery::schema_doc(&ctx.base_url, s))
                .collect();
            Ok(list_response(docs.len(), 1, docs))
        }
        ["Schemas", id] => {
            allow(&method, &get)?;
            let schema = svc
                .registry()
                .schemas()
                .find(|s| s.id == *id && catalog::schema_visible(svc, ctx, &s.id))
                .ok_or_else(|| ScimError::NotFound(format!("no schema `{id}`")))?;
            Ok(response::json(
                StatusCode::OK,
                &discovery::schema_doc(&ctx.base_url, schema),
            ))
        }
        [".search"] => {
            allow(&method, &post)?;
            let body = read_json(
                &request,
                ctx.tenant.settings.limits.max_payload_bytes,
                &ctx.tenant.settings.tolerances,
            )?;
            let params = ListParams::from_search_body(&body)?;
            let defs: Vec<Arc<ResourceDef>> = catalog::visible_types(svc, ctx);
            search(svc, ctx, &defs, &params).await
        }
        ["Bulk"] => {
            allow(&method, &post)?;
            super::bulk::handle(svc, ctx, &request).await
        }
        ["Me", tail @ ..] => {
            let Some(resolver) = &svc.inner.me else {
                return Err(ScimError::NotImplemented(
                    "/Me is not available: this service provider maps no authenticated \
                     subject to a User"
                        .to_owned(),
                ));
            };
            if !tail.is_empty() {
                return Err(not_found_endpoint());
            }
            let user = svc
                .registry()
                .user()
                .cloned()
                .ok_or_else(not_found_endpoint)?;
            let id = resolver.resolve(&ctx.principal).await?.ok_or_else(|| {
                ScimError::NotFound("the authenticated subject is not a User here".to_owned())
            })?;
            resource_endpoint(svc, ctx, &user, id, request).await
        }
        [endpoint] => {
            let def = resource_def(svc, ctx, endpoint)?;
            match method {
                Method::GET => {
                    let params = ListParams::from_query(request.uri().query().unwrap_or(""))?;
                    search(svc, ctx, std::slice::from_ref(&def), &params).await
                }
                Method::POST => {
                    catalog::refuse_client_write(&def, &method)?;
                    create(svc, ctx, &def, &request).await
                }
                _ => Err(method_not_allowed(&method, &[Method::GET, Method::POST])),
            }
        }
        [endpoint, ".search"] => {
            let def = resource_def(svc, ctx, endpoint)?;
            allow(&method, &post)?;
            let body = read_json(
                &request,
                ctx.tenant.settings.limits.max_payload_bytes,
                &ctx.tenant.settings.tolerances,
            )?;
            let params = ListParams::from_search_body(&body)?;
            search(svc, ctx, std::slice::from_ref(&def), &params).await
        }
        [endpoint, id] => {
            let def = resource_def(svc, ctx, endpoint)?;
            resource_endpoint(svc, ctx, &def, ResourceId::new(*id), request).await
        }
        _ => Err(not_found_endpoint()),
    }
}

pub(super) async fn resource_endpoint(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: ResourceId,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    if *request.method() != Method::GET {
        catalog::refuse_client_write(def, request.method())?;
    }
    match *request.method() {
        Method::GET => get(svc, ctx, def, &id, &request).await,
        Method::PUT => {
            let (limit, tol) = (
                write_payload_limit(ctx, def),
                &ctx.tenant.settings.tolerances,
            );
            let reread = || read_write_body(&request, limit, def, tol);
            let body = reread()?;
            let projection = projection_from_query(&request)?;
            // The answer carries the group's members when asked for, else while the list is
            // short (as for PATCH): a PUT of a large group is not answered with the whole
            // list again.
            let return_members = if !def.has_members() || !projection.includes(def, "members") {
                None
            } else if projection.requests(def, "members") {
                Some(usize::MAX)
            } else {
                Some(ctx.tenant.settings.limits.max_members_in_write_answer)
            };
            let precondition = if_match(request.headers())?;
            let res = replace(
                svc,
                ctx,
                def,
                &id,
                body,
                &reread,
                precondition,
                return_members,
            )
            .await?;
            respond_resource(svc, ctx, def, res, &projection, StatusCode::OK).await
        }
        Method::PATCH => {
            let body = read_json(
                &request,
                write_payload_limit(ctx, def),
                &ctx.tenant.settings.tolerances,
            )?;
            let projection = projection_from_query(&request)?;
            let res = patch(svc, ctx, def, &id, &body, if_match(request.headers())?).await?;
            let settings = &ctx.tenant.settings;
            let answer = if def.has_members() {
                settings.group_patch_response
            } else {
                settings.patch_response
            };
            // RFC 7644 §3.5.2: 204 is allowed; a client naming attributes asked for a body.
            if answer == PatchResponse::NoContent && projection.is_default() {
                return Ok(response::empty(
                    StatusCode::NO_CONTENT,
                    Some(&res.version.etag()),
                ));
            }
            let mut res = res;
            if def.has_members()
                && res.members.is_none()
                && projection.includes(def, "members")
                && !projection.requests(def, "members")
            {
                // The entire resource (RFC 7644 §3.5.2) while the member list is short; a
                // longer one is left out, so that the answer stays bounded.
                res.members = svc
                    .store()
                    .members_if_at_most(
                        ctx.id(),
                        def,
                        &res.id,
                        settings.limits.max_members_in_write_answer,
                    )
                    .await?;
            }
            respond_resource(svc, ctx, def, res, &projection, StatusCode::OK).await
        }
        Method::DELETE => {
            delete(svc, ctx, def, &id, if_match(request.headers())?).await?;
            Ok(response::empty(StatusCode::NO_CONTENT, None))
        }
        ref m => Err(method_not_allowed(
            m,
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        )),
    }
}

pub(super) fn allow(method: &Method, allowed: &[Method]) -> Result<(), ScimError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(method_not_allowed(method, allowed))
    }
}

/// RFC 7644 §4: a filter on a discovery endpoint is refused with 403, so that a client never
/// believes its conditions held.
pub(super) fn no_filter(request: &Request<Bytes>) -> Result<(), ScimError> {
    let q = parse_query(request.uri().query().unwrap_or(""))?;
    if q.iter().any(|(k, _)| k.eq_ignore_ascii_case("filter")) {
        return Err(ScimError::Forbidden(
            "filtering is not supported on discovery endpoints".to_owned(),
        ));
    }
    Ok(())
}

pub(super) fn resource_def(
    svc: &ScimService,
    ctx: &Ctx,
    endpoint: &str,
) -> Result<Arc<ResourceDef>, ScimError> {
    svc.registry()
        .resource_type_by_endpoint(endpoint)
        .filter(|d| catalog::visible(ctx, d))
        .cloned()
        .ok_or_else(not_found_endpoint)
}
