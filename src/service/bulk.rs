//! `/Bulk` (RFC 7644 §3.7): many operations in one request, with `bulkId` references.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::request::{read_json, Precondition};
use super::write::{create_resource, delete, patch, replace};
use super::{response, Ctx, ScimService};
use crate::error::ScimError;
use crate::resource::{ResourceId, Version, WriteBody};
use crate::schema::{BULK_REQUEST_SCHEMA, BULK_RESPONSE_SCHEMA};

const BULK_PREFIX: &str = "bulkId:";

struct Op {
    index: usize,
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
    /// bulkIds this operation refers to (in its path or data).
    refs: HashSet<String>,
}

enum Outcome {
    Done(Value),
    /// Failed; the error body's status decides the operation's status.
    Failed(ScimError),
}

pub(crate) async fn handle(
    svc: &ScimService,
    ctx: &Ctx,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ScimError> {
    let limits = &ctx.tenant.settings.limits;
    let body = read_json(
        request,
        limits.bulk_max_payload_bytes,
        &ctx.tenant.settings.tolerances,
    )?;
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::InvalidSyntax("a BulkRequest must be a JSON object".into()))?;
    let mut schema_ok = false;
    let mut fail_on_errors: Option<u64> = None;
    let mut raw_ops: Option<&Vec<Value>> = None;
    for (k, v) in obj {
        match k.to_ascii_lowercase().as_str() {
            "schemas" => {
                schema_ok = v.as_array().is_some_and(|a| {
                    a.iter().any(|s| {
                        s.as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
                    })
                })
            }
            "failonerrors" => {
                fail_on_errors = Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    ScimError::InvalidValue("`failOnErrors` must be a positive integer".into())
                })?)
            }
            "operations" => {
                raw_ops = Some(v.as_array().ok_or_else(|| {
                    ScimError::InvalidSyntax("`Operations` must be an array".into())
                })?)
            }
            _ => {}
        }
    }
    if !schema_ok {
        return Err(ScimError::InvalidSyntax(format!(
            "a BulkRequest must list `{BULK_REQUEST_SCHEMA}` in `schemas`"
        )));
    }
    let raw_ops = raw_ops
        .ok_or_else(|| ScimError::InvalidSyntax("a BulkRequest needs `Operations`".into()))?;
    if raw_ops.len() > limits.bulk_max_operations {
        return Err(ScimError::PayloadTooLarge(format!(
            "the BulkRequest has {} operations; the maximum is {}",
            raw_ops.len(),
            limits.bulk_max_operations
        )));
    }
    let ops = parse_ops(raw_ops)?;

    let defined: HashSet<&str> = ops.iter().filter_map(|o| o.bulk_id.as_deref()).collect();
    let mut resolved: HashMap<String, ResourceId> = HashMap::new();
    let mut failed_ids: HashSet<String> = HashSet::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut errors = 0u64;
    let mut pending: Vec<&Op> = ops.iter().collect();
    let mut stopped = false;

    // Run every operation whose references are resolved, in request order, until nothing
    // more can run. What is left refers to operations that can never complete first: a
    // circular reference, answered with 409 (RFC 7644 §3.7.1).
    while !pending.is_empty() && !stopped {
        let mut progressed = false;
        let mut still = Vec::new();
        for op in pending {
            if stopped {
                still.push(op);
                continue;
            }
            let undefined = op.refs.iter().find(|r| !defined.contains(r.as_str()));
            let failed_dep = op.refs.iter().find(|r| failed_ids.contains(*r));
            let outcome = if let Some(r) = undefined {
                Some(Outcome::Failed(ScimError::InvalidValue(format!(
                    "operation {}: `bulkId:{r}` is not defined by any operation of the request",
                    op.index
                ))))
            } else if let Some(r) = failed_dep {
                Some(Outcome::Failed(ScimError::Conflict(format!(
                    "operation {}: the operation with bulkId `{r}` failed",
                    op.index
                ))))
            } else if op.refs.iter().all(|r| resolved.contains_key(r)) {
                Some(run(svc, ctx, op, &resolved).await)
            } else {
                None
            };
            match outcome {
                None => still.push(op),
                Some(outcome) => {
                    progressed = true;
                    let entry = match outcome {
                        Outcome::Done(mut entry) => {
                            if let (Some(b), Some(id)) =
                                (&op.bulk_id, entry.get("location").and_then(Value::as_str))
                            {
                                if let Some(id) = id.rsplit('/').next() {
                                    resolved.insert(b.clone(), ResourceId::new(id));
                                }
                            }
                            if let Some(o) = entry.as_object_mut() {
                                o.remove("_id");
                            }
                            entry
                        }
                        Outcome::Failed(e) => {
                            errors += 1;
                            if let Some(b) = &op.bulk_id {
                                failed_ids.insert(b.clone());
                            }
                            error_entry(op, &e)
                        }
                    };
                    if let Some(slot) = results.get_mut(op.index) {
                        *slot = Some(entry);
                    }
                    if fail_on_errors.is_some_and(|n| errors >= n) {
                        stopped = true;
                    }
                }
            }
        }
        pending = still;
        if !progressed {
            for op in &pending {
                let e = ScimError::Conflict(format!(
                    "operation {}: circular bulkId references could not be resolved",
                    op.index
                ));
                if let Some(slot) = results.get_mut(op.index) {
                    *slot = Some(error_entry(op, &e));
                }
            }
            break;
        }
    }

    let body = json!({
        "schemas": [BULK_RESPONSE_SCHEMA],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    });
    Ok(response::json(StatusCode::OK, &body))
}

