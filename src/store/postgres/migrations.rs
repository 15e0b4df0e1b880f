//! The database schema, as versioned migrations applied at start-up.
//!
//! Every migration runs once, in order, on one connection that first takes a session
//! advisory lock: two service instances starting at once against an empty database serialise
//! there, and the second finds the work done. An SQL migration runs in one transaction with
//! the row that records it in `scimkit_migrations`; a migration done in Rust (migration 3,
//! [`super::refold`]) runs in bounded batches, each its own transaction, is idempotent, and
//! is recorded once all its batches are done. The lock is released when the connection
//! closes, also when a migration fails. A database migrated by a newer scimkit (a version this
//! code does not know) is used as it is, with a warning: migrations only ever add.
//!
//! Text columns that are compared or sorted use the `C` collation, so that comparisons are by
//! code point, exactly as the filter engine compares strings.

use sqlx::{Connection, PgConnection, PgPool, Row};

use super::db_err;
use crate::store::StoreError;

/// The advisory lock key of scimkit's migrations (`scimkit` in ASCII).
const LOCK_KEY: i64 = 0x0073_6369_6d6b_6974;

/// One schema migration.
pub(crate) struct Migration {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) step: Step,
}

/// What a migration does.
pub(crate) enum Step {
    /// Statements run in one transaction.
    Sql(&'static str),
    /// The folded copies re-computed with Unicode full case folding ([`super::refold`]).
    Refold,
    /// The precomputed sort keys of the existing resources ([`super::sort_keys`]).
    SortKeys,
}

/// The migrations, in order. Never edit an applied one: add a new version.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "resources, memberships, uniqueness, change feed, tenants, tokens",
        step: Step::Sql(
            r#"
CREATE TABLE scimkit_resources (
    tenant            text COLLATE "C" NOT NULL,
    id                text COLLATE "C" NOT NULL,
    ord               bigint GENERATED ALWAYS AS IDENTITY,
    resource_type     text COLLATE "C" NOT NULL,
    version           bigint NOT NULL,
    created           bigint NOT NULL,
    last_modified     bigint NOT NULL,
    doc               jsonb NOT NULL,
    doc_fold          jsonb NOT NULL,
    user_name_fold    text COLLATE "C",
    external_id       text COLLATE "C",
    display_name_fold text COLLATE "C",
    display           text COLLATE "C",
    PRIMARY KEY (tenant, id)
);
CREATE INDEX scimkit_resources_ord ON scimkit_resources (tenant, resource_type, ord);
CREATE INDEX scimkit_resources_user_name
    ON scimkit_resources (tenant, resource_type, user_name_fold, ord);
CREATE INDEX scimkit_resources_external_id
    ON scimkit_resources (tenant, resource_type, external_id);
CREATE INDEX scimkit_resources_display_name
    ON scimkit_resources (tenant, resource_type, display_name_fold, ord);

CREATE TABLE scimkit_unique (
    tenant        text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    attribute     text COLLATE "C" NOT NULL,
    value_hash    bytea NOT NULL,
    id            text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, resource_type, attribute, value_hash),
    FOREIGN KEY (tenant, id) REFERENCES scimkit_resources (tenant, id) ON DELETE CASCADE
);
CREATE INDEX scimkit_unique_owner ON scimkit_unique (tenant, id);

CREATE TABLE scimkit_members (
    tenant      text COLLATE "C" NOT NULL,
    group_id    text COLLATE "C" NOT NULL,
    member_id   text COLLATE "C" NOT NULL,
    member_fold text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, group_id, member_id),
    FOREIGN KEY (tenant, group_id) REFERENCES scimkit_resources (tenant, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, member_id) REFERENCES scimkit_resources (tenant, id) ON DELETE CASCADE
);
CREATE INDEX scimkit_members_reverse ON scimkit_members (tenant, member_id, group_id);

CREATE TABLE scimkit_feed_seq (
    tenant   text COLLATE "C" PRIMARY KEY,
    last_seq bigint NOT NULL
);
CREATE TABLE scimkit_changes (
    tenant        text COLLATE "C" NOT NULL,
    seq           bigint NOT NULL,
    resource_type text NOT NULL,
    id            text NOT NULL,
    kind          text NOT NULL,
    version       bigint NOT NULL,
    at            bigint NOT NULL,
    PRIMARY KEY (tenant, seq)
);

CREATE TABLE scimkit_tenants (
    id           text COLLATE "C" PRIMARY KEY,
    display_name text NOT NULL,
    scim_enabled boolean NOT NULL,
    settings     text NOT NULL,
    created      bigint NOT NULL
);
CREATE TABLE scimkit_tokens (
    id        text COLLATE "C" PRIMARY KEY,
    tenant    text COLLATE "C" NOT NULL REFERENCES scimkit_tenants (id) ON DELETE CASCADE,
    label     text NOT NULL,
    hash      bytea NOT NULL UNIQUE,
    created   bigint NOT NULL,
    expires   bigint,
    revoked   boolean NOT NULL,
    last_used bigint
);
CREATE INDEX scimkit_tokens_tenant ON scimkit_tokens (tenant, created, id);

