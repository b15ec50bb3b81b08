//! `add-user`, `set-roles`, `disable-user`, `enable-user`, `reset-mfa`, `list-users`.

use std::io::{BufRead, IsTerminal};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::{json, Value};

use gatehouse::domain::account::{
    legacy_email, new_account_email, normalize_email, normalize_name, role_list,
};
use gatehouse::domain::config::{MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS};
use gatehouse::domain::password;
use gatehouse::domain::store::{PasswordPhc, Store, User, UserQuery};
use gatehouse::primitives::encoding::new_id;
use gatehouse::primitives::error::Error;
use gatehouse::primitives::platform::{RustPbkdf2, SystemRng};
use gatehouse::routes::views::admin_user_json;
use gatehouse::services::audit::cli_event;

use crate::ready;
use crate::wrangler::Target;

/// `add-user`: writes `registered`, or with --update `role_changed` (when the roles differ) and
/// `password_changed`.
#[derive(Args)]
pub struct AddUser {
    #[arg(long)]
    email: String,
    /// Display name of a new user.
    #[arg(long)]
    name: Option<String>,
    /// Comma-separated roles.
    #[arg(long, default_value = "user", value_name = "a,b")]
    roles: String,
    /// Read the password from the first line of stdin instead of a prompt.
    #[arg(long)]
    password_stdin: bool,
    /// Replace the password and roles of an existing user, and revoke all their sessions.
    #[arg(long)]
    update: bool,
    /// PBKDF2 iterations of the new hash.
    #[arg(long, default_value_t = MAX_PBKDF2_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_PBKDF2_ITERATIONS)..=i64::from(MAX_PBKDF2_ITERATIONS)))]
    iterations: u32,
    #[command(flatten)]
    target: Target,
}

/// `set-roles`: writes `role_changed`.
#[derive(Args)]
pub struct SetRoles {
    #[arg(long)]
    email: String,
    /// Comma-separated roles.
    #[arg(long, value_name = "a,b")]
    roles: String,
    #[command(flatten)]
    target: Target,
}

/// `disable-user`, `enable-user` and `reset-mfa`.
#[derive(Args)]
pub struct ByEmail {
    #[arg(long)]
    email: String,
    #[command(flatten)]
    target: Target,
}

/// `list-users`.
#[derive(Args)]
pub struct ListUsers {
    /// Case-insensitive part of the email or name.
    #[arg(long)]
    search: Option<String>,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// Print JSON (the admin API's user view).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a failed store call says on the command line.
pub fn say(err: Error) -> String {
    match err {
        Error::Internal(detail) | Error::Unavailable(detail) => detail,
        other => other.public_message(),
    }
}

fn roles(raw: &str) -> Result<Vec<String>, String> {
    role_list(raw.split(',').map(str::trim).filter(|r| !r.is_empty())).map_err(say)
}

/// The enabled or disabled user with this email.
pub fn user(target: &Target, raw_email: &str) -> Result<User, String> {
    let email = normalize_email(raw_email).map_err(say)?;
    let store = target.store();
    let mut found = ready(store.user_by_email(&email)).map_err(say)?;
    if let (None, Some(legacy)) = (&found, legacy_email(raw_email)) {
        // An account stored before emails were folded, under a spelling folding changes.
        found = ready(store.user_by_email(&legacy)).map_err(say)?;
    }
    found.ok_or_else(|| format!("no user {email} in the {} D1 database", target.place()))
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    let stdin = std::io::stdin();
    let password = if from_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from stdin: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    };
    password::check_policy(&password).map_err(say)?;
    Ok(password)
}

pub fn add_user(args: &AddUser) -> Result<(), String> {
    // A new account's email must not pass for another's (checked again below for an --update
    // that finds no account to update).
    let email = if args.update {
        normalize_email(&args.email)
    } else {
        new_account_email(&args.email)
    }
    .map_err(say)?;
    let name = normalize_name(args.name.as_deref()).map_err(say)?;
    let roles = roles(&args.roles)?;
    let pw = read_password(args.password_stdin)?;
    let phc = ready(password::hash(
        &RustPbkdf2,
        &SystemRng,
        &pw,
        args.iterations,
    ))
    .map_err(say)?;
    let existing = if args.update {
        ready(args.target.store().user_by_email(&email)).map_err(say)?
    } else {
        None
    };
    if args.update && existing.is_none() {
        new_account_email(&args.email).map_err(say)?;
    }
    if let Some(user) = existing {
        if args.name.is_some() {
            eprintln!("gatehouse: --name is not changed by --update");
        }
        return update_user(args, &user, &roles, &phc);
    }
    create_user(args, email, name, roles, phc)
}

