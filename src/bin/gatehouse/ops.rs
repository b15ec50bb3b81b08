//! The operator commands on keys and users: `mint-key`, `list-keys`, `revoke-key`, `set-roles`,
//! `disable-user`, `enable-user`, `list-users`. Each builds SQL, runs it with
//! `wrangler d1 execute --json` against local or remote D1, and reads the last statement's rows
//! to say what happened. Every change writes the same audit event as the admin API (actor
//! `NULL`: the CLI, `"by": "cli"` in the detail).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use gatehouse::domain::account::normalize_email;
use gatehouse::domain::apikey;
use gatehouse::domain::config::api_key_pepper;
use gatehouse::domain::vars::valid_role;
use gatehouse::primitives::encoding::new_id;
use gatehouse::primitives::platform::SystemRng;
use gatehouse::primitives::secrets::Pepper;

use super::cli::{quote, run_wrangler, Target};

/// Parsed options: flags with values, switches and positional arguments.
struct Opts {
    target: Target,
    print_sql: bool,
    json: bool,
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Opts {
    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn need(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }
}

fn parse(cmd: &str, args: &[String], valued: &[&str]) -> Result<Opts, String> {
    let mut opts = Opts {
        target: Target {
            remote: false,
            database: "DB".into(),
            persist_to: None,
            config: None,
        },
        print_sql: false,
        json: false,
        values: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--local" => opts.target.remote = false,
            "--remote" => opts.target.remote = true,
            "--print-sql" => opts.print_sql = true,
            "--json" => opts.json = true,
            "--database" => opts.target.database = value("--database")?,
            "--persist-to" => opts.target.persist_to = Some(PathBuf::from(value("--persist-to")?)),
            "--config" => opts.target.config = Some(PathBuf::from(value("--config")?)),
            flag if flag.starts_with("--") && valued.contains(&&flag[2..]) => {
                let v = value(flag)?;
                opts.values.push((flag[2..].to_string(), v));
            }
            flag if flag.starts_with('-') => {
                return Err(format!(
                    "{cmd}: unknown option {flag} (see gatehouse --help)"
                ))
            }
            other => opts.positional.push(other.to_string()),
        }
    }
    Ok(opts)
}

fn now_ms() -> Result<i64, String> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as i64)
}