-- RFC 7644 §3.4.2.3 sorting: a multi-valued attribute sorts by its primary value, else its
-- first one (the engine's `pick`).
CREATE FUNCTION scimkit_pick(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN jsonb_typeof(v) = 'array' THEN
        COALESCE(
            (SELECT a.e FROM jsonb_array_elements(v) WITH ORDINALITY AS a(e, n)
             WHERE a.e -> 'primary' = 'true'::jsonb ORDER BY a.n LIMIT 1),
            v -> 0)
    ELSE v END
$fn$;
"#,
        ),
    },
    Migration {
        version: 2,
        name: "change feed prune horizon",
        step: Step::Sql(
            r#"
-- Every change of the tenant up to pruned_through was removed by pruning.
ALTER TABLE scimkit_feed_seq ADD COLUMN pruned_through bigint NOT NULL DEFAULT 0;
"#,
        ),
    },
    Migration {
        version: 3,
        name: "folded copies re-folded with Unicode full case folding",
        step: Step::Refold,
    },
    Migration {
        version: 4,
        name: "dateTime sort key",
        step: Step::Sql(
            r#"
-- The instant a JSON string denotes when it reads as an RFC 3339 dateTime (without an offset:
-- UTC), as the engine's parse_date_time reads it; NULL otherwise (never an error), so that a
-- sort by a dateTime attribute is chronological in SQL. Microsecond precision.
CREATE FUNCTION scimkit_date_key(t text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    IF t IS NULL OR t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$' THEN
        RETURN NULL;
    END IF;
    IF t ~ '([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
        RETURN t::timestamptz;
    END IF;
    RETURN (t || 'Z')::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$fn$;
"#,
        ),
    },
    Migration {
        version: 5,
        name: "statistics refreshed every 10,000 changed rows",
        step: Step::Sql(
            r#"
-- Autovacuum analyses a table after 10 % of it changed by default. In a table shared by many
-- tenants, an identity provider's first sync of a new 100,000-user tenant into a table of a
-- million rows never reaches that, and the planner, believing the tenant has about one row,
-- picks a tenant-prefixed secondary index for look-ups by id and filters every row of the
-- tenant (measured: 12-18 ms instead of 0.06 ms per read at 100,000 users). A fixed
-- threshold keeps the statistics of a fresh tenant current within its first minutes.
ALTER TABLE scimkit_resources SET (autovacuum_analyze_scale_factor = 0.0,
                                   autovacuum_analyze_threshold = 10000);
ALTER TABLE scimkit_members SET (autovacuum_analyze_scale_factor = 0.0,
                                 autovacuum_analyze_threshold = 10000);
ALTER TABLE scimkit_unique SET (autovacuum_analyze_scale_factor = 0.0,
                                autovacuum_analyze_threshold = 10000);
"#,
        ),
    },
    Migration {
        version: 6,
        name: "provisioning log",
        step: Step::Sql(
            r#"
-- The provisioning log (scimkit::store::ProvisioningLog): events per tenant by position
-- (1, 2, ... per tenant) with the columns its filters read, and one row per tenant with the
-- last position, the prune horizon and the health counters, updated on append.
CREATE TABLE scimkit_provisioning_log (
    tenant        text COLLATE "C" NOT NULL,
    seq           bigint NOT NULL,
    time_micros   bigint NOT NULL,
    outcome       text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C",
    search        text COLLATE "C" NOT NULL,
    event         jsonb NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE TABLE scimkit_provisioning_log_tenants (
    tenant         text COLLATE "C" PRIMARY KEY,
    last_seq       bigint NOT NULL,
    pruned_through bigint NOT NULL,
    health         jsonb NOT NULL
);
"#,
        ),
    },
    Migration {
        version: 7,
        name: "membership delta and actor of a change record",
        step: Step::Sql(
            r#"
-- The members a change added and removed (scimkit::feed::MemberChanges as JSON text), NULL
-- when the write did not touch a membership, and who wrote (the token id, NULL when
-- unknown). Existing rows keep NULL.
ALTER TABLE scimkit_changes ADD COLUMN members text;
ALTER TABLE scimkit_changes ADD COLUMN actor text;
"#,
        ),
    },
    Migration {
        version: 8,
        name: "keyset paging indexes",
        step: Step::Sql(
            r#"
-- Keyset paging (RFC 9865 cursors): each sort a cursor walks by index has an index ending in
-- id, so that `WHERE (key, id) > ($1, $2) ORDER BY key, id LIMIT n` is a range walk at any
-- depth of the list.
CREATE INDEX scimkit_resources_type_id ON scimkit_resources (tenant, resource_type, id);
CREATE INDEX scimkit_resources_user_name_id
    ON scimkit_resources (tenant, resource_type, user_name_fold, id);
CREATE INDEX scimkit_resources_display_name_id
    ON scimkit_resources (tenant, resource_type, display_name_fold, id);
CREATE INDEX scimkit_resources_external_id_id
    ON scimkit_resources (tenant, resource_type, external_id, id);
CREATE INDEX scimkit_resources_created_id
    ON scimkit_resources (tenant, resource_type, created, id);
CREATE INDEX scimkit_resources_modified_id
    ON scimkit_resources (tenant, resource_type, last_modified, id);
"#,
        ),
    },
    Migration {
        version: 9,
        name: "precomputed sort keys and per-type resource counts",
        step: Step::Sql(
            r#"
-- One row per sortable path present in a resource (crate::store::sql::sort_keys): a sorted list
-- walks (tenant, resource_type, path, key) instead of computing a key for every row. `key`
-- holds the first bytes of the encoded key, `rest` the remainder (see sort_keys.rs).
CREATE TABLE scimkit_sort_keys (
    tenant        text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    path          text COLLATE "C" NOT NULL,
    key           bytea NOT NULL,
    rest          bytea NOT NULL,
    ord           bigint NOT NULL,
    PRIMARY KEY (tenant, resource_type, path, key, ord)
);
CREATE INDEX scimkit_sort_keys_ord ON scimkit_sort_keys (ord, path);
-- The schema fingerprint the keys of a (tenant, type) are complete for; no row: not used.
CREATE TABLE scimkit_sort_key_sets (
    tenant        text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    fingerprint   text NOT NULL,
    PRIMARY KEY (tenant, resource_type)
);
-- The number of resources of a (tenant, type), for totalResults without counting rows.
CREATE TABLE scimkit_type_counts (
    tenant        text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    n             bigint NOT NULL,
    PRIMARY KEY (tenant, resource_type)
);
INSERT INTO scimkit_type_counts (tenant, resource_type, n)
    SELECT tenant, resource_type, count(*) FROM scimkit_resources GROUP BY tenant, resource_type;
"#,
        ),
    },
    Migration {
        version: 10,
        name: "precomputed sort keys of the existing resources",
        step: Step::SortKeys,
    },
];

/// Applies the migrations not yet applied, under the advisory lock, then the optional
/// trigram indexes.
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    // A connection of its own: the session lock goes away with it, whatever happens.
    let mut conn = pool.acquire().await.map_err(db_err)?.detach();
    let result = migrate_locked(&mut conn).await;
    let closed = conn.close().await.map_err(db_err);
    result.and(closed)
}

