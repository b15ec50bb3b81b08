//! `mint-key`, `list-keys`, `revoke-key`.

use std::collections::HashMap;

use clap::Args;
use serde_json::{json, Value};

use gatehouse::domain::apikey::{self, key_json};
use gatehouse::domain::config::api_key_pepper;
use gatehouse::domain::store::{ApiKey, Store, UserQuery};
use gatehouse::primitives::encoding::new_id;
use gatehouse::primitives::platform::SystemRng;
use gatehouse::primitives::secrets::Pepper;
use gatehouse::services::audit::cli_event;

use crate::ready;
use crate::users::{now_ms, say, time, user};
use crate::wrangler::Target;

/// `mint-key`: the owner must hold the role.
#[derive(Args)]
pub struct MintKey {
    /// The owner's email.
    #[arg(long)]
    owner: String,
    #[arg(long)]
    label: String,
    /// The one role the key acts with.
    #[arg(long)]
    role: String,
    /// Comma-separated proxy route names the key may use.
    #[arg(long, default_value = "", value_name = "a,b")]
    scopes: String,
    /// Days until the key expires (default: never).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=3650))]
    expires_days: Option<i64>,
    #[command(flatten)]
    target: Target,
}

/// `list-keys`.
#[derive(Args)]
pub struct ListKeys {
    /// Only this user's keys.
    #[arg(long)]
    owner: Option<String>,
    /// Print JSON (the admin API's key view).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `revoke-key`.
#[derive(Args)]
pub struct RevokeKey {
    /// `key_…` (see list-keys).
    key_id: String,
    #[command(flatten)]
    target: Target,
}

/// The same pepper as the worker, from the environment (never an argument), read by the
/// worker's own rule.
fn env_pepper() -> Result<Pepper, String> {
    let raw = std::env::var("API_KEY_PEPPER").map_err(|_| {
        "mint-key needs the worker's API_KEY_PEPPER in the environment (e.g. `read -rs API_KEY_PEPPER; export API_KEY_PEPPER`)".to_string()
    })?;
    api_key_pepper(&|name: &str| (name == "API_KEY_PEPPER").then(|| raw.clone()))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "API_KEY_PEPPER is empty".to_string())
}

pub fn mint_key(args: &MintKey) -> Result<(), String> {
    let label = apikey::label(&args.label).map_err(say)?;
    let scopes = apikey::scopes(
        args.scopes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty()),
    )
    .map_err(say)?;
    let now = now_ms();
    let expires_at = args.expires_days.map(|days| now + days * 86_400_000);
    let expires_at = apikey::expiry(expires_at, now).map_err(say)?;
    let pepper = env_pepper()?;
    let owner = user(&args.target, &args.owner)?;
    if owner.disabled || !owner.roles.contains(&args.role) {
        return Err(format!(
            "no enabled user {} holding role {:?} in the {} D1 database (set-roles can grant it)",
            owner.email,
            args.role,
            args.target.place()
        ));
    }
    let key = apikey::generate(&SystemRng);
    let record = ApiKey {
        id: new_id(&SystemRng, "key_"),
        key_hash: apikey::hash(&pepper, &key),
        label,
        owner_user_id: owner.id.clone(),
        created_by: None,
        role: args.role.clone(),
        scopes,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let detail = json!({ "key_id": record.id, "role": record.role, "scopes": record.scopes });
    let event = cli_event(now, "api_key_minted", &owner.id, Some(detail));
    ready(args.target.store().create_api_key(&record, &event)).map_err(say)?;
    println!(
        "minted {} for {}: role {}, scopes [{}], {}",
        record.id,
        owner.email,
        record.role,
        record.scopes.join(", "),
        match record.expires_at {
            None => "never expires".to_string(),
            Some(at) => format!("expires {}", time(Some(at))),
        }
    );
    println!("API key (shown only now; store it safely):");
    println!("{key}");
    Ok(())
}

pub fn list_keys(args: &ListKeys) -> Result<(), String> {
    let store = args.target.store();
    let owner = match &args.owner {
        Some(email) => Some(user(&args.target, email)?),
        None => None,
    };
    let keys = ready(store.list_api_keys(owner.as_ref().map(|u| u.id.as_str()))).map_err(say)?;
    if args.json {
        let list: Vec<Value> = keys.iter().map(key_json).collect();
        println!("{}", Value::Array(list));
        return Ok(());
    }
    if keys.is_empty() {
        println!("no API keys");
        return Ok(());
    }
    // Owners' emails: the one asked for, or every user's (one read).
    let emails: HashMap<String, String> = match owner {
        Some(u) => HashMap::from([(u.id, u.email)]),
        None => {
            let query = UserQuery {
                search: None,
                after_email: None,
                limit: u32::MAX >> 1,
            };
            ready(store.list_users(&query))
                .map_err(say)?
                .into_iter()
                .map(|u| (u.id, u.email))
                .collect()
        }
    };
    let now = now_ms();
    for k in &keys {
        let state = match (k.revoked_at, k.expires_at) {
            (Some(at), _) => format!("revoked {}", time(Some(at))),
            (None, Some(at)) if at <= now => format!("expired {}", time(Some(at))),
            _ => "active".into(),
        };
        println!(
            "{}  {}  owner {}  role {}  scopes {}  created {}  last used {}  {}",
            k.id,
            k.label,
            emails.get(&k.owner_user_id).unwrap_or(&k.owner_user_id),
            k.role,
            json!(k.scopes),
            time(Some(k.created_at)),
            time(k.last_used_at),
            state
        );
    }
    Ok(())
}

pub fn revoke_key(args: &RevokeKey) -> Result<(), String> {
    let store = args.target.store();
    let id = &args.key_id;
    let key = ready(store.api_key(id))
        .map_err(say)?
        .ok_or_else(|| format!("no API key {id} in the {} D1 database", args.target.place()))?;
    if let Some(at) = key.revoked_at {
        println!("{id} was already revoked ({})", time(Some(at)));
        return Ok(());
    }
    let now = now_ms();
    let event = cli_event(
        now,
        "api_key_revoked",
        &key.owner_user_id,
        Some(json!({ "key_id": id })),
    );
    if ready(store.revoke_api_key(id, now, &event)).map_err(say)? {
        println!("revoked {id}; the admin API refuses it at once, the proxy within REVOCATION_DELAY_SECONDS");
    } else {
        println!("{id} was already revoked");
    }
    Ok(())
}
