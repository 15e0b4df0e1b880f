//! What a `sortBy` sorts on, decided once for both SQL stores; each store writes the
//! `ORDER BY` for it in its own SQL (`order_by` in its dialect module).

use super::{extracted_column, Column};
use crate::filter::SortSpec;
use crate::schema::{ResolvedAttr, ResourceDef};

/// The value a sort orders resources by, as the engine's sorter
/// ([`crate::filter::sort_resources`]) finds it.
pub(crate) enum SortKey<'a> {
    /// Every resource ties (an unknown attribute, `meta.resourceType` or `meta.location`,
    /// which the sorter's view holds once per list or not at all, a complex attribute
    /// without a `value`): creation order.
    Creation,
    /// A column holding the value: `id`, the meta dates, an extracted string column (the
    /// folded one unless the attribute is `caseExact`).
    Column(Column),
    /// `meta.version`, compared as the view's ETag text.
    Version,
    /// A value in the stored document.
    Document(ResolvedAttr<'a>),
}

/// What `spec` sorts `rt`'s resources by, or `None` when SQL cannot order them as the
/// engine does (`members`, which the sorter sees only when loaded, and `meta` itself).
pub(crate) fn sort_key<'a>(rt: &'a ResourceDef, spec: &SortSpec) -> Option<SortKey<'a>> {
    let Some(r) = rt.resolve(&spec.by) else {
        // The sorter leaves the order unchanged for an unknown attribute.
        return Some(SortKey::Creation);
    };
    if r.extension.is_none() {
        match (r.attr.name.as_str(), r.sub.map(|s| s.name.as_str())) {
            ("id", None) => return Some(SortKey::Column(Column::Id)),
            ("meta", Some("created")) => return Some(SortKey::Column(Column::Created)),
            ("meta", Some("lastModified")) => return Some(SortKey::Column(Column::Modified)),
            ("meta", Some("resourceType" | "location")) => return Some(SortKey::Creation),
            ("meta", Some("version")) => return Some(SortKey::Version),
            ("meta", _) | ("members", _) => return None,
            (name, None) => {
                let keys = [Box::<str>::from(name)];
                if let Some(c) = extracted_column(rt, &keys, !r.attr.case_exact) {
                    return Some(SortKey::Column(c));
                }
            }
            _ => {}
        }
    }
    let target = r.target();
    if target.is_complex() && target.sub_attribute("value").is_none_or(|v| v.is_complex()) {
        // Nothing to sort by: the sorter ties every resource.
        return Some(SortKey::Creation);
    }
    Some(SortKey::Document(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::SortOrder;
    use crate::schema::{AttrPath, SchemaRegistry};

    fn key<'a>(rt: &'a ResourceDef, by: &str) -> Option<SortKey<'a>> {
        let spec = SortSpec {
            by: AttrPath::parse(by).unwrap(),
            order: SortOrder::Ascending,
        };
        sort_key(rt, &spec)
    }

    #[test]
    fn sort_keys_are_classified_once() {
        let reg = SchemaRegistry::default();
        let users = reg.user().unwrap();
        let groups = reg.group().unwrap();
        assert!(matches!(
            key(users, "id"),
            Some(SortKey::Column(Column::Id))
        ));
        assert!(matches!(
            key(users, "USERNAME"),
            Some(SortKey::Column(Column::UserName))
        ));
        assert!(matches!(
            key(users, "externalId"),
            Some(SortKey::Column(Column::ExternalId))
        ));
        assert!(matches!(
            key(users, "meta.created"),
            Some(SortKey::Column(Column::Created))
        ));
        assert!(matches!(
            key(users, "meta.lastModified"),
            Some(SortKey::Column(Column::Modified))
        ));
        assert!(matches!(key(users, "meta.version"), Some(SortKey::Version)));
        assert!(matches!(
            key(users, "meta.resourceType"),
            Some(SortKey::Creation)
        ));
        assert!(matches!(key(users, "nosuch"), Some(SortKey::Creation)));
        // A complex attribute sorts by its `value`; without one every resource ties.
        assert!(matches!(key(users, "emails"), Some(SortKey::Document(_))));
        assert!(matches!(key(users, "name"), Some(SortKey::Creation)));
        assert!(matches!(
            key(users, "name.givenName"),
            Some(SortKey::Document(_))
        ));
        assert!(matches!(
            key(groups, "displayName"),
            Some(SortKey::Column(Column::DisplayName))
        ));
        assert!(key(groups, "members.value").is_none());
        assert!(key(users, "meta").is_none());
    }
}
