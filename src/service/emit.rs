//! Building the [`ProvisioningEvent`] of a request, when the host set an event sink.
//!
//! Everything here runs only with a sink: without one, [`ScimService::recording`] answers
//! `None` and no event is built. What an event needs that the handlers do not return (the
//! resource's id after a create, its name) is read back from the answer the client gets, and
//! only for single-resource answers; the tolerance notes come from the request's [`Ctx`].

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Response, Uri};
use serde_json::{Map, Value};

use super::{query, Ctx, ScimService};
use crate::auth::{hash_token, is_well_formed, parse_bearer, Subject, TokenId};
use crate::error::ScimError;
use crate::events::{AuthFailure, BulkOperationSummary, Outcome, ProvisioningEvent};
use crate::schema::{AttributeDef, Mutability, Returned, SchemaRegistry};
use crate::tenant::TenantId;

/// The largest request body an event carries (with body logging on), or that is read for
/// the name of a failed write; a larger one is summarised by its size.
const MAX_LOGGED_BODY: usize = 64 * 1024;

/// A request being recorded: what is known when it arrives.
pub(super) struct Recording {
    time: DateTime<Utc>,
    start: Instant,
    method: Method,
    path: String,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The names (lowercased) of every attribute and sub-attribute the registry marks
/// `writeOnly` or `returned: never`, and `password`: what a logged body never shows.
pub(super) fn secret_names(registry: &SchemaRegistry) -> Vec<String> {
    fn walk(attrs: &[AttributeDef], out: &mut Vec<String>) {
        for a in attrs {
            if a.mutability == Mutability::WriteOnly || a.returned == Returned::Never {
                let n = a.name.to_ascii_lowercase();
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            walk(&a.sub_attributes, out);
        }
    }
    let mut out = vec!["password".to_owned()];
    for s in registry.schemas() {
        walk(&s.attributes, &mut out);
    }
    for rt in registry.resource_types() {
        walk(rt.common(), &mut out);
    }
    out
}

/// Whether a key or PATCH path names a secret attribute: its last name, after any URN
/// prefix, dotted parent or value filter, is one of `secrets`.
fn names_secret(key: &str, secrets: &[String]) -> bool {
    // `emails[type eq "work"].value` -> `value`; `urn:...:User:password` -> `password`;
    // `name.password` -> `password`.
    let without_filter = match (key.find('['), key.rfind(']')) {
        (Some(open), Some(close)) if close > open => {
            let head = key.get(..open).unwrap_or("");
            let tail = key.get(close + 1..).unwrap_or("");
            if tail.is_empty() {
                head.to_owned()
            } else {
                format!("{head}{tail}")
            }
        }
        _ => key.to_owned(),
    };
    let last = without_filter
        .rsplit(':')
        .next()
        .unwrap_or("")
        .rsplit('.')
        .next()
        .unwrap_or("")
        .trim();
    secrets.iter().any(|s| s.eq_ignore_ascii_case(last))
        || without_filter
            .split(['.', ':'])
            .any(|part| secrets.iter().any(|s| s.eq_ignore_ascii_case(part.trim())))
}

/// Removes every secret attribute from `value`, at any depth: keys naming one (plain,
/// URN-qualified or dotted), and the `value` of a PATCH operation whose `path` names one.
/// Depth is bounded by the JSON parser's own limit (128).
pub(super) fn redact(value: &mut Value, secrets: &[String]) {
    match value {
        Value::Object(obj) => {
            obj.retain(|k, _| !names_secret(k, secrets));
            let path_is_secret = obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, v)| v.as_str())
                .is_some_and(|p| names_secret(p, secrets));
            if path_is_secret {
                obj.retain(|k, _| !k.eq_ignore_ascii_case("value"));
            }
            for v in obj.values_mut() {
                redact(v, secrets);
            }
        }
        Value::Array(items) => {
            for v in items {
                redact(v, secrets);
            }
        }
        _ => {}
    }
}

