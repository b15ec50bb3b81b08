//! `keygen` and `add-user`, the wrangler runner and the helpers every command shares.

use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::pin::pin;
use std::process::{Command, ExitCode, Stdio};
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use gatehouse::domain::account::{normalize_email, normalize_name};
use gatehouse::domain::config::{MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS};
use gatehouse::domain::password;
use gatehouse::domain::token::{public_jwk, KeySet};
use gatehouse::domain::vars::valid_role;
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::encoding::new_id;
use gatehouse::primitives::platform::{random_array, RustPbkdf2, SystemRng};

const USAGE: &str = "\
usage:
  gatehouse keygen [--env]
      Makes an Ed25519 signing key. Prints the secret for `wrangler secret put JWT_SIGNING_KEY`
      and the public JWK. With --env, prints only `JWT_SIGNING_KEY=<secret>` (for .dev.vars).
  gatehouse add-user --email EMAIL [--name NAME] [--roles a,b] [--password-stdin]
                     [--local | --remote] [--update] [--iterations N]
                     [--database NAME] [--persist-to DIR] [--config FILE] [--print-sql]
      Creates a user in D1 through `wrangler d1 execute` (local by default). The password is
      prompted for, or read from the first line of stdin with --password-stdin. --update
      replaces the password and roles of an existing user and revokes all their sessions.
      --print-sql prints the SQL instead of running it. Writes the audit events the admin API
      does (registered; with --update password_changed, and role_changed if roles differ).
  gatehouse keygen --pepper
      Makes an API_KEY_PEPPER secret (for `wrangler secret put API_KEY_PEPPER`).
  gatehouse mint-key --owner EMAIL --label LABEL --role ROLE [--scopes a,b] [--expires-days N]
      Mints an API key for the user; prints it once. The owner must hold ROLE. Needs the
      worker's API_KEY_PEPPER in the environment.
  gatehouse list-keys [--owner EMAIL] [--json]
  gatehouse revoke-key KEY_ID
  gatehouse set-roles --email EMAIL --roles a,b
  gatehouse disable-user --email EMAIL      (revokes all their sessions)
  gatehouse enable-user --email EMAIL
  gatehouse list-users [--search TEXT] [--limit N] [--json]
      Every command that touches D1 takes [--local | --remote] [--database NAME]
      [--persist-to DIR] [--config FILE] [--print-sql].";

