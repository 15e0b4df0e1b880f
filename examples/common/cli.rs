//! The command line shared by both example servers: hand-written so the examples need no
//! argument-parsing dependency.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scimkit::auth::{is_well_formed, TokenId, TOKEN_PREFIX};
use scimkit::{settings::RateLimit, tenant::TenantId};

/// The usage text printed by `--help` and after a command-line error.
pub const USAGE: &str = "\
Usage: SERVER [COMMAND] [OPTIONS]

Commands (the default is `serve`):
  serve                      serve SCIM until Ctrl-C or SIGTERM
  tenant create [--name N]   create the tenant given by --tenant (SCIM enabled)
  tenant list                list tenants
  tenant enable | disable    switch SCIM provisioning on or off for --tenant
  token create [--label L]   issue a new bearer token for --tenant (shown once)
  token list                 list --tenant's tokens (id, label, created, last used)
  token revoke TOKEN_ID      revoke one of --tenant's tokens at once
  groups                     list --tenant's groups (user collections) with member counts
  members GROUP_ID           list the members of one of --tenant's groups

Options:
  --listen ADDR        address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
  --public-url URL     public URL prefix of the SCIM endpoints, as the identity provider
                       reaches them (default http://<listen address>/scim/v2)
  --store STORE        memory | sqlite:PATH | postgres:URL (default: sqlite:scimkit.db when
                       built with the `sqlite` feature, otherwise memory)
  --tenant ID          the tenant (IdP connection) served and managed (default `default`);
                       `serve` creates it if missing
  --token TOKEN        register this bearer token for the tenant on start (for automation;
                       never printed); it must look like the tokens scimkit issues:
                       `scimkit_` and 43 base64url characters
  --strict             serve the tenant in strict RFC mode (every tolerance off)
  --seed-users N       create N users on start (for load tests)
  --governance         also serve the Agent and AgenticApplication resource types
                       (draft-abbey-scim-agent-extension-00) and two demo catalogs for Okta
                       Identity Governance: Entitlement at /Entitlements and Role at /Roles
                       (read-only for the IdP, granted through User.entitlements and
                       User.roles); in axum_server the Entitlement catalog is the admin
                       console's access policies
  --rate-limit R[/B]   limit the tenant to R requests per second with bursts of B (default
                       B = R); beyond it SCIM answers 429 with Retry-After. Stored in the
                       tenant's settings (default: no limit)
  --header-read-timeout T
                       close a connection that has not sent a complete request head within
                       T (default 10s; T is seconds, or a number with `s` or `ms`)
  --request-timeout T  answer a request that has not completed within T, body upload
                       included, with a SCIM 503 error (default 30s)
  --idle-timeout T     close a keep-alive connection idle for T (default 60s). axum_server
                       (hyper) counts the wait for the next request against the header-read
                       timeout, so there an idle connection closes after the shorter of the
                       two
  --feed-retention-days D
                       keep each tenant's change feed and provisioning log for D days
                       (default 30; pruned on start and hourly); 0 keeps the feed forever
                       (the log keeps at most 100,000 events per tenant in any case)
  --cursor-key S       the secret that authenticates RFC 9865 pagination cursors; give every
                       instance sharing a database the same one (default: a random key per
                       process, so cursors do not survive a restart)
  --admin-secret S     axum_server only: the password of the admin console at /admin (at
                       least 16 characters; default: SCIMKIT_ADMIN_SECRET, or a random one
                       printed on start)
  -h, --help           print this help

Logging goes to stderr; RUST_LOG sets the level (error, warn, info, debug, trace).
";

/// The shortest admin console password accepted: the console hands out SCIM tokens, so it
/// must not be guessable.
pub const MIN_ADMIN_SECRET_CHARS: usize = 16;

/// How long a connection or request may take (the `--...-timeout` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the moment a connection waits for a request until its head is complete.
    pub header_read: Duration,
    /// From a request's head until its answer, body upload included.
    pub request: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(10),
            // A 16 MiB group PUT (a 200,000-member list) uploads and applies well within it.
            request: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// `10`, `10s` or `500ms`: a positive duration of at most a day.
fn parse_duration(flag: &str, v: &str) -> Result<Duration, String> {
    let bad = || {
        format!("{flag} `{v}` is not a duration like 10, 10s or 500ms (more than 0, at most a day)")
    };
    let (number, millis) = if let Some(n) = v.strip_suffix("ms") {
        (n, true)
    } else {
        (v.strip_suffix('s').unwrap_or(v), false)
    };
    let n: u64 = number.trim().parse().map_err(|_| bad())?;
    let d = if millis {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    };
    if d.is_zero() || d > Duration::from_secs(24 * 60 * 60) {
        return Err(bad());
    }
    Ok(d)
}

/// Where resources, tenants and tokens are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In memory: lost when the process ends.
    Memory,
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreSpec {
    /// The default: a durable SQLite file in the working directory when the example was
    /// built with the `sqlite` feature.
    pub fn default_for_build() -> StoreSpec {
        if cfg!(feature = "sqlite") {
            StoreSpec::Sqlite(PathBuf::from("scimkit.db"))
        } else {
            StoreSpec::Memory
        }
    }

    fn parse(s: &str) -> Result<StoreSpec, String> {
        if s == "memory" {
            Ok(StoreSpec::Memory)
        } else if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("--store sqlite:PATH needs a file path".to_owned());
            }
            Ok(StoreSpec::Sqlite(PathBuf::from(path)))
        } else if let Some(rest) = s.strip_prefix("postgres:") {
            // `postgres:postgres://user@host/db`, or the URL alone (`postgres://user@host/db`).
            let url = if rest.starts_with("postgres://") || rest.starts_with("postgresql://") {
                rest
            } else {
                s
            };
            Ok(StoreSpec::Postgres(url.to_owned()))
        } else if s.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(s.to_owned()))
        } else {
            Err(format!(
                "--store `{s}` is not one of memory, sqlite:PATH, postgres:URL"
            ))
        }
    }

    /// A description for logs that never includes a password from a connection URL.
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Memory => "memory (lost on exit)".to_owned(),
            StoreSpec::Sqlite(p) => format!("sqlite file {}", p.display()),
            StoreSpec::Postgres(url) => {
                let host = url
                    .rsplit_once('@')
                    .map_or_else(|| url.split_once("//").map_or("", |(_, r)| r), |(_, h)| h);
                // Query parameters may carry a password too.
                let host = host.split('?').next().unwrap_or_default();
                format!("postgres {host}")
            }
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve SCIM.
    Serve,
    /// Create the tenant.
    TenantCreate {
        /// Its display name (defaults to the id).
        name: Option<String>,
    },
    /// List tenants.
    TenantList,
    /// Switch SCIM on or off for the tenant.
    TenantEnable(bool),
    /// Issue a token.
    TokenCreate {
        /// Its label.
        label: String,
    },
    /// List the tenant's tokens.
    TokenList,
    /// Revoke a token.
    TokenRevoke(TokenId),
    /// List groups with member counts.
    Groups,
    /// List a group's members.
    Members(String),
    /// Print the usage.
    Help,
}

