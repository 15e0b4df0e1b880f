//! Writes: create, replace, patch and delete (RFC 7644 §3.3, §3.5, §3.6), with the
//! optimistic-concurrency retry that keeps racing IdP calls from losing one another, and
//! membership deltas that commute.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{json, Value};

use super::policy::{PendingWrite, WriteOperation};
use super::render::respond_resource;
use super::request::{projection_from_query, read_write_body, Precondition};
use super::{Ctx, ScimService};
use crate::error::ScimError;
use crate::events::{collect_notes, merge_note, ToleranceKind, ToleranceNote};
use crate::patch::{self, PatchRequest};
use crate::resource::{
    normalize_write, split_members, unique_keys, MembershipDelta, ResourceId, UnknownMembers,
    WriteBody, WriteMode,
};
use crate::schema::ResourceDef;
use crate::store::{NewDocument, StoreError, StoredResource, UpdateKind, UpdateRequest};

/// How many times a PATCH or PUT without `If-Match` re-reads and re-applies after losing a
/// version race before it gives up with 412. Attempts are spaced by a jittered exponential
/// pause (see [`retry_pause`]), so that writers racing on one resource spread out.
pub(super) const MAX_WRITE_ATTEMPTS: u32 = 10;

/// The pause before attempt `attempt + 1` (`attempt` >= 1): uniformly random up to
/// 1 ms * 2^(attempt-1), at most 32 ms.
pub(super) fn retry_pause(attempt: u32) -> std::time::Duration {
    let ceiling_us: u64 = 1000u64 << attempt.saturating_sub(1).min(5);
    let mut bytes = [0u8; 8];
    let r = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => ceiling_us / 2,
    };
    std::time::Duration::from_micros(r % (ceiling_us + 1))
}

/// The largest body accepted for a write to resources of type `def`: types with a
/// membership relation take full member lists (see [`Limits::max_membership_payload_bytes`]).
///
/// [`Limits::max_membership_payload_bytes`]: crate::settings::Limits::max_membership_payload_bytes
pub(super) fn write_payload_limit(ctx: &Ctx, def: &ResourceDef) -> usize {
    let limits = &ctx.tenant.settings.limits;
    if def.has_members() {
        limits
            .max_membership_payload_bytes
            .max(limits.max_payload_bytes)
    } else {
        limits.max_payload_bytes
    }
}

/// Reports the members a write skipped under the tolerance (they could never resolve: ids
/// are issued here), so that the host's log shows what the identity provider sent.
pub(super) fn report_skipped(ctx: &Ctx, def: &ResourceDef, res: &StoredResource) {
    if res.skipped_members.is_empty() {
        return;
    }
    let first: Vec<&str> = res
        .skipped_members
        .iter()
        .take(5)
        .map(ResourceId::as_str)
        .collect();
    let n = res.skipped_members.len();
    let attr = def.membership().map_or("members", |a| a.name.as_str());
    let mut note = ToleranceNote::new(
        ToleranceKind::UnknownMembersDropped,
        attr,
        format!(
            "dropped {n} unknown member id{} of {} {} (first: {})",
            if n == 1 { "" } else { "s" },
            def.name(),
            res.id,
            first.join(", ")
        ),
    );
    note.count = u64::try_from(n).unwrap_or(u64::MAX);
    ctx.add_notes(vec![note]);
    tracing::info!(
        target: "scimkit::provisioning",
        tenant = %ctx.id(),
        resource_type = def.name(),
        id = %res.id,
        skipped = res.skipped_members.len(),
        first = ?first,
        "skipped member ids that are not resources of the tenant"
    );
}

/// What unknown members of a write do under the tenant's tolerances.
/// Who writes, for the change record: the id of the request's bearer token.
fn actor(ctx: &Ctx) -> Option<String> {
    ctx.principal.token_id().map(|t| t.to_string())
}

pub(super) fn unknown_members_policy(ctx: &Ctx) -> UnknownMembers {
    if ctx.tenant.settings.tolerances.ignore_unknown_members {
        UnknownMembers::Skip
    } else {
        UnknownMembers::Reject
    }
}

/// Asks the host's [`WritePolicy`](super::WritePolicy), if any, about a write; `fill` sets
/// what the operation has to show beyond the tenant, principal, type and id.
async fn check_policy<'a>(
    svc: &ScimService,
    ctx: &'a Ctx,
    def: &'a ResourceDef,
    operation: WriteOperation,
    id: &'a ResourceId,
    tolerances: &'a [ToleranceNote],
    fill: impl FnOnce(&mut PendingWrite<'a>),
) -> Result<(), ScimError> {
    let Some(policy) = &svc.inner.write_policy else {
        return Ok(());
    };
    let mut write = PendingWrite {
        tenant: ctx.id(),
        principal: &ctx.principal,
        resource_type: def,
        operation,
        id,
        document: None,
        current: None,
        members: None,
        membership_delta: None,
        tolerances,
    };
    fill(&mut write);
    policy.check(&write).await
}

