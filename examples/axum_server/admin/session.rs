//! The console's pages and assets, and the admin's login and session.

use super::*;

// ---- pages and assets ----------------------------------------------------------------------

/// The console for a logged-in admin; the login form (with 401) for anyone else.
pub(super) async fn page(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if admin.has_session(&headers) {
        html(StatusCode::OK, CONSOLE_HTML)
    } else {
        html(StatusCode::UNAUTHORIZED, LOGIN_HTML)
    }
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", ADMIN_JS)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", ADMIN_CSS)
}

pub(super) fn html(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    secure_headers(h);
    r
}

pub(super) fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(super) fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

// ---- login -----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct LoginBody {
    secret: String,
}

pub(super) async fn login(State(admin): State<Admin>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_api_header(&headers) {
        return e.into_response();
    }
    let attempt: LoginBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    // One critical section for the check and the count, so that parallel guesses cannot
    // all pass before the first failure is counted.
    let matches = {
        let mut throttle = lock(&admin.0.throttle);
        let now = Instant::now();
        if let Err(wait) = throttle.admit(now) {
            drop(throttle);
            tracing::warn!("admin console: refused a login while locked after wrong secrets");
            return locked(wait);
        }
        let matches = admin.secret_matches(&attempt.secret);
        if matches {
            throttle.succeeded();
        } else {
            throttle.failed(now);
        }
        matches
    };
    if !matches {
        // Slows down each guess a little more; the lock-out above bounds how many there are.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tracing::warn!("admin console: refused a login with a wrong secret");
        return ApiError::new(StatusCode::UNAUTHORIZED, "Wrong admin secret.").into_response();
    }
    let cookie = match admin.new_session() {
        Ok(c) => c,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    let value = format!(
        "{COOKIE}={cookie}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if admin.0.secure_cookie {
            "; Secure"
        } else {
            ""
        }
    );
    match HeaderValue::from_str(&value) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        Err(_) => return ApiError::internal("cannot set the session cookie").into_response(),
    }
    secure_headers(r.headers_mut());
    tracing::info!("admin console: login");
    r
}

pub(super) async fn logout(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if let Err(e) = require_api_header(&headers) {
        return e.into_response();
    }
    admin.end_session(&headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    let clear = if admin.0.secure_cookie {
        "scimkit_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
    } else {
        "scimkit_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"
    };
    r.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(clear));
    r
}

/// 429 while the login is locked, with `Retry-After` in whole seconds (rounded up).
pub(super) fn locked(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many wrong secrets: the login is locked; try again in {seconds} s."),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}

/// Refuses an API call without a live session or without the custom header.
pub(super) fn authorize(admin: &Admin, headers: &HeaderMap) -> Result<(), ApiError> {
    require_api_header(headers)?;
    if admin.has_session(headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Not logged in (or the session expired): log in with the admin secret.",
        ))
    }
}

pub(super) fn require_api_header(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers
        .get(API_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Admin API calls must carry the X-Scimkit-Admin: 1 header.",
        ))
    }
}

pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}
