//! The host's veto on writes: a [`WritePolicy`] sees every create, replace, patch and delete
//! after the service has validated it and before the store commits it, and may refuse it with
//! a SCIM error. A refused write changes nothing.

use async_trait::async_trait;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ScimError;
use crate::events::ToleranceNote;
use crate::resource::{MemberRef, MembershipDelta, ResourceId};
use crate::schema::ResourceDef;
use crate::tenant::TenantId;

/// What a write is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteOperation {
    /// `POST` of a new resource (also a bulk `POST`).
    Create,
    /// `PUT`: the whole resource replaced.
    Replace,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

/// A write as a [`WritePolicy`] sees it: validated and normalised, not yet committed.
#[derive(Debug)]
#[non_exhaustive]
pub struct PendingWrite<'a> {
    /// The tenant written to.
    pub tenant: &'a TenantId,
    /// Who writes (the token, or the host's principal).
    pub principal: &'a Principal,
    /// The resource type.
    pub resource_type: &'a ResourceDef,
    /// The operation.
    pub operation: WriteOperation,
    /// The resource's id (for a create, the id it is about to get).
    pub id: &'a ResourceId,
    /// The document as it will be stored (canonical names, extensions under their URNs,
    /// without `id`, `meta` and `members`): after a create, replace or patch, the new
    /// document; `None` for a delete, and for a patch that changes only members.
    pub document: Option<&'a Value>,
    /// The document as stored now; `None` for a create.
    pub current: Option<&'a Value>,
    /// The members a create sets, or a replace sets in place of the current ones.
    pub members: Option<&'a [MemberRef]>,
    /// The membership change of a patch.
    pub membership_delta: Option<&'a MembershipDelta>,
    /// What the tolerance layer dropped or rewrote in the request so far (unknown
    /// attributes, read-only input, string booleans...), as the provisioning log records it.
    /// Members that are not resources of the tenant are only known once the store has
    /// looked (they are in the write's event).
    pub tolerances: &'a [ToleranceNote],
}

/// A host's rule on writes, called before each create, replace, patch and delete commits
/// (see [`ScimServiceBuilder::write_policy`](super::ScimServiceBuilder::write_policy)).
///
/// Return `Ok(())` to let the write go on, or the SCIM error the client gets: for example
/// [`ScimError::Forbidden`] (403) for a protected account, [`ScimError::InvalidValue`] (400
/// `invalidValue`) for an e-mail domain the product does not allow, or
/// [`ScimError::Conflict`] (409) when a seat limit is reached. A refused write changes
/// nothing. The policy is called again when a write is retried after losing a version race.
///
/// Classic uses:
/// - **seat limits**: refuse a `Create` (and a `Patch`/`Replace` that sets `active: true`)
///   when the tenant has no seat left;
/// - **domain allow-lists**: refuse a document whose `userName` or `emails` are outside the
///   domains the customer verified;
/// - **protected accounts**: refuse `Delete`, and `Patch`/`Replace` that deactivate, a
///   break-glass administrator.
///
/// ```
/// use scimkit::service::{PendingWrite, WriteOperation, WritePolicy};
/// use scimkit::error::ScimError;
///
/// struct ProtectBreakGlass;
///
/// #[async_trait::async_trait]
/// impl WritePolicy for ProtectBreakGlass {
///     async fn check(&self, write: &PendingWrite<'_>) -> Result<(), ScimError> {
///         let name = |doc: Option<&serde_json::Value>| {
///             doc.and_then(|d| d.get("userName")).and_then(|v| v.as_str()).map(str::to_owned)
///         };
///         let target = name(write.current).or_else(|| name(write.document));
///         if write.operation != WriteOperation::Create
///             && target.as_deref() == Some("breakglass@example.com")
///         {
///             return Err(ScimError::Forbidden("the break-glass account is managed by hand".into()));
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait WritePolicy: Send + Sync {
    /// Accepts or refuses `write`.
    async fn check(&self, write: &PendingWrite<'_>) -> Result<(), ScimError>;
}