/// The segments of a request path after the mount path, decoded (empty when one cannot be).
fn segments(svc: &ScimService, path: &str) -> Vec<String> {
    svc.endpoint_path(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(query::path_decode)
        .collect::<Result<Vec<String>, _>>()
        .unwrap_or_default()
}

/// A top-level key of a JSON object, case-insensitively.
fn get_ci<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl ScimService {
    /// Starts recording a request, or `None` without an event sink.
    pub(super) fn recording(&self, method: &Method, uri: &Uri) -> Option<Recording> {
        self.inner.event_sink.as_ref()?;
        Some(Recording {
            time: self.inner.clock.now(),
            start: Instant::now(),
            method: method.clone(),
            path: uri.path().to_owned(),
        })
    }

    /// Builds the event of a finished request and hands it to the sink. `ctx` is the
    /// admitted request's context (`None` when admission failed), `headers` its headers
    /// (for the reason of a 401), `body` its body, `error` the error answered, if any.
    pub(super) async fn emit(
        &self,
        rec: Recording,
        ctx: Option<&Ctx>,
        headers: Option<&HeaderMap>,
        body: &Bytes,
        response: &Response<Bytes>,
        error: Option<&ScimError>,
    ) {
        let Some(sink) = &self.inner.event_sink else {
            return;
        };
        let segs = segments(self, &rec.path);
        let mut segs_iter = segs.iter();
        let tenant = segs_iter.next().and_then(|t| TenantId::new(t).ok());
        let endpoint = segs_iter.next().cloned();
        let id_seg = segs_iter
            .next()
            .filter(|s| s.as_str() != ".search")
            .cloned();
        let def = endpoint
            .as_ref()
            .and_then(|e| self.registry().resource_type_by_endpoint(&format!("/{e}")));
        let status = response.status().as_u16();
        let mut outcome = match error {
            Some(e) => Outcome::error(
                e.status().as_u16(),
                e.scim_type().map(|t| t.as_str().to_owned()),
                e.detail(),
            ),
            None if status >= 400 => error_of_body(status, response.body()),
            None => Outcome::success(status),
        };
        outcome.status = status;
        let mut event = ProvisioningEvent::new(
            rec.time,
            tenant.clone(),
            rec.method.as_str(),
            rec.path.clone(),
            outcome,
        );
        event.endpoint = endpoint.clone();
        event.resource_type = def.map(|d| d.name().to_owned());
        event.resource_id = id_seg;
        if let Some(ctx) = ctx {
            match ctx.principal.subject() {
                Subject::Token(id) => event.token_id = Some(*id),
                Subject::Host(s) => event.subject = Some(s.clone()),
                #[allow(unreachable_patterns)]
                _ => {}
            }
            event.tolerances = ctx.take_notes();
            event.name = ctx.resource_name.lock().ok().and_then(|mut n| n.take());
        }
        if status == 401 && ctx.is_none() {
            if let (Some(tenant), Some(headers)) = (&tenant, headers) {
                let (reason, token) = self.diagnose(tenant, headers).await;
                event.auth_failure = Some(reason);
                event.token_id = token;
                if reason == AuthFailure::UnknownTenant {
                    // Not a tenant: a log keyed by it would let anyone create log rows
                    // (tenant health rows) for made-up tenants.
                    event.tenant = None;
                }
            }
        }
        let name_attr = def.map(|d| {
            if d.top_level("userName").is_some() {
                "userName"
            } else {
                "displayName"
            }
        });
        let writes = matches!(rec.method, Method::POST | Method::PUT | Method::PATCH);
        // The answer's resource: a single-resource answer (a create, read, replace, patch).
        let single = def.is_some() && (event.resource_id.is_some() || rec.method == Method::POST);
        let answer_needed = event.resource_id.is_none() || event.name.is_none();
        if single && answer_needed && status < 300 && !response.body().is_empty() {
            // Only the two top-level strings are wanted: the answer is scanned, not built
            // into a `Value` (that was most of an event's cost on a GET by id).
            let want_name = if event.name.is_none() {
                name_attr
            } else {
                None
            };
            if let Ok(Some(found)) = top_level_strings(response.body(), want_name) {
                if event.resource_id.is_none() {
                    event.resource_id = found.id;
                }
                if want_name.is_some() {
                    event.name = found.name;
                }
            }
        }
        let want_body = writes && self.inner.log_request_bodies && ctx.is_some();
        let need_name = event.name.is_none() && writes && def.is_some();
        if (want_body || need_name) && !body.is_empty() {
            if body.len() > MAX_LOGGED_BODY {
                if want_body {
                    event.body = Some(serde_json::json!({
                        "omitted": format!("{} bytes, over the {MAX_LOGGED_BODY}-byte log limit", body.len())
                    }));
                }
            } else if let Ok(mut v) = serde_json::from_slice::<Value>(body) {
                if need_name {
                    if let (Some(attr), Value::Object(obj)) = (name_attr, &v) {
                        event.name = get_ci(obj, attr).and_then(Value::as_str).map(str::to_owned);
                    }
                }
                if want_body {
                    redact(&mut v, &self.inner.secret_names);
                    event.body = Some(v);
                }
            }
        }
        if endpoint.as_deref() == Some("Bulk") {
            // The operations name their resources; one name for the request would mislead.
            event.name = None;
            if status == 200 {
                event.operations = bulk_summaries(response.body());
            }
        }
        event.duration_micros = u64::try_from(rec.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        sink.record(&event);
    }

    /// The real reason of a 401 to `tenant`, and the id of the token presented when it is one
    /// of the tenant's. Only called with an event sink, after the uniform answer is built.
    async fn diagnose(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
    ) -> (AuthFailure, Option<TokenId>) {
        let tenant_record = match self.inner.tenants.get_tenant(tenant).await {
            Ok(Some(t)) => Some(t),
            Ok(None) => return (AuthFailure::UnknownTenant, None),
            Err(_) => None,
        };
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return (AuthFailure::MissingAuthorization, None);
        };
        if values.next().is_some() {
            return (AuthFailure::MalformedAuthorization, None);
        }
        if !self.inner.builtin_verifier {
            return (AuthFailure::RejectedByVerifier, None);
        }
        let Some(token) = parse_bearer(value.as_bytes()).filter(|t| is_well_formed(t)) else {
            return (AuthFailure::MalformedAuthorization, None);
        };
        let record = match self
            .inner
            .tenants
            .find_token_by_hash(&hash_token(token))
            .await
        {
            Ok(Some(r)) if r.tenant == *tenant => r,
            _ => return (AuthFailure::UnknownToken, None),
        };
        let now = self.inner.clock.now();
        let reason = if record.revoked {
            AuthFailure::Revoked
        } else if record.is_expired(now) {
            AuthFailure::Expired
        } else if tenant_record.is_some_and(|t| !t.scim_enabled) {
            AuthFailure::ScimDisabled
        } else {
            // Valid now: it changed between the check and this look (or the store failed).
            AuthFailure::RejectedByVerifier
        };
        (reason, Some(record.id))
    }
}

/// What [`top_level_strings`] found in a JSON object.
#[derive(Debug, Default, PartialEq)]
struct TopLevel {
    /// The string value of the key `id` (exact case), if it is a string.
    id: Option<String>,
    /// The string value of the first key equal to the wanted name, ASCII case-insensitively,
    /// if it is a string.
    name: Option<String>,
}

/// Reads, from the JSON object `body`, the top-level `id` and the attribute `name`
/// (case-insensitively) when they are strings, skipping every other value without building
/// it: `Ok(None)` when `body` is JSON but not an object, `Err` when it is not JSON.
/// Answers the same as parsing `body` into a `Value` and reading `obj.get("id")` and
/// [`get_ci`]`(obj, name)` (with the last of duplicate `id` keys and the first key matching
/// `name`, as a `Map` would keep them), without the allocations of the whole document.
fn top_level_strings(body: &[u8], name: Option<&str>) -> serde_json::Result<Option<TopLevel>> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde::Deserialize;
    use std::borrow::Cow;
    use std::fmt;

    /// A value that is kept only when it is a string.
    struct StringOrNone;
    impl<'de> DeserializeSeed<'de> for StringOrNone {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Ok(match Value::deserialize(d)? {
                Value::String(s) => Some(s),
                _ => None,
            })
        }
    }

    struct Scan<'n>(Option<&'n str>);
    impl<'de> Visitor<'de> for Scan<'_> {
        type Value = Option<TopLevel>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = TopLevel::default();
            // The first key matching the name, as written: a later duplicate of it replaces
            // its value (as in a `Map`); other spellings after it are not looked at.
            let mut name_key: Option<Cow<'de, str>> = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                let is_id = key == "id";
                let is_name = match &name_key {
                    Some(k) => *k == key,
                    None => self.0.is_some_and(|n| n.eq_ignore_ascii_case(&key)),
                };
                if !is_id && !is_name {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let value = map.next_value_seed(StringOrNone)?;
                if is_name {
                    out.name.clone_from(&value);
                    name_key.get_or_insert(key);
                }
                if is_id {
                    out.id = value;
                }
            }
            Ok(Some(out))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(body);
    let found = de.deserialize_any(Scan(name))?;
    de.end()?;
    Ok(found)
}