/// The parsed command line. No `Debug`: it may hold a token.
pub struct Cli {
    /// The command.
    pub command: Command,
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--public-url`.
    pub public_url: Option<String>,
    /// `--store`.
    pub store: StoreSpec,
    /// `--tenant`.
    pub tenant: TenantId,
    /// `--token`.
    pub token: Option<String>,
    /// `--strict`.
    pub strict: bool,
    /// `--seed-users`.
    pub seed_users: usize,
    /// `--governance`: the agent schema pack and the demo Entitlement and Role catalogs.
    pub governance: bool,
    /// `--admin-secret` (the axum example's admin console password).
    pub admin_secret: Option<String>,
    /// `--rate-limit`.
    pub rate_limit: Option<RateLimit>,
    /// `--header-read-timeout`, `--request-timeout`, `--idle-timeout`.
    pub timeouts: Timeouts,
    /// `--feed-retention-days`: how long `serve` keeps change records; `None` (given as 0)
    /// keeps them forever.
    pub feed_retention_days: Option<u32>,
    /// `--cursor-key`: the secret authenticating pagination cursors (`None`: random per
    /// process).
    pub cursor_key: Option<String>,
}

/// The change-feed retention of `serve` when `--feed-retention-days` is not given.
pub const DEFAULT_FEED_RETENTION_DAYS: u32 = 30;

impl Cli {
    /// The public URL prefix: `--public-url`, or one derived from the address actually
    /// listened on (an unspecified address such as 0.0.0.0 becomes loopback: pass
    /// `--public-url` with the name the identity provider uses).
    pub fn public_url(&self, listening: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let mut addr = listening;
        if addr.ip().is_unspecified() {
            tracing::warn!("listening on all interfaces: pass --public-url with the public name");
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            addr.set_ip(loopback);
        }
        format!("http://{addr}/scim/v2")
    }

    /// Parses the arguments after the program name. Options may come before or after the
    /// command.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
        let mut listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let mut public_url = None;
        let mut store = StoreSpec::default_for_build();
        let mut tenant = TenantId::new("default").map_err(|e| e.to_string())?;
        let mut token = None;
        let mut strict = false;
        let mut seed_users = 0;
        let mut governance = false;
        let mut name = None;
        let mut label = None;
        let mut admin_secret = None;
        let mut rate_limit = None;
        let mut timeouts = Timeouts::default();
        let mut feed_retention_days = Some(DEFAULT_FEED_RETENTION_DAYS);
        let mut cursor_key = None;
        let mut words: Vec<String> = Vec::new();

        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            // `--flag=value` and `--flag value` are both accepted.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |what: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{what} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => words.insert(0, "help".to_owned()),
                "--listen" => {
                    let v = value("--listen")?;
                    listen = v.parse().map_err(|_| {
                        format!("--listen `{v}` is not an address like 127.0.0.1:8080")
                    })?;
                }
                "--public-url" => public_url = Some(value("--public-url")?),
                "--store" => store = StoreSpec::parse(&value("--store")?)?,
                "--tenant" => {
                    let v = value("--tenant")?;
                    tenant =
                        TenantId::new(v.as_str()).map_err(|e| format!("--tenant `{v}`: {e}"))?;
                }
                "--token" => {
                    let v = value("--token")?;
                    if !is_well_formed(&v) {
                        // Never echo the value: it is a secret, even when malformed.
                        return Err(format!(
                            "--token must be `{TOKEN_PREFIX}` followed by 43 base64url characters \
                             (A-Z, a-z, 0-9, '-', '_'), like the tokens scimkit issues"
                        ));
                    }
                    token = Some(v);
                }
                "--strict" => strict = true,
                "--governance" => governance = true,
                "--seed-users" => {
                    let v = value("--seed-users")?;
                    seed_users = v
                        .parse()
                        .map_err(|_| format!("--seed-users `{v}` is not a number"))?;
                }
                "--admin-secret" => {
                    let v = value("--admin-secret")?;
                    if v.chars().count() < MIN_ADMIN_SECRET_CHARS {
                        // Never echo the value: it is a secret, even when too short.
                        return Err(format!(
                            "--admin-secret must be at least {MIN_ADMIN_SECRET_CHARS} characters"
                        ));
                    }
                    admin_secret = Some(v);
                }
                "--rate-limit" => rate_limit = Some(parse_rate_limit(&value("--rate-limit")?)?),
                "--header-read-timeout" => {
                    timeouts.header_read = parse_duration(&flag, &value(&flag)?)?;
                }
                "--request-timeout" => {
                    timeouts.request = parse_duration(&flag, &value(&flag)?)?;
                }
                "--idle-timeout" => timeouts.idle = parse_duration(&flag, &value(&flag)?)?,
                "--feed-retention-days" => {
                    let v = value("--feed-retention-days")?;
                    let days: u32 = v.parse().map_err(|_| {
                        format!("--feed-retention-days `{v}` is not a whole number of days")
                    })?;
                    // Beyond a century: more than any host needs, and far from overflow.
                    if days > 36_500 {
                        return Err(format!(
                            "--feed-retention-days `{v}` is more than 36500 (use 0 to keep \
                             the feed forever)"
                        ));
                    }
                    feed_retention_days = (days > 0).then_some(days);
                }
                "--name" => name = Some(value("--name")?),
                "--label" => label = Some(value("--label")?),
                "--cursor-key" => {
                    let v = value("--cursor-key")?;
                    if v.chars().count() < MIN_ADMIN_SECRET_CHARS {
                        return Err(format!(
                            "--cursor-key must be at least {MIN_ADMIN_SECRET_CHARS} characters"
                        ));
                    }
                    cursor_key = Some(v);
                }
                f if f.starts_with('-') => return Err(format!("unknown option `{f}`")),
                _ => words.push(arg),
            }
        }

        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let command = match words.as_slice() {
            ["help", ..] => Command::Help,
            [] | ["serve"] => Command::Serve,
            ["tenant", "create"] => Command::TenantCreate { name: name.take() },
            ["tenant", "list"] => Command::TenantList,
            ["tenant", "enable"] => Command::TenantEnable(true),
            ["tenant", "disable"] => Command::TenantEnable(false),
            ["token", "create"] => Command::TokenCreate {
                label: label
                    .take()
                    .unwrap_or_else(|| "issued from the command line".to_owned()),
            },
            ["token", "list"] => Command::TokenList,
            ["token", "revoke", id] => Command::TokenRevoke(
                id.parse()
                    .map_err(|_| format!("`{id}` is not a token id (see `token list`)"))?,
            ),
            ["groups"] => Command::Groups,
            ["members", group] => Command::Members((*group).to_owned()),
            other => return Err(format!("unknown command `{}`", other.join(" "))),
        };
        if name.is_some() {
            return Err("--name only goes with `tenant create`".to_owned());
        }
        if label.is_some() {
            return Err("--label only goes with `token create`".to_owned());
        }
        Ok(Cli {
            command,
            listen,
            public_url,
            store,
            tenant,
            token,
            strict,
            seed_users,
            governance,
            admin_secret,
            rate_limit,
            timeouts,
            feed_retention_days,
            cursor_key,
        })
    }
}

/// `R` or `R/B`: R requests per second, bursts of B (R when absent); both at least 1.
fn parse_rate_limit(v: &str) -> Result<RateLimit, String> {
    let bad = || format!("--rate-limit `{v}` is not RATE or RATE/BURST (whole numbers from 1)");
    let (rate, burst) = v.split_once('/').unwrap_or((v, v));
    let rate: u32 = rate.trim().parse().map_err(|_| bad())?;
    let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
    if rate == 0 || burst == 0 {
        return Err(bad());
    }
    Ok(RateLimit {
        requests_per_second: rate,
        burst,
        per_token: false,
    })
}