/// Runs a future that never waits (the native PBKDF2 is synchronous).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("native hashing never waits"),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {message}");
    ExitCode::from(2)
}

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("keygen") => keygen(&args[1..]),
        Some("add-user") => add_user(&args[1..]),
        Some(
            cmd @ ("mint-key" | "list-keys" | "revoke-key" | "set-roles" | "disable-user"
            | "enable-user" | "list-users"),
        ) => super::ops::run(cmd, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("unknown or missing command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

fn keygen(args: &[String]) -> Result<(), String> {
    let env_only = match args {
        [] => false,
        [flag] if flag == "--env" => true,
        [flag] if flag == "--pepper" => {
            let bytes: [u8; 32] = random_array(&SystemRng);
            println!("{}", b64url(&bytes));
            return Ok(());
        }
        _ => return Err(format!("keygen takes only --env or --pepper\n{USAGE}")),
    };
    let seed: [u8; 32] = random_array(&SystemRng);
    let keys = KeySet::new(&seed, &[]).map_err(|e| e.to_string())?;
    if env_only {
        println!("JWT_SIGNING_KEY={}", b64url(&seed));
        return Ok(());
    }
    let jwk = public_jwk(&keys.public_key());
    println!("JWT_SIGNING_KEY (secret; store it with `wrangler secret put JWT_SIGNING_KEY`):");
    println!("{}", b64url(&seed));
    println!();
    println!(
        "public JWK (kid {}; also served at /.well-known/jwks.json):",
        keys.current_kid()
    );
    println!("{jwk}");
    println!();
    println!("public key x (when this key is later replaced, put this value, never the secret,");
    println!("into JWT_PREVIOUS_PUBLIC_KEYS until the access tokens it signed have expired):");
    println!("{}", b64url(&keys.public_key()));
    Ok(())
}

#[derive(Default)]
struct AddUser {
    email: Option<String>,
    name: Option<String>,
    roles: Vec<String>,
    password_stdin: bool,
    remote: bool,
    update: bool,
    iterations: u32,
    database: String,
    persist_to: Option<PathBuf>,
    config: Option<PathBuf>,
    print_sql: bool,
}

fn parse_add_user(args: &[String]) -> Result<AddUser, String> {
    let mut opts = AddUser {
        roles: vec!["user".into()],
        iterations: MAX_PBKDF2_ITERATIONS,
        database: "DB".into(),
        ..AddUser::default()
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--email" => opts.email = Some(value("--email")?),
            "--name" => opts.name = Some(value("--name")?),
            "--roles" => {
                let raw = value("--roles")?;
                opts.roles = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(bad) = opts
                    .roles
                    .iter()
                    .find(|r| !valid_role(r) || *r == "anonymous")
                {
                    return Err(format!(
                        "--roles: {bad:?} is not a valid role name (a-z, 0-9, _ - .)"
                    ));
                }
            }
            "--password-stdin" => opts.password_stdin = true,
            "--local" => opts.remote = false,
            "--remote" => opts.remote = true,
            "--update" => opts.update = true,
            "--print-sql" => opts.print_sql = true,
            "--iterations" => {
                let raw = value("--iterations")?;
                opts.iterations = raw
                    .parse()
                    .ok()
                    .filter(|n| (MIN_PBKDF2_ITERATIONS..=MAX_PBKDF2_ITERATIONS).contains(n))
                    .ok_or_else(|| {
                        format!("--iterations must be between {MIN_PBKDF2_ITERATIONS} and {MAX_PBKDF2_ITERATIONS}")
                    })?;
            }
            "--database" => opts.database = value("--database")?,
            "--persist-to" => opts.persist_to = Some(value("--persist-to")?.into()),
            "--config" => opts.config = Some(value("--config")?.into()),
            other => return Err(format!("add-user: unknown option {other}\n{USAGE}")),
        }
    }
    Ok(opts)
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
    password::check_policy(&password).map_err(|e| e.public_message())?;
    Ok(password)
}

/// A SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn add_user(args: &[String]) -> Result<(), String> {
    let opts = parse_add_user(args)?;
    let email = opts.email.as_deref().ok_or("add-user needs --email")?;
    let email = normalize_email(email).map_err(|e| e.public_message())?;
    let name = normalize_name(opts.name.as_deref()).map_err(|e| e.public_message())?;
    let pw = read_password(opts.password_stdin)?;

    let phc = ready(password::hash(
        &RustPbkdf2,
        &SystemRng,
        &pw,
        opts.iterations,
    ))
    .map_err(|e| e.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as i64;
    let sql = add_user_sql(&opts, &email, name.as_deref(), &phc, now)?;
    if opts.print_sql {
        print!("{sql}");
        return Ok(());
    }
    run_wrangler(&opts.target(), &sql, false)?;
    let target = if opts.remote { "remote" } else { "local" };
    println!(
        "{} {email} with roles [{}] in the {target} D1 database",
        if opts.update { "saved" } else { "created" },
        opts.roles.join(", ")
    );
    Ok(())
}

/// The SQL of `add-user`: the user (upserted with `--update`, revoking its sessions) and the
/// same audit events as the admin API (actor NULL: the CLI; `"by": "cli"`).
fn add_user_sql(
    opts: &AddUser,
    email: &str,
    name: Option<&str>,
    phc: &str,
    now: i64,
) -> Result<String, String> {
    let roles = serde_json::to_string(&opts.roles).map_err(|e| e.to_string())?;
    let id = new_id(&SystemRng, "usr_");
    let id_q = quote(&id);
    let email_q = quote(email);
    let roles_q = quote(&roles);
    let name_sql = name.map_or("NULL".to_string(), quote);
    const EVENT: &str =
        "INSERT INTO audit_events (at, kind, actor_user_id, subject_user_id, detail)";
    let mut sql = String::new();
    if opts.update {
        // Read before the upsert: an existing user whose roles change.
        sql.push_str(&format!(
            "{EVENT}\n  SELECT {now}, 'role_changed', NULL, id, json_object('from', json(roles), 'to', json({roles_q}), 'by', 'cli')\n  \
             FROM users WHERE email = {email_q} AND json(roles) <> json({roles_q});\n"
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO users (id, email, name, password_hash, roles, disabled, created_at, updated_at)\n  VALUES ({id_q}, {email_q}, {name_sql}, {}, {roles_q}, 0, {now}, {now})",
        quote(phc),
    ));
    if opts.update {
        // `changes()` in the event is the count of the UPDATE just before it.
        sql.push_str(&format!(
            "\n  ON CONFLICT(email) DO UPDATE SET password_hash = excluded.password_hash, roles = excluded.roles,\n    name = COALESCE(excluded.name, users.name), updated_at = excluded.updated_at;\n\
             UPDATE refresh_families SET revoked_at = {now}, revoke_reason = 'password_change'\n  WHERE revoked_at IS NULL AND user_id = (SELECT id FROM users WHERE email = {email_q});\n\
             {EVENT}\n  SELECT {now}, 'password_changed', NULL, id, json_object('by', 'cli', 'revoked_sessions', changes())\n  \
             FROM users WHERE email = {email_q} AND id <> {id_q};\n"
        ));
    } else {
        sql.push_str(";\n");
    }
    // A new user (only this run's id, so nothing when --update found an existing one).
    sql.push_str(&format!(
        "{EVENT}\n  SELECT {now}, 'registered', NULL, id, json_object('by', 'cli', 'roles', json(roles))\n  FROM users WHERE id = {id_q};\n"
    ));
    Ok(sql)
}

impl AddUser {
    fn target(&self) -> Target {
        Target {
            remote: self.remote,
            database: self.database.clone(),
            persist_to: self.persist_to.clone(),
            config: self.config.clone(),
        }
    }
}

/// Which D1 database `wrangler d1 execute` works on.
pub struct Target {
    pub remote: bool,
    pub database: String,
    pub persist_to: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

/// Runs `sql` through `wrangler d1 execute`; with `json`, returns wrangler's JSON output.
pub fn run_wrangler(opts: &Target, sql: &str, json: bool) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("gatehouse-{}", new_id(&SystemRng, "")));
    // The SQL holds a password hash: keep it to this user (0700) while wrangler reads it.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| e.to_string())?;
    let file = dir.join("add-user.sql");
    std::fs::write(&file, sql).map_err(|e| e.to_string())?;

    let wrangler = std::env::var("WRANGLER").unwrap_or_else(|_| {
        let local = PathBuf::from("node_modules/.bin/wrangler");
        if local.exists() {
            local.display().to_string()
        } else {
            "wrangler".into()
        }
    });
    let mut cmd = Command::new(&wrangler);
    cmd.args(["d1", "execute", &opts.database, "--yes", "--file"])
        .arg(&file)
        .arg(if opts.remote { "--remote" } else { "--local" })
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null());
    if let Some(dir) = &opts.persist_to {
        cmd.arg("--persist-to").arg(dir);
    }
    if let Some(config) = &opts.config {
        cmd.arg("--config").arg(config);
    }
    if json {
        // The JSON goes through wrangler's logger: a quieter WRANGLER_LOG would swallow it.
        cmd.arg("--json").env("WRANGLER_LOG", "log");
    }
    let output = cmd.output();
    let _ = std::fs::remove_dir_all(&dir);
    let output = output.map_err(|e| {
        format!("could not run {wrangler}: {e} (run `npm ci` first, or set WRANGLER)")
    })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if text.contains("UNIQUE constraint failed: users.email") {
        return Err("an account with this email already exists (use --update to replace its password and roles)".into());
    }
    if text.contains("no such table") {
        return Err(
            "the database has no Gatehouse tables: run `wrangler d1 migrations apply DB` first"
                .into(),
        );
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
    Err(format!("wrangler d1 execute failed ({})", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_single_quotes() {
        assert_eq!(quote("O'Brien"), "'O''Brien'");
        assert_eq!(
            quote("'; DROP TABLE users; --"),
            "'''; DROP TABLE users; --'"
        );
    }

    #[test]
    fn options_are_validated() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert!(parse_add_user(&args("--email a@b.c --roles admin,user")).is_ok());
        assert!(parse_add_user(&args("--roles Admin")).is_err());
        assert!(parse_add_user(&args("--roles anonymous")).is_err());
        assert!(parse_add_user(&args("--iterations 100001")).is_err());
        assert!(parse_add_user(&args("--iterations 9999")).is_err());
        assert!(parse_add_user(&args("--bogus")).is_err());
        assert!(parse_add_user(&args("--email")).is_err());
        let opts = parse_add_user(&args("--remote --update")).unwrap();
        assert!(opts.remote && opts.update);
    }
}