fn parse_ops(raw: &[Value]) -> Result<Vec<Op>, ScimError> {
    let mut ops = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for (index, v) in raw.iter().enumerate() {
        let o = v.as_object().ok_or_else(|| {
            ScimError::InvalidSyntax(format!("`Operations[{index}]` must be a JSON object"))
        })?;
        let field = |name: &str| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::InvalidSyntax(format!(
                    "`Operations[{index}].{name}` must be a string"
                ))),
            }
        };
        let method = text("method")?
            .ok_or_else(|| {
                ScimError::InvalidSyntax(format!("`Operations[{index}].method` is required"))
            })?
            .to_ascii_uppercase();
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            return Err(ScimError::InvalidValue(format!(
                "`Operations[{index}].method` must be POST, PUT, PATCH or DELETE"
            )));
        }
        let path = text("path")?.ok_or_else(|| {
            ScimError::InvalidSyntax(format!("`Operations[{index}].path` is required"))
        })?;
        let bulk_id = text("bulkId")?;
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::InvalidSyntax(format!(
                "`Operations[{index}].bulkId` is required for POST (RFC 7644 §3.7)"
            )));
        }
        if let Some(b) = &bulk_id {
            if !seen.insert(b.clone()) {
                return Err(ScimError::InvalidValue(format!(
                    "`Operations[{index}].bulkId` `{b}` is used by more than one operation"
                )));
            }
        }
        let data = field("data").filter(|d| !d.is_null()).cloned();
        if method != "DELETE" && data.is_none() {
            return Err(ScimError::InvalidSyntax(format!(
                "`Operations[{index}].data` is required for {method}"
            )));
        }
        let mut refs = HashSet::new();
        collect_refs_str(&path, &mut refs);
        if let Some(d) = &data {
            collect_refs(d, &mut refs, 0);
        }
        ops.push(Op {
            index,
            method,
            path,
            bulk_id,
            version: text("version")?,
            data,
            refs,
        });
    }
    Ok(ops)
}

fn collect_refs_str(s: &str, out: &mut HashSet<String>) {
    for part in s.split('/') {
        if let Some(id) = part.strip_prefix(BULK_PREFIX) {
            out.insert(id.to_owned());
        }
    }
}

fn collect_refs(v: &Value, out: &mut HashSet<String>, depth: usize) {
    // serde_json already bounds nesting at 128 levels; the depth check keeps this total.
    if depth > 256 {
        return;
    }
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_PREFIX) {
                out.insert(id.to_owned());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out, depth + 1)),
        Value::Object(o) => o.values().for_each(|x| collect_refs(x, out, depth + 1)),
        _ => {}
    }
}

fn substitute(v: &Value, ids: &HashMap<String, ResourceId>, depth: usize) -> Value {
    if depth > 256 {
        return v.clone();
    }
    match v {
        Value::String(s) => match s.strip_prefix(BULK_PREFIX).and_then(|b| ids.get(b)) {
            Some(id) => Value::String(id.to_string()),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, ids, depth + 1)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, ids, depth + 1)))
                .collect::<Map<_, _>>(),
        ),
        _ => v.clone(),
    }
}

