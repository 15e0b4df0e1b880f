//! Reading a row of either SQL dialect by column name, so that what a row becomes (a log
//! tenant, a resource to re-key or re-fold, a page of events) is decoded once for both.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::store::StoreError;

/// A row whose columns read as `i64` and text by name: the rows of both SQL dialects.
pub(crate) trait SqlRow {
    /// Integer column `col`.
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    /// Text column `col`.
    fn text(&self, col: &str) -> Result<String, StoreError>;
    /// Text column `col`, parsed as JSON.
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(col)?).map_err(StoreError::backend)
    }
}

impl<R> SqlRow for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.try_get(col).map_err(StoreError::backend)
    }

    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.try_get(col).map_err(StoreError::backend)
    }
}
