//! The store's executor for the command line: each batch is one `wrangler d1 execute --file`
//! run, with the parameters written into the SQL as literals ([`inline`]). A file is run as one
//! unit: a statement that fails rolls back the statements before it.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Args;
use serde::de::DeserializeOwned;
use serde_json::Value;

use gatehouse::domain::store::sql::{inline, Executor, Outcome, SqlStore, Statement};
use gatehouse::primitives::encoding::new_id;
use gatehouse::primitives::error::Error;
use gatehouse::primitives::platform::SystemRng;

/// Which D1 database the command works on.
#[derive(Args, Clone)]
pub struct Target {
    /// The local database of `wrangler dev` (the default).
    #[arg(long, conflicts_with = "remote")]
    pub local: bool,
    /// The deployed database.
    #[arg(long)]
    pub remote: bool,
    /// The D1 binding or database name in the wrangler configuration.
    #[arg(long, default_value = "DB")]
    pub database: String,
    /// Where the local database lives (wrangler's `--persist-to`).
    #[arg(long, value_name = "DIR")]
    pub persist_to: Option<PathBuf>,
    /// The wrangler configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Target {
    /// The store on this database.
    pub fn store(&self) -> SqlStore<Wrangler> {
        SqlStore::new(Wrangler {
            target: self.clone(),
        })
    }

    /// `local` or `remote`, for messages.
    pub fn place(&self) -> &'static str {
        if self.remote {
            "remote"
        } else {
            "local"
        }
    }
}

/// An [`Executor`] that runs statements with `wrangler d1 execute`.
pub struct Wrangler {
    target: Target,
}

/// Whether a statement only reads (its `changes()` would be a previous statement's).
fn reads_only(statement: &Statement<'_>) -> bool {
    statement
        .sql
        .trim_start()
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("select"))
}

impl Executor for Wrangler {
    type Rows = Vec<Value>;

    async fn one(&self, statement: Statement<'_>) -> Result<Outcome<Vec<Value>>, Error> {
        let mut outcomes = self.batch(vec![statement]).await?;
        outcomes
            .pop()
            .ok_or_else(|| Error::Internal("wrangler returned no result".into()))
    }

    async fn batch(
        &self,
        statements: Vec<Statement<'_>>,
    ) -> Result<Vec<Outcome<Vec<Value>>>, Error> {
        // After each change, `SELECT changes()` reads its row count (wrangler's local output
        // has none); a SELECT changes nothing, so later statements see the same `changes()`.
        let mut sql = String::new();
        for statement in &statements {
            sql.push_str(&inline(statement)?);
            sql.push_str(";\n");
            if !reads_only(statement) {
                sql.push_str("SELECT changes() AS changes;\n");
            }
        }
        let mut results = self.run(&sql)?.into_iter();
        let mut outcomes = Vec::with_capacity(statements.len());
        for statement in &statements {
            let rows = next_rows(&mut results)?;
            let changes = if reads_only(statement) {
                0
            } else {
                next_rows(&mut results)?
                    .first()
                    .and_then(|row| row["changes"].as_u64())
                    .unwrap_or(0)
            };
            outcomes.push(Outcome { changes, rows });
        }
        Ok(outcomes)
    }

    fn rows<T: DeserializeOwned>(rows: Vec<Value>) -> Result<Vec<T>, Error> {
        rows.into_iter()
            .map(|row| {
                serde_json::from_value(row)
                    .map_err(|e| Error::Internal(format!("unexpected row from wrangler: {e}")))
            })
            .collect()
    }
}

fn next_rows(results: &mut impl Iterator<Item = Value>) -> Result<Vec<Value>, Error> {
    match results.next() {
        Some(Value::Object(mut result)) => match result.remove("results") {
            Some(Value::Array(rows)) => Ok(rows),
            _ => Ok(Vec::new()),
        },
        _ => Err(Error::Internal(
            "wrangler returned fewer results than statements".into(),
        )),
    }
}

impl Wrangler {
    /// Runs `sql` as one file and returns wrangler's results, one per statement.
    fn run(&self, sql: &str) -> Result<Vec<Value>, Error> {
        let dir = std::env::temp_dir().join(format!("gatehouse-{}", new_id(&SystemRng, "")));
        // The SQL can hold a password hash: keep it to this user (0700) while wrangler reads it.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let file = dir.join("statements.sql");
        let output = std::fs::write(&file, sql)
            .map_err(|e| Error::Internal(e.to_string()))
            .and_then(|()| self.command(&file).output().map_err(not_found));
        let _ = std::fs::remove_dir_all(&dir);
        let output = output?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failure(&format!("{stdout}{stderr}"), output.status));
        }
        // The JSON comes after any log lines wrangler prints.
        let start = stdout
            .find("\n[")
            .map(|i| i + 1)
            .or_else(|| stdout.starts_with('[').then_some(0))
            .ok_or_else(|| Error::Internal(format!("unexpected wrangler output: {stdout}")))?;
        match serde_json::from_str(&stdout[start..]) {
            Ok(Value::Array(results)) => Ok(results),
            _ => Err(Error::Internal(format!(
                "unexpected wrangler output: {stdout}"
            ))),
        }
    }

    fn command(&self, file: &std::path::Path) -> Command {
        let mut cmd = Command::new(wrangler());
        cmd.args([
            "d1",
            "execute",
            &self.target.database,
            "--yes",
            "--json",
            "--file",
        ])
        .arg(file)
        .arg(if self.target.remote {
            "--remote"
        } else {
            "--local"
        })
        .env("WRANGLER_SEND_METRICS", "false")
        // The JSON goes through wrangler's logger: a quieter WRANGLER_LOG would swallow it.
        .env("WRANGLER_LOG", "log")
        .stdin(Stdio::null());
        if let Some(dir) = &self.target.persist_to {
            cmd.arg("--persist-to").arg(dir);
        }
        if let Some(config) = &self.target.config {
            cmd.arg("--config").arg(config);
        }
        cmd
    }
}

/// `$WRANGLER`, else the project's own wrangler, else the one on the `PATH`.
fn wrangler() -> String {
    std::env::var("WRANGLER").unwrap_or_else(|_| {
        let local = PathBuf::from("node_modules/.bin/wrangler");
        if local.exists() {
            local.display().to_string()
        } else {
            "wrangler".into()
        }
    })
}

fn not_found(err: std::io::Error) -> Error {
    Error::Unavailable(format!(
        "could not run {}: {err} (run `npm ci` first, or set WRANGLER)",
        wrangler()
    ))
}

fn failure(text: &str, status: std::process::ExitStatus) -> Error {
    if text.contains("no such table") {
        return Error::Unavailable(
            "the database has no Gatehouse tables: run `wrangler d1 migrations apply DB` first"
                .into(),
        );
    }
    eprint!("{text}");
    Error::Unavailable(format!("wrangler d1 execute failed ({status})"))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn only_selects_count_as_reads() {
        let s = |sql: &'static str| Statement {
            sql: Cow::Borrowed(sql),
            params: vec![],
        };
        assert!(reads_only(&s("SELECT 1")));
        assert!(reads_only(&s("  select * FROM users")));
        assert!(!reads_only(&s("INSERT INTO x SELECT 1")));
        assert!(!reads_only(&s("UPDATE users SET x = 1")));
        assert!(!reads_only(&s("SEL")));
    }
}