// ---------------------------------------------------------------------------------------------
// Write

pub(super) async fn create_resource(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    body: WriteBody,
) -> Result<StoredResource, ScimError> {
    let (normalized, mut notes) =
        collect_notes(|| normalize_write(def, body, &ctx.tenant.settings, WriteMode::Create));
    let (mut doc, members) = normalized?;
    super::catalog::check_grants(svc, ctx, def, &mut doc, None, &mut notes).await?;
    let unique_keys = unique_keys(def, &doc, ctx.tenant.settings.unique_group_display_name);
    let req = crate::store::CreateRequest {
        id: ResourceId::generate(),
        doc,
        unique_keys,
        members: members.unwrap_or_default(),
        unknown_members: unknown_members_policy(ctx),
        now: svc.inner.clock.now(),
        actor: actor(ctx),
    };
    check_policy(
        svc,
        ctx,
        def,
        WriteOperation::Create,
        &req.id,
        &notes,
        |w| {
            w.document = Some(&req.doc);
            w.members = def.has_members().then_some(req.members.as_slice());
        },
    )
    .await?;
    let res = svc.store().create(ctx.id(), def, req).await?;
    ctx.add_notes(notes);
    ctx.remember_name(svc, &res.doc);
    report_skipped(ctx, def, &res);
    Ok(res)
}

pub(super) async fn create(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    let tol = &ctx.tenant.settings.tolerances;
    let body = read_write_body(request, write_payload_limit(ctx, def), def, tol)?;
    let projection = projection_from_query(request)?;
    let res = create_resource(svc, ctx, def, body).await?;
    respond_resource(svc, ctx, def, res, &projection, StatusCode::CREATED).await
}

/// Replaces a resource (PUT) with `body`. A write that loses a version race is applied
/// again to a body from `reread` (the body is consumed by each attempt: its member list
/// moves into the store's request rather than being copied).
#[allow(clippy::too_many_arguments)]
pub(super) async fn replace(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    body: WriteBody,
    reread: &(dyn Fn() -> Result<WriteBody, ScimError> + Sync),
    precondition: Option<Precondition>,
    return_members: Option<usize>,
) -> Result<StoredResource, ScimError> {
    let mut attempt = 0;
    let mut body = Some(body);
    loop {
        let body = match body.take() {
            Some(b) => b,
            None => reread()?,
        };
        let current = svc.store().get(ctx.id(), def, id, false).await?;
        if let Some(p) = &precondition {
            p.check(current.version)?;
        }
        let (normalized, mut notes) = collect_notes(|| {
            normalize_write(
                def,
                body,
                &ctx.tenant.settings,
                WriteMode::Replace {
                    existing: &current.doc,
                },
            )
        });
        let (mut doc, members) = normalized?;
        super::catalog::check_grants(svc, ctx, def, &mut doc, Some(&current.doc), &mut notes)
            .await?;
        let unique_keys = unique_keys(def, &doc, ctx.tenant.settings.unique_group_display_name);
        let req = UpdateRequest {
            expected_version: Some(current.version),
            document: Some(NewDocument { doc, unique_keys }),
            // RFC 7644 §3.5.1: PUT replaces the whole resource, membership included; the
            // store computes the set difference against the stored members.
            members: members.map(|add| MembershipDelta {
                clear: true,
                add,
                remove: Vec::new(),
                unknown: unknown_members_policy(ctx),
            }),
            return_members,
            kind: UpdateKind::Replace,
            now: svc.inner.clock.now(),
            actor: actor(ctx),
        };
        check_policy(svc, ctx, def, WriteOperation::Replace, id, &notes, |w| {
            w.document = req.document.as_ref().map(|d| &d.doc);
            w.current = Some(&current.doc);
            w.members = req.members.as_ref().map(|d| d.add.as_slice());
        })
        .await?;
        match svc.store().update(ctx.id(), def, id, req).await {
            Err(StoreError::VersionMismatch { .. }) if precondition.is_none() => {
                attempt += 1;
                after_lost_race(svc, attempt).await?;
            }
            other => {
                let res = other?;
                ctx.add_notes(notes);
                ctx.remember_name(svc, &res.doc);
                report_skipped(ctx, def, &res);
                return Ok(res);
            }
        }
    }
}

/// After losing version race number `attempt`: gives up with 412 when the attempts are used
/// up, else pauses before the next one.
pub(super) async fn after_lost_race(svc: &ScimService, attempt: u32) -> Result<(), ScimError> {
    if attempt >= MAX_WRITE_ATTEMPTS {
        return Err(ScimError::PreconditionFailed(
            "the resource kept changing concurrently; retry the request".to_owned(),
        ));
    }
    svc.inner.retry_pause.pause(retry_pause(attempt)).await;
    Ok(())
}