/// `add-user` of a new account: the user and its `registered` event.
fn create_user(
    args: &AddUser,
    email: String,
    name: Option<String>,
    roles: Vec<String>,
    phc: PasswordPhc,
) -> Result<(), String> {
    let now = now_ms();
    let user = User {
        id: new_id(&SystemRng, "usr_"),
        email,
        name,
        password_hash: phc,
        roles,
        disabled: false,
        created_at: now,
        updated_at: now,
        totp: false,
    };
    let event = cli_event(
        now,
        "registered",
        &user.id,
        Some(json!({ "roles": user.roles })),
    );
    match ready(args.target.store().create_user(&user, None, Some(&event))) {
        Err(Error::EmailTaken) => Err(
            "an account with this email already exists (use --update to replace its password and roles)"
                .into(),
        ),
        Err(err) => Err(say(err)),
        Ok(()) => {
            println!(
                "created {} with roles [{}] in the {} D1 database",
                user.email,
                user.roles.join(", "),
                args.target.place()
            );
            Ok(())
        }
    }
}

/// `add-user --update` of an existing user: new roles (when they differ) and password, which
/// revokes their sessions.
fn update_user(
    args: &AddUser,
    user: &User,
    roles: &[String],
    phc: &PasswordPhc,
) -> Result<(), String> {
    let store = args.target.store();
    let now = now_ms();
    if user.roles != roles {
        let detail = json!({ "from": user.roles, "to": roles });
        let event = cli_event(now, "role_changed", &user.id, Some(detail));
        ready(store.set_roles(&user.id, roles, now, &event)).map_err(say)?;
    }
    let event = cli_event(now, "password_changed", &user.id, None);
    let revoked = ready(store.change_password(&user.id, phc, None, now, &event)).map_err(say)?;
    println!(
        "saved {} with roles [{}] in the {} D1 database; revoked {revoked} sessions",
        user.email,
        roles.join(", "),
        args.target.place()
    );
    Ok(())
}

pub fn set_roles(args: &SetRoles) -> Result<(), String> {
    let roles = roles(&args.roles)?;
    let user = user(&args.target, &args.email)?;
    let now = now_ms();
    let detail = json!({ "from": user.roles, "to": roles });
    let event = cli_event(now, "role_changed", &user.id, Some(detail));
    ready(args.target.store().set_roles(&user.id, &roles, now, &event)).map_err(say)?;
    println!(
        "{} now has roles [{}] (access tokens already issued keep their roles until they expire; the admin API re-reads them at once)",
        user.email,
        roles.join(", ")
    );
    Ok(())
}

pub fn set_disabled(args: &ByEmail, disabled: bool) -> Result<(), String> {
    let user = user(&args.target, &args.email)?;
    let now = now_ms();
    let kind = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    let event = cli_event(now, kind, &user.id, None);
    let revoked = ready(
        args.target
            .store()
            .set_disabled(&user.id, disabled, now, &event),
    )
    .map_err(say)?
    .ok_or_else(|| format!("no user {} any more", user.email))?;
    if disabled {
        println!(
            "disabled {} and revoked their {revoked} sessions; their API keys stop working at once",
            user.email
        );
    } else {
        println!("enabled {}", user.email);
    }
    Ok(())
}

/// `reset-mfa`: removes the user's TOTP and recovery codes, with a `totp_removed` event, as
/// `DELETE /admin/users/{id}/mfa` does (no MFA key needed).
pub fn reset_mfa(args: &ByEmail) -> Result<(), String> {
    let user = user(&args.target, &args.email)?;
    let event = cli_event(now_ms(), "totp_removed", &user.id, None);
    let removed = ready(args.target.store().remove_totp(&user.id, &event)).map_err(say)?;
    if !removed {
        return Err(format!("{} has no TOTP second factor", user.email));
    }
    println!(
        "removed the TOTP second factor and recovery codes of {}; they log in with their password alone",
        user.email
    );
    Ok(())
}

pub fn list_users(args: &ListUsers) -> Result<(), String> {
    let query = UserQuery {
        search: args.search.clone(),
        after_email: None,
        limit: args.limit,
    };
    let users = ready(args.target.store().list_users(&query)).map_err(say)?;
    if args.json {
        let list: Vec<Value> = users.iter().map(admin_user_json).collect();
        println!("{}", Value::Array(list));
        return Ok(());
    }
    if users.is_empty() {
        println!("no users");
    }
    for u in &users {
        println!(
            "{}  {}  {}  roles {}  {}  created {}",
            u.id,
            u.email,
            u.name
                .as_ref()
                .map_or("-".to_string(), |n| format!("{n:?}")),
            json!(u.roles),
            if u.disabled { "DISABLED" } else { "enabled" },
            time(Some(u.created_at)),
        );
    }
    Ok(())
}

/// A Unix-ms instant as `YYYY-MM-DD HH:MM:SS` (UTC), or `-`.
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}
