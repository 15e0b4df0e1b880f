//! The admin actions of the product flow, as command-line subcommands: tenants, tokens, and
//! the groups an IdP pushed ("user collections") with their members. The queries are plain
//! functions over the public scimkit API so that an admin UI can reuse them.

use chrono::{DateTime, Utc};
use scimkit::resource::Member;
use scimkit::store::ListQuery;
use scimkit::{error::ScimError, resource::ResourceId, tenant::TenantId};

use super::app::App;
use super::cli::{Cli, Command};

/// A group as an admin screen lists it.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    /// The group's id.
    pub id: ResourceId,
    /// Its `displayName`.
    pub display_name: String,
    /// How many direct members it has.
    pub member_count: usize,
    /// When it (or its membership) last changed.
    pub last_modified: DateTime<Utc>,
}

/// A group member as an admin screen lists it.
#[derive(Debug, Clone)]
pub struct MemberSummary {
    /// The member as the store lists it (id, type, display).
    pub member: Member,
    /// The member's `userName`, for users.
    pub user_name: Option<String>,
    /// Whether the user is active (`None` for groups, or when not set).
    pub active: Option<bool>,
}

/// Every group of `tenant`, ordered by display name, with member counts.
pub async fn list_groups(app: &App, tenant: &TenantId) -> Result<Vec<GroupSummary>, ScimError> {
    let group = group_def(app)?;
    let page = app
        .store()
        .list(tenant, &group, &ListQuery::default())
        .await?;
    let mut out = Vec::with_capacity(page.resources.len());
    for g in page.resources {
        // A page of zero members still reports the group's member count.
        let members = app.store().members(tenant, &group, &g.id, 1, 0).await?;
        out.push(GroupSummary {
            display_name: text(&g.doc, "displayName").unwrap_or_default(),
            id: g.id,
            member_count: members.total_results,
            last_modified: g.last_modified,
        });
    }
    out.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
    Ok(out)
}

/// A page of the members of group `id` (1-based `start_index`), with each user's
/// `userName` and `active`, and the group's total member count.
pub async fn group_members(
    app: &App,
    tenant: &TenantId,
    id: &ResourceId,
    start_index: usize,
    count: usize,
) -> Result<(Vec<MemberSummary>, usize), ScimError> {
    let group = group_def(app)?;
    let user = app
        .service
        .registry()
        .user()
        .cloned()
        .ok_or_else(|| ScimError::internal_msg("the registry serves no User type"))?;
    let page = app
        .store()
        .members(tenant, &group, id, start_index, count)
        .await?;
    let mut out = Vec::with_capacity(page.members.len());
    for member in page.members {
        let (user_name, active) = if member.resource_type.eq_ignore_ascii_case("User") {
            match app.store().get(tenant, &user, &member.value, false).await {
                Ok(u) => (
                    text(&u.doc, "userName"),
                    u.doc.get("active").and_then(serde_json::Value::as_bool),
                ),
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };
        out.push(MemberSummary {
            member,
            user_name,
            active,
        });
    }
    Ok((out, page.total_results))
}

fn group_def(app: &App) -> Result<std::sync::Arc<scimkit::schema::ResourceDef>, ScimError> {
    app.service
        .registry()
        .group()
        .cloned()
        .ok_or_else(|| ScimError::internal_msg("the registry serves no Group type"))
}

fn text(doc: &serde_json::Value, key: &str) -> Option<String> {
    doc.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Runs an admin command (anything but `serve` and `help`) and prints its result.
pub async fn run(app: &App, cli: &Cli) -> Result<(), String> {
    if cli.store == super::cli::StoreSpec::Memory && cli.command != Command::TenantList {
        return Err(
            "admin commands need a durable store (--store sqlite:PATH or \
                    postgres:URL): a memory store lives only inside the running server"
                .to_owned(),
        );
    }
    let id = &cli.tenant;
    let fail = |e: ScimError| e.detail().to_owned();
    match &cli.command {
        Command::Serve | Command::Help => Ok(()),
        Command::TenantCreate { name } => {
            let name = name.clone().unwrap_or_else(|| id.to_string());
            let settings = if cli.strict {
                scimkit::settings::Settings::strict()
            } else {
                scimkit::settings::Settings::default()
            };
            app.tenants
                .create_tenant(id.clone(), name, settings)
                .await
                .map_err(fail)?;
            println!("Created tenant {id} (SCIM enabled).");
            println!("SCIM base URL: {}", app.service.base_url(id));
            println!("Next: `token create --tenant {id}` to get its bearer token.");
            Ok(())
        }
        Command::TenantList => {
            let tenants = app.tenants.list_tenants().await.map_err(fail)?;
            if tenants.is_empty() {
                println!("No tenants yet.");
            }
            for t in tenants {
                println!(
                    "{}\t{}\tSCIM {}\t{}",
                    t.id,
                    t.display_name,
                    if t.scim_enabled {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    app.service.base_url(&t.id)
                );
            }
            Ok(())
        }
        Command::TenantEnable(on) => {
            app.tenants.set_scim_enabled(id, *on).await.map_err(fail)?;
            println!(
                "SCIM provisioning {} for tenant {id}.",
                if *on { "enabled" } else { "disabled" }
            );
            Ok(())
        }
        Command::TokenCreate { label } => {
            let (record, secret) = app
                .tenants
                .issue_token(id, label.as_str(), None)
                .await
                .map_err(fail)?;
            println!("SCIM base URL: {}", app.service.base_url(id));
            println!("Bearer token: {}", secret.expose_secret());
            eprintln!(
                "Token {} issued. Copy it now: it is not stored and will not be shown again.",
                record.id
            );
            Ok(())
        }
        Command::TokenList => {
            let tokens = app.tenants.list_tokens(id).await.map_err(fail)?;
            if tokens.is_empty() {
                println!("Tenant {id} has no tokens.");
            }
            let now = Utc::now();
            println!("ID\tLABEL\tCREATED\tLAST USED\tSTATUS");
            for t in tokens {
                let status = if t.revoked {
                    "revoked"
                } else if t.is_expired(now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{status}",
                    t.id,
                    t.label,
                    when(Some(t.created)),
                    when(t.last_used)
                );
            }
            Ok(())
        }
        Command::TokenRevoke(token) => {
            app.tenants.revoke_token(id, token).await.map_err(fail)?;
            println!("Token {token} revoked.");
            Ok(())
        }
        Command::Groups => {
            let groups = list_groups(app, id).await.map_err(fail)?;
            if groups.is_empty() {
                println!("Tenant {id} has no groups yet: push groups from the identity provider.");
            }
            println!("ID\tNAME\tMEMBERS\tLAST CHANGE");
            for g in groups {
                println!(
                    "{}\t{}\t{}\t{}",
                    g.id,
                    g.display_name,
                    g.member_count,
                    when(Some(g.last_modified))
                );
            }
            Ok(())
        }
        Command::Members(group) => {
            let group = ResourceId::from(group.as_str());
            let mut start = 1;
            println!("ID\tTYPE\tNAME\tUSERNAME\tACTIVE");
            loop {
                let (members, total) = group_members(app, id, &group, start, 500)
                    .await
                    .map_err(fail)?;
                let fetched = members.len();
                for m in members {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        m.member.value,
                        m.member.resource_type,
                        m.member.display.as_deref().unwrap_or(""),
                        m.user_name.as_deref().unwrap_or(""),
                        m.active.map_or(String::new(), |a| a.to_string())
                    );
                }
                start += fetched;
                if fetched == 0 || start > total {
                    break;
                }
            }
            Ok(())
        }
    }
}