pub(super) async fn patch(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    body: &Value,
    precondition: Option<Precondition>,
) -> Result<StoredResource, ScimError> {
    let settings = &ctx.tenant.settings;
    let (request, parse_notes) = collect_notes(|| PatchRequest::from_json(body, settings));
    let request = request?;
    let needs_members = def.has_members() && request.needs_members(def);
    let mut attempt = 0;
    loop {
        let mut current = svc.store().get(ctx.id(), def, id, needs_members).await?;
        if let Some(p) = &precondition {
            p.check(current.version)?;
        }
        // The engine patches our own copy in place (restoring it exactly on error), so the
        // stored document is copied once per attempt and nothing else is.
        let mut doc = current.doc.clone();
        if let (Some(members), Some(obj)) = (current.members.take(), doc.as_object_mut()) {
            let list: Vec<Value> = members
                .into_iter()
                .map(|m| json!({"value": m.value.into_string(), "type": m.resource_type}))
                .collect();
            obj.insert("members".into(), Value::Array(list));
        }
        let (effect, apply_notes) =
            collect_notes(|| patch::apply_in_place(def, &mut doc, &request, settings));
        let effect = effect?;
        let mut notes = parse_notes.clone();
        for n in apply_notes {
            merge_note(&mut notes, n);
        }
        let delta = effect.members.filter(|d| !d.is_empty());
        if !effect.changed && delta.is_none() {
            ctx.add_notes(notes);
            ctx.remember_name(svc, &current.doc);
            return Ok(current);
        }
        let (mut new_doc, _) = split_members(def, doc)?;
        super::catalog::check_grants(svc, ctx, def, &mut new_doc, Some(&current.doc), &mut notes)
            .await?;
        let document = if new_doc == current.doc {
            None
        } else {
            let unique_keys =
                unique_keys(def, &new_doc, ctx.tenant.settings.unique_group_display_name);
            Some(NewDocument {
                doc: new_doc,
                unique_keys,
            })
        };
        if document.is_none() && delta.is_none() {
            ctx.add_notes(notes);
            ctx.remember_name(svc, &current.doc);
            return Ok(current);
        }
        // Membership changes commute: a delta that did not depend on the member list read
        // above, with no attribute change and no If-Match, is applied by the store as set
        // operations with no version precondition, so concurrent IdP calls adding and
        // removing different members never fail and never lose one another.
        let commutes = precondition.is_none() && document.is_none() && !needs_members;
        let req = UpdateRequest {
            expected_version: (!commutes).then_some(current.version),
            document,
            members: delta,
            // A `replace` of `members` resolved them all: the answer may carry a short list.
            return_members: Some(settings.limits.max_members_in_write_answer),
            kind: UpdateKind::Patch,
            now: svc.inner.clock.now(),
            actor: actor(ctx),
        };
        check_policy(svc, ctx, def, WriteOperation::Patch, id, &notes, |w| {
            w.document = req.document.as_ref().map(|d| &d.doc);
            w.current = Some(&current.doc);
            w.membership_delta = req.members.as_ref();
        })
        .await?;
        match svc.store().update(ctx.id(), def, id, req).await {
            // A concurrent writer got in between: re-read and re-apply, so that two IdP
            // calls racing on one resource both land (RFC 7644 §3.5.2 is silent; losing an
            // update would be worse).
            Err(StoreError::VersionMismatch { .. }) if precondition.is_none() => {
                attempt += 1;
                after_lost_race(svc, attempt).await?;
            }
            other => {
                let res = other?;
                ctx.add_notes(notes);
                ctx.remember_name(svc, &res.doc);
                report_skipped(ctx, def, &res);
                return Ok(res);
            }
        }
    }
}

pub(super) async fn delete(
    svc: &ScimService,
    ctx: &Ctx,
    def: &Arc<ResourceDef>,
    id: &ResourceId,
    precondition: Option<Precondition>,
) -> Result<(), ScimError> {
    // The current resource is read when a precondition, the host's policy or the event
    // (the name of what is deleted) needs it.
    let current = if precondition.is_some()
        || svc.inner.write_policy.is_some()
        || svc.inner.event_sink.is_some()
    {
        Some(svc.store().get(ctx.id(), def, id, false).await?)
    } else {
        None
    };
    let expected = match (&precondition, &current) {
        (Some(p), Some(current)) => {
            p.check(current.version)?;
            Some(current.version)
        }
        _ => None,
    };
    if let Some(current) = &current {
        check_policy(svc, ctx, def, WriteOperation::Delete, id, &[], |w| {
            w.current = Some(&current.doc);
        })
        .await?;
    }
    svc.store()
        .delete_as(
            ctx.id(),
            def,
            id,
            expected,
            svc.inner.clock.now(),
            actor(ctx).as_deref(),
        )
        .await?;
    if let Some(current) = &current {
        ctx.remember_name(svc, &current.doc);
    }
    Ok(())
}