async fn run(svc: &ScimService, ctx: &Ctx, op: &Op, ids: &HashMap<String, ResourceId>) -> Outcome {
    match run_inner(svc, ctx, op, ids).await {
        Ok(v) => Outcome::Done(v),
        Err(e) => Outcome::Failed(e),
    }
}

async fn run_inner(
    svc: &ScimService,
    ctx: &Ctx,
    op: &Op,
    ids: &HashMap<String, ResourceId>,
) -> Result<Value, ScimError> {
    let path: Vec<String> = op
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix(BULK_PREFIX).and_then(|b| ids.get(b)) {
                Some(id) => id.to_string(),
                None => s.to_owned(),
            },
        )
        .collect();
    let not_found = || {
        ScimError::NotFound(format!(
            "operation {}: no resource endpoint at `{}`",
            op.index, op.path
        ))
    };
    let (endpoint, id) = match path.as_slice() {
        [e] => (e.as_str(), None),
        [e, id] => (e.as_str(), Some(ResourceId::new(id.as_str()))),
        _ => return Err(not_found()),
    };
    let def = svc
        .registry()
        .resource_type_by_endpoint(endpoint)
        .filter(|d| super::catalog::visible(ctx, d))
        .cloned()
        .ok_or_else(not_found)?;
    let data = op.data.as_ref().map(|d| substitute(d, ids, 0));
    // A version we never issued cannot match: the operation fails its precondition.
    let precondition = op
        .version
        .as_ref()
        .map(|v| Precondition::Tags(vec![Version::from_etag(v).unwrap_or(Version::new(0))]));
    let empty = Value::Null;
    let data = data.as_ref().unwrap_or(&empty);
    let tol = &ctx.tenant.settings.tolerances;
    if let Ok(m) = http::Method::from_bytes(op.method.as_bytes()) {
        super::catalog::refuse_client_write(&def, &m)?;
    }
    let (status, res) = match (op.method.as_str(), id) {
        ("POST", None) => (
            StatusCode::CREATED,
            Some(
                create_resource(
                    svc,
                    ctx,
                    &def,
                    WriteBody::from_value(&def, tol, data.clone()),
                )
                .await?,
            ),
        ),
        ("PUT", Some(id)) => (
            StatusCode::OK,
            Some({
                let reread = || Ok(WriteBody::from_value(&def, tol, data.clone()));
                // The bulk answer carries no resource, so no members either.
                replace(svc, ctx, &def, &id, reread()?, &reread, precondition, None).await?
            }),
        ),
        ("PATCH", Some(id)) => (
            StatusCode::OK,
            Some(patch(svc, ctx, &def, &id, data, precondition).await?),
        ),
        ("DELETE", Some(id)) => {
            delete(svc, ctx, &def, &id, precondition).await?;
            let mut e = Map::new();
            e.insert("method".into(), Value::String(op.method.clone()));
            e.insert(
                "location".into(),
                Value::String(format!("{}{}/{id}", ctx.base_url, def.endpoint())),
            );
            e.insert("status".into(), Value::String("204".into()));
            return Ok(Value::Object(e));
        }
        _ => {
            return Err(ScimError::InvalidValue(format!(
                "operation {}: {} is not allowed on `{}`",
                op.index, op.method, op.path
            )))
        }
    };
    let mut e = Map::new();
    e.insert("method".into(), Value::String(op.method.clone()));
    if let Some(b) = &op.bulk_id {
        e.insert("bulkId".into(), Value::String(b.clone()));
    }
    if let Some(res) = res {
        e.insert("version".into(), Value::String(res.version.etag()));
        e.insert(
            "location".into(),
            Value::String(format!("{}{}/{}", ctx.base_url, def.endpoint(), res.id)),
        );
    }
    e.insert("status".into(), Value::String(status.as_u16().to_string()));
    Ok(Value::Object(e))
}

fn error_entry(op: &Op, e: &ScimError) -> Value {
    let mut o = Map::new();
    o.insert("method".into(), Value::String(op.method.clone()));
    if let Some(b) = &op.bulk_id {
        o.insert("bulkId".into(), Value::String(b.clone()));
    }
    o.insert(
        "status".into(),
        Value::String(e.status().as_u16().to_string()),
    );
    o.insert("response".into(), e.to_body());
    Value::Object(o)
}