/// The outcome of an error answer produced without a [`ScimError`] (read from its body).
fn error_of_body(status: u16, body: &Bytes) -> Outcome {
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Outcome::error(
        status,
        field("scimType"),
        field("detail").unwrap_or_default(),
    )
}

/// One summary per operation of a Bulk answer.
fn bulk_summaries(body: &Bytes) -> Vec<BulkOperationSummary> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(Value::Array(ops)) = obj.get("Operations") else {
        return Vec::new();
    };
    ops.iter()
        .filter_map(Value::as_object)
        .map(|op| {
            let s = |k: &str| op.get(k).and_then(Value::as_str).map(str::to_owned);
            let status = s("status").and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
            let mut summary = BulkOperationSummary::new(
                s("method").unwrap_or_default(),
                s("location").unwrap_or_default(),
                status,
            );
            summary.bulk_id = s("bulkId");
            if let Some(Value::Object(r)) = op.get("response") {
                let rs = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
                summary.scim_type = rs("scimType");
                summary.detail = rs("detail");
            }
            summary
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the event used to read: the whole answer parsed into a `Value`.
    fn by_value(body: &[u8], name: Option<&str>) -> Option<TopLevel> {
        match serde_json::from_slice::<Value>(body).ok()? {
            Value::Object(obj) => Some(TopLevel {
                id: obj.get("id").and_then(Value::as_str).map(str::to_owned),
                name: name.and_then(|n| get_ci(&obj, n).and_then(Value::as_str).map(str::to_owned)),
            }),
            _ => None,
        }
    }

    #[test]
    fn the_answer_scan_reads_what_a_parsed_value_would() {
        let bodies: &[&[u8]] = &[
            br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223","userName":"bjensen@example.com","name":{"userName":"inner","id":"x"},"emails":[{"value":"a"}],"meta":{"location":"/Users/2819c223"}}"#,
            br#"{"USERNAME":"Upper","id":"1","userName":"later spelling"}"#,
            br#"{"userName":"first","id":"1","userName":"dup replaces"}"#,
            br#"{"id":"first","id":"last","displayName":"Group \"A\" \u00e9"}"#,
            br#"{"id":7,"userName":{"not":"a string"}}"#,
            br#"{"id":null,"userName":["x"]}"#,
            br#"{}"#,
            br#"[{"id":"in an array"}]"#,
            br#""id""#,
            br#"12"#,
            br#"null"#,
            br#"{"id":"1"} trailing"#,
            br#"{"id":"1""#,
            b"not json",
            b"",
        ];
        for body in bodies {
            for name in [Some("userName"), Some("displayName"), None] {
                let scanned = top_level_strings(body, name).ok().flatten();
                assert_eq!(
                    scanned,
                    by_value(body, name),
                    "{} / {name:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        let found = top_level_strings(bodies[0], Some("userName"))
            .unwrap()
            .unwrap();
        assert_eq!(found.id.as_deref(), Some("2819c223"));
        assert_eq!(found.name.as_deref(), Some("bjensen@example.com"));
        let upper = top_level_strings(bodies[1], Some("userName"))
            .unwrap()
            .unwrap();
        assert_eq!(upper.name.as_deref(), Some("Upper"));
        let dup = top_level_strings(bodies[2], Some("userName"))
            .unwrap()
            .unwrap();
        assert_eq!(dup.name.as_deref(), Some("dup replaces"));
    }

    #[test]
    fn redaction_reaches_every_depth() {
        let secrets = secret_names(&SchemaRegistry::default());
        assert!(secrets.iter().any(|s| s == "password"));
        let mut v = json!({
            "userName": "a",
            "PASSWORD": "s1",
            "urn:ietf:params:scim:schemas:core:2.0:User:password": "s2",
            "urn:x:ext": {"password": "s3", "keep": 1},
            "Operations": [
                {"op": "replace", "path": "password", "value": "s4"},
                {"op": "replace", "value": {"password": "s5", "name.givenName": "B"}},
                {"op": "add", "path": "emails", "value": [{"value": "e@x"}]}
            ],
            "nested": [[{"Password": "s6"}]]
        });
        redact(&mut v, &secrets);
        let text = v.to_string();
        for s in ["s1", "s2", "s3", "s4", "s5", "s6"] {
            assert!(!text.contains(&format!("\"{s}\"")), "{s} in {text}");
        }
        assert!(text.contains("e@x") && text.contains("\"keep\"") && text.contains("givenName"));
    }

    #[test]
    fn secret_names_match_paths() {
        let s = vec!["password".to_owned()];
        assert!(names_secret("password", &s));
        assert!(names_secret(
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            &s
        ));
        assert!(names_secret("name.password", &s));
        assert!(!names_secret("userName", &s));
        assert!(!names_secret("emails[type eq \"work\"].value", &s));
    }
}