fn names(raw: &str, what: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !valid_role(name) || name == "anonymous" {
            return Err(format!(
                "{what}: {name:?} is not a valid name (a-z, 0-9, _ - .)"
            ));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn json_sql(value: &Value) -> String {
    quote(&value.to_string())
}

/// Runs `sql` (or prints it) and returns the rows of its last statement.
fn execute(opts: &Opts, sql: &str) -> Result<Option<Vec<Value>>, String> {
    if opts.print_sql {
        print!("{sql}");
        return Ok(None);
    }
    let out = run_wrangler(&opts.target, sql, true)?;
    let start = out
        .find('[')
        .ok_or_else(|| format!("unexpected wrangler output: {out}"))?;
    let parsed: Value = serde_json::from_str(&out[start..])
        .map_err(|e| format!("unexpected wrangler output ({e}): {out}"))?;
    let last = parsed
        .as_array()
        .and_then(|a| a.last())
        .ok_or_else(|| format!("unexpected wrangler output: {out}"))?;
    Ok(Some(
        last["results"].as_array().cloned().unwrap_or_default(),
    ))
}

fn where_(opts: &Opts) -> &'static str {
    if opts.target.remote {
        "remote"
    } else {
        "local"
    }
}

fn time(ms: &Value) -> String {
    ms.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// Dispatches one command.
pub fn run(cmd: &str, args: &[String]) -> Result<(), String> {
    match cmd {
        "mint-key" => mint_key(args),
        "list-keys" => list_keys(args),
        "revoke-key" => revoke_key(args),
        "set-roles" => set_roles(args),
        "disable-user" => set_disabled(args, true),
        "enable-user" => set_disabled(args, false),
        "list-users" => list_users(args),
        _ => Err(format!("unknown command {cmd}")),
    }
}

fn mint_key(args: &[String]) -> Result<(), String> {
    let opts = parse(
        "mint-key",
        args,
        &["owner", "label", "role", "scopes", "expires-days"],
    )?;
    let owner = normalize_email(opts.need("owner")?).map_err(|e| e.public_message())?;
    let label = opts.need("label")?.trim().to_string();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err("--label: 1-100 characters, no control characters".into());
    }
    let role = opts.need("role")?.to_string();
    if !valid_role(&role) {
        return Err(format!("--role: {role:?} is not a valid role name"));
    }
    let scopes = names(opts.get("scopes").unwrap_or(""), "--scopes")?;
    let now = now_ms()?;
    let expires_at = expires_at_sql(&opts, now)?;
    let pepper = env_pepper()?;
    let key = apikey::generate(&SystemRng);
    let id = new_id(&SystemRng, "key_");
    let hash = apikey::hash(&pepper, &key);
    let scopes_json = json!(scopes);
    let detail = json!({ "key_id": id, "role": role, "scopes": scopes, "by": "cli" });
    let sql = format!(
        "INSERT INTO api_keys (id, key_hash, label, owner_user_id, created_by, role, scopes, created_at, expires_at)\n  \
         SELECT {id_q}, {hash}, {label}, id, NULL, {role_q}, {scopes}, {now}, {expires_at} FROM users\n  \
         WHERE email = {owner_q} AND disabled = 0 AND EXISTS (SELECT 1 FROM json_each(users.roles) WHERE value = {role_q});\n\
         INSERT INTO audit_events (at, kind, actor_user_id, subject_user_id, detail)\n  \
         SELECT {now}, 'api_key_minted', NULL, owner_user_id, {detail} FROM api_keys WHERE id = {id_q};\n\
         SELECT id FROM api_keys WHERE id = {id_q};\n",
        id_q = quote(&id),
        hash = quote(&hash),
        label = quote(&label),
        role_q = quote(&role),
        scopes = json_sql(&scopes_json),
        owner_q = quote(&owner),
        detail = json_sql(&detail),
    );
    let Some(rows) = execute(&opts, &sql)? else {
        eprintln!("key (shown once, valid only if the SQL above is run): {key}");
        return Ok(());
    };
    if rows.is_empty() {
        return Err(format!(
            "no enabled user {owner} holding role {role:?} in the {} D1 database (set-roles can grant it)",
            where_(&opts)
        ));
    }
    println!(
        "minted {id} for {owner}: role {role}, scopes [{}], {}",
        scopes.join(", "),
        if expires_at == "NULL" {
            "never expires".to_string()
        } else {
            format!(
                "expires {}",
                time(&json!(expires_at.parse::<i64>().unwrap_or(0)))
            )
        }
    );
    println!("API key (shown only now; store it safely):");
    println!("{key}");
    Ok(())
}

/// `--expires-days` as the SQL of the expiry instant (`NULL`: never).
fn expires_at_sql(opts: &Opts, now: i64) -> Result<String, String> {
    match opts.get("expires-days") {
        None => Ok("NULL".to_string()),
        Some(raw) => {
            let days: i64 = raw
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or("--expires-days must be a whole number from 1 to 3650")?;
            Ok((now + days * 86_400_000).to_string())
        }
    }
}

/// The same pepper as the worker, from the environment (never an argument), read by the
/// worker's own rule.
fn env_pepper() -> Result<Pepper, String> {
    let pepper_raw = std::env::var("API_KEY_PEPPER").map_err(|_| {
        "mint-key needs the worker's API_KEY_PEPPER in the environment (e.g. `read -rs API_KEY_PEPPER; export API_KEY_PEPPER`)".to_string()
    })?;
    api_key_pepper(&|name: &str| (name == "API_KEY_PEPPER").then(|| pepper_raw.clone()))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "API_KEY_PEPPER is empty".to_string())
}