async fn migrate_locked(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS scimkit_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let applied: Vec<i32> = sqlx::query("SELECT version FROM scimkit_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.try_get::<i32, _>(0))
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        let mut tx = match m.step {
            Step::Sql(sql) => {
                let mut tx = conn.begin().await.map_err(db_err)?;
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db_err)?;
                tx
            }
            Step::Refold => {
                crate::store::sql::refold::refold(&mut *conn).await?;
                conn.begin().await.map_err(db_err)?
            }
            Step::SortKeys => {
                crate::store::sql::sort_keys::backfill(&mut *conn).await?;
                conn.begin().await.map_err(db_err)?
            }
        };
        sqlx::query("INSERT INTO scimkit_migrations (version, name) VALUES ($1, $2)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newer) = applied.iter().find(|v| **v > known) {
        tracing::warn!(
            version = newer,
            "the database was migrated by a newer scimkit; using it as it is"
        );
    }
    trigram_indexes(conn).await
}

/// Trigram indexes for `co`/`ew` on `userName` and `displayName`, when the `pg_trgm`
/// extension is available (it is a trusted extension: a database owner may create it). When
/// it is not, substring filters still work, by scanning.
async fn trigram_indexes(conn: &mut PgConnection) -> Result<(), StoreError> {
    let present: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'scimkit_resources_user_name_trgm'
         AND schemaname = current_schema()",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    if present > 0 {
        return Ok(());
    }
    // A transaction of its own: a failure here leaves the migrations in place.
    let mut sp = conn.begin().await.map_err(db_err)?;
    let attempt = sqlx::raw_sql(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;
         CREATE INDEX scimkit_resources_display_name_trgm
             ON scimkit_resources USING gin (display_name_fold gin_trgm_ops);
         CREATE INDEX scimkit_resources_user_name_trgm
             ON scimkit_resources USING gin (user_name_fold gin_trgm_ops);",
    )
    .execute(&mut *sp)
    .await;
    match attempt {
        Ok(_) => sp.commit().await.map_err(db_err),
        Err(e) => {
            tracing::info!(error = %e, "pg_trgm unavailable: substring filters will scan");
            sp.rollback().await.map_err(db_err)
        }
    }
}
