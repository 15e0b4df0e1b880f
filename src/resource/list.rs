use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::LIST_RESPONSE_SCHEMA;

/// A page of resources (RFC 7644 §3.4.2): `totalResults`, `startIndex`, `itemsPerPage` are
/// always present as JSON integers, and `Resources` is always present (empty when nothing
/// matched).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T = Value> {
    /// Always `[ListResponse URN]`.
    pub schemas: Vec<String>,
    /// The number of results matched by the query, across all pages.
    pub total_results: u64,
    /// The 1-based index of the first result of this page.
    pub start_index: u64,
    /// The number of results in this page.
    pub items_per_page: u64,
    /// The results.
    #[serde(rename = "Resources")]
    pub resources: Vec<T>,
}

impl<T> ListResponse<T> {
    /// A page of `resources` starting at `start_index`, out of `total_results`.
    pub fn new(resources: Vec<T>, total_results: u64, start_index: u64) -> Self {
        ListResponse {
            schemas: vec![LIST_RESPONSE_SCHEMA.to_owned()],
            total_results,
            start_index,
            items_per_page: resources.len() as u64,
            resources,
        }
    }
}