fn list_keys(args: &[String]) -> Result<(), String> {
    let opts = parse("list-keys", args, &["owner"])?;
    let owner = match opts.get("owner") {
        Some(raw) => quote(&normalize_email(raw).map_err(|e| e.public_message())?),
        None => "NULL".into(),
    };
    let sql = format!(
        "SELECT k.id, k.label, u.email AS owner, k.role, k.scopes, k.created_at, k.expires_at, k.last_used_at, k.revoked_at\n  \
         FROM api_keys k JOIN users u ON u.id = k.owner_user_id\n  \
         WHERE {owner} IS NULL OR u.email = {owner} ORDER BY k.created_at DESC;\n"
    );
    let Some(rows) = execute(&opts, &sql)? else {
        return Ok(());
    };
    if opts.json {
        println!("{}", Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no API keys");
        return Ok(());
    }
    for r in &rows {
        let state = if !r["revoked_at"].is_null() {
            format!("revoked {}", time(&r["revoked_at"]))
        } else if r["expires_at"]
            .as_i64()
            .is_some_and(|e| e <= now_ms().unwrap_or(0))
        {
            format!("expired {}", time(&r["expires_at"]))
        } else {
            "active".into()
        };
        println!(
            "{}  {}  owner {}  role {}  scopes {}  created {}  last used {}  {}",
            r["id"].as_str().unwrap_or(""),
            r["label"].as_str().unwrap_or(""),
            r["owner"].as_str().unwrap_or(""),
            r["role"].as_str().unwrap_or(""),
            r["scopes"].as_str().unwrap_or("[]"),
            time(&r["created_at"]),
            time(&r["last_used_at"]),
            state
        );
    }
    Ok(())
}

fn revoke_key(args: &[String]) -> Result<(), String> {
    let opts = parse("revoke-key", args, &[])?;
    let [id] = opts.positional.as_slice() else {
        return Err("revoke-key takes one key id (key_…; see list-keys)".into());
    };
    let now = now_ms()?;
    let id_q = quote(id);
    let detail = json_sql(&json!({ "key_id": id, "by": "cli" }));
    let sql = format!(
        "UPDATE api_keys SET revoked_at = {now} WHERE id = {id_q} AND revoked_at IS NULL;\n\
         INSERT INTO audit_events (at, kind, actor_user_id, subject_user_id, detail)\n  \
         SELECT {now}, 'api_key_revoked', NULL, owner_user_id, {detail} FROM api_keys WHERE id = {id_q} AND revoked_at = {now};\n\
         SELECT revoked_at FROM api_keys WHERE id = {id_q};\n"
    );
    let Some(rows) = execute(&opts, &sql)? else {
        return Ok(());
    };
    match rows.first().map(|r| r["revoked_at"].as_i64()) {
        None => Err(format!(
            "no API key {id} in the {} D1 database",
            where_(&opts)
        )),
        Some(Some(t)) if t == now => {
            println!("revoked {id}; it stops working on its next request");
            Ok(())
        }
        Some(t) => {
            println!("{id} was already revoked ({})", time(&json!(t)));
            Ok(())
        }
    }
}

fn set_roles(args: &[String]) -> Result<(), String> {
    let opts = parse("set-roles", args, &["email", "roles"])?;
    let email = normalize_email(opts.need("email")?).map_err(|e| e.public_message())?;
    let roles = names(opts.need("roles")?, "--roles")?;
    let now = now_ms()?;
    let roles_json = json!(roles);
    let email_q = quote(&email);
    let detail = json_sql(&json!({ "to": roles, "by": "cli" }));
    let sql = format!(
        "UPDATE users SET roles = {roles}, updated_at = {now} WHERE email = {email_q};\n\
         INSERT INTO audit_events (at, kind, actor_user_id, subject_user_id, detail)\n  \
         SELECT {now}, 'role_changed', NULL, id, {detail} FROM users WHERE email = {email_q} AND updated_at = {now};\n\
         SELECT id, roles FROM users WHERE email = {email_q};\n",
        roles = json_sql(&roles_json),
    );
    let Some(rows) = execute(&opts, &sql)? else {
        return Ok(());
    };
    if rows.is_empty() {
        return Err(format!(
            "no user {email} in the {} D1 database",
            where_(&opts)
        ));
    }
    println!(
        "{email} now has roles [{}] (access tokens already issued keep their roles until they expire; the admin API re-reads them at once)",
        roles.join(", ")
    );
    Ok(())
}

fn set_disabled(args: &[String], disabled: bool) -> Result<(), String> {
    let cmd = if disabled {
        "disable-user"
    } else {
        "enable-user"
    };
    let opts = parse(cmd, args, &["email"])?;
    let email = normalize_email(opts.need("email")?).map_err(|e| e.public_message())?;
    let now = now_ms()?;
    let email_q = quote(&email);
    let kind = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    let detail = json_sql(&json!({ "by": "cli" }));
    let mut sql = format!(
        "UPDATE users SET disabled = {flag}, updated_at = {now} WHERE email = {email_q};\n\
         INSERT INTO audit_events (at, kind, actor_user_id, subject_user_id, detail)\n  \
         SELECT {now}, '{kind}', NULL, id, {detail} FROM users WHERE email = {email_q} AND updated_at = {now};\n",
        flag = i32::from(disabled),
    );
    if disabled {
        sql.push_str(&format!(
            "UPDATE refresh_families SET revoked_at = {now}, revoke_reason = 'admin'\n  \
             WHERE revoked_at IS NULL AND user_id = (SELECT id FROM users WHERE email = {email_q});\n"
        ));
    }
    sql.push_str(&format!("SELECT id FROM users WHERE email = {email_q};\n"));
    let Some(rows) = execute(&opts, &sql)? else {
        return Ok(());
    };
    if rows.is_empty() {
        return Err(format!(
            "no user {email} in the {} D1 database",
            where_(&opts)
        ));
    }
    if disabled {
        println!(
            "disabled {email} and revoked all their sessions; their API keys stop working at once"
        );
    } else {
        println!("enabled {email}");
    }
    Ok(())
}

fn list_users(args: &[String]) -> Result<(), String> {
    let opts = parse("list-users", args, &["search", "limit"])?;
    let limit: u32 = match opts.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or("--limit must be a whole number from 1 to 10000")?,
    };
    let pattern = match opts.get("search") {
        Some(s) => {
            let escaped: String = s
                .to_lowercase()
                .chars()
                .flat_map(|c| {
                    if matches!(c, '%' | '_' | '\\') {
                        vec!['\\', c]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            quote(&format!("%{escaped}%"))
        }
        None => "NULL".into(),
    };
    let sql = format!(
        "SELECT id, email, name, roles, disabled, created_at FROM users\n  \
         WHERE {pattern} IS NULL OR lower(email) LIKE {pattern} ESCAPE '\\' OR lower(coalesce(name, '')) LIKE {pattern} ESCAPE '\\'\n  \
         ORDER BY email LIMIT {limit};\n"
    );
    let Some(rows) = execute(&opts, &sql)? else {
        return Ok(());
    };
    if opts.json {
        println!("{}", Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no users");
        return Ok(());
    }
    for r in &rows {
        println!(
            "{}  {}  {}  roles {}  {}  created {}",
            r["id"].as_str().unwrap_or(""),
            r["email"].as_str().unwrap_or(""),
            r["name"]
                .as_str()
                .map_or("-".to_string(), |n| format!("{n:?}")),
            r["roles"].as_str().unwrap_or("[]"),
            if r["disabled"].as_i64() == Some(1) {
                "DISABLED"
            } else {
                "enabled"
            },
            time(&r["created_at"]),
        );
    }
    Ok(())
}
