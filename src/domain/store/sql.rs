//! The SQL store: every statement Gatehouse runs against its SQLite database (D1), in one
//! place, over an [`Executor`] that runs them. The Workers adapter executes them on the D1
//! binding; the `gatehouse` command line executes the same statements through
//! `wrangler d1 execute`. Every multi-row change is one [`Executor::batch`] (one transaction);
//! see docs/storage-schema.md for the rotation step.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{
    ApiKey, AuditEvent, AuditQuery, Challenge, ConsoleVia, Family, KeyHash, KeyLookup, LoginLookup,
    LoginRead, NewFamily, Passkey, PasskeyUse, PasswordPhc, PruneCounts, PruneCutoffs, RateCounter,
    RateHit, RecoveryCodeHash, RevokeReason, Rotation, RotationOutcome, SessionLiveness, Store,
    StoredEvent, TokenHash, TokenState, TotpConfirmation, TotpRecord, User, UserQuery,
    REFRESH_FAMILY_BUCKET,
};
use crate::primitives::error::Error;

/// A bound parameter (`?1`, `?2`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer (D1 passes numbers as doubles; Unix milliseconds and counters stay far
    /// below 2^53).
    Int(i64),
    /// Text.
    Text(Cow<'a, str>),
}

/// One SQL statement with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The SQL text, with numbered parameters `?1`…
    pub sql: Cow<'static, str>,
    /// The values of `?1`… in order.
    pub params: Vec<Param<'a>>,
}

/// What one statement did.
pub struct Outcome<R> {
    /// Rows the statement inserted, updated or deleted.
    pub changes: u64,
    /// The rows it returned, in the executor's own form.
    pub rows: R,
}

/// Runs statements on the database.
#[allow(async_fn_in_trait)]
pub trait Executor {
    /// Returned rows, before they are read into a row type.
    type Rows;

    /// Runs one statement.
    async fn one(&self, statement: Statement<'_>) -> Result<Outcome<Self::Rows>, Error>;

    /// Runs the statements in order in one transaction: all of them or none.
    async fn batch(
        &self,
        statements: Vec<Statement<'_>>,
    ) -> Result<Vec<Outcome<Self::Rows>>, Error>;

    /// Reads returned rows into `T`.
    fn rows<T: DeserializeOwned>(rows: Self::Rows) -> Result<Vec<T>, Error>;
}

/// Renders `statement` as SQL text with its parameters written in as literals, for tools
/// that take no bound parameters (`wrangler d1 execute --file`). Text becomes a quoted
/// literal with `'` doubled; `?N` inside string literals of the SQL is left alone.
pub fn inline(statement: &Statement<'_>) -> Result<String, Error> {
    let sql = statement.sql.as_ref();
    let mut out = String::with_capacity(sql.len() + 32);
    let mut chars = sql.char_indices().peekable();
    let mut in_literal = false;
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            in_literal = !in_literal;
            out.push(c);
            continue;
        }
        if c != '?' || in_literal {
            out.push(c);
            continue;
        }
        let digits: String = sql[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let index: usize = digits
            .parse()
            .map_err(|_| Error::Internal(format!("unnumbered parameter in {sql}")))?;
        for _ in 0..digits.len() {
            chars.next();
        }
        let param = index
            .checked_sub(1)
            .and_then(|i| statement.params.get(i))
            .ok_or_else(|| Error::Internal(format!("no parameter ?{index} for {sql}")))?;
        match param {
            Param::Null => out.push_str("NULL"),
            Param::Int(n) => out.push_str(&n.to_string()),
            Param::Text(t) => {
                if t.contains('\0') {
                    return Err(Error::Internal("a text parameter holds NUL".into()));
                }
                out.push('\'');
                out.push_str(&t.replace('\'', "''"));
                out.push('\'');
            }
        }
    }
    Ok(out)
}

fn stmt<'a>(sql: impl Into<Cow<'static, str>>, params: Vec<Param<'a>>) -> Statement<'a> {
    Statement {
        sql: sql.into(),
        params,
    }
}

fn text<T: AsRef<str> + ?Sized>(s: &T) -> Param<'_> {
    Param::Text(Cow::Borrowed(s.as_ref()))
}

fn owned(s: String) -> Param<'static> {
    Param::Text(Cow::Owned(s))
}

fn opt_text(s: Option<&str>) -> Param<'_> {
    s.map_or(Param::Null, |s| text(s))
}

fn int(n: i64) -> Param<'static> {
    Param::Int(n)
}

fn opt_int(n: Option<i64>) -> Param<'static> {
    n.map_or(Param::Null, Param::Int)
}

/// [`Store`] over an [`Executor`].
pub struct SqlStore<E> {
    exec: E,
}

impl<E: Executor> SqlStore<E> {
    /// Wraps the executor.
    pub fn new(exec: E) -> Self {
        Self { exec }
    }

    async fn batch(&self, statements: Vec<Statement<'_>>) -> Result<Vec<Outcome<E::Rows>>, Error> {
        self.exec.batch(statements).await
    }

    async fn all<T: DeserializeOwned>(&self, statement: Statement<'_>) -> Result<Vec<T>, Error> {
        E::rows(self.exec.one(statement).await?.rows)
    }

    async fn first<T: DeserializeOwned>(
        &self,
        statement: Statement<'_>,
    ) -> Result<Option<T>, Error> {
        Ok(self.all(statement).await?.into_iter().next())
    }

    async fn run(&self, statement: Statement<'_>) -> Result<u64, Error> {
        Ok(self.exec.one(statement).await?.changes)
    }

    /// A key joined with its owner, by `sql` with `?1` bound to `param`.
    async fn key_lookup(&self, sql: &'static str, param: &str) -> Result<Option<KeyLookup>, Error> {
        let Some(row) = self
            .first::<KeyLookupRow>(stmt(sql, vec![text(param)]))
            .await?
        else {
            return Ok(None);
        };
        let owner_roles = name_list("users.roles", &row.key.owner_user_id, &row.owner_roles)?;
        Ok(Some(KeyLookup {
            owner_roles,
            owner_disabled: row.owner_disabled != 0,
            key: row.key.into_key()?,
        }))
    }
}

/// The count of changed rows of statement `i` of a batch.
fn changes<R>(outcomes: &[Outcome<R>], i: usize) -> u64 {
    outcomes.get(i).map_or(0, |o| o.changes)
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    email: String,
    name: Option<String>,
    password_hash: String,
    roles: String,
    disabled: i64,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    totp: i64,
}

/// The columns a user is read with: the row and whether TOTP is enrolled, in one read.
const USER_SELECT: &str = "SELECT users.*, EXISTS (SELECT 1 FROM mfa_totp t \
     WHERE t.user_id = users.id AND t.secret_sealed IS NOT NULL) AS totp FROM users";

/// A user with TOTP enrolled (a condition on `?1`, the user's id).
const TOTP_ENROLLED: &str =
    "EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = ?1 AND secret_sealed IS NOT NULL)";

#[derive(Deserialize)]
struct TotpRow {
    secret_sealed: Option<String>,
    last_step: i64,
    enrolled_at: Option<i64>,
    pending_sealed: Option<String>,
    pending_at: Option<i64>,
    recovery_codes_left: i64,
}

/// A JSON array of names stored in a text column (`users.roles`, `api_keys.scopes`).
fn name_list(column: &str, row_id: &str, text: &str) -> Result<Vec<String>, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::Internal(format!(
            "{column} of {row_id} is not a JSON array of names: {e}"
        ))
    })
}

impl UserRow {
    fn into_user(self) -> Result<User, Error> {
        let roles = name_list("users.roles", &self.id, &self.roles)?;
        Ok(User {
            id: self.id,
            email: self.email,
            name: self.name,
            password_hash: PasswordPhc::from_stored(self.password_hash),
            roles,
            disabled: self.disabled != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
            totp: self.totp != 0,
        })
    }
}

#[derive(Deserialize)]
struct FamilyRow {
    id: String,
    user_id: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
    user_agent: Option<String>,
    #[serde(default)]
    console: i64,
    api_key_id: Option<String>,
}

/// The two columns of a console session: `console` (1 for one) and the key it lives on.
fn console_via(console: i64, api_key_id: Option<String>) -> Option<ConsoleVia> {
    match (console, api_key_id) {
        (0, _) => None,
        (_, Some(id)) => Some(ConsoleVia::ApiKey(id)),
        (_, None) => Some(ConsoleVia::Password),
    }
}

impl From<FamilyRow> for Family {
    fn from(r: FamilyRow) -> Self {
        Family {
            id: r.id,
            user_id: r.user_id,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoke_reason: r.revoke_reason,
            user_agent: r.user_agent,
            console: console_via(r.console, r.api_key_id),
        }
    }
}

#[derive(Deserialize)]
struct TokenRow {
    generation: i64,
    rotated_at: Option<i64>,
    successor_hash: Option<String>,
    successor_sealed: Option<String>,
    #[serde(flatten)]
    family: FamilyRow,
}

impl From<TokenRow> for TokenState {
    fn from(r: TokenRow) -> Self {
        TokenState {
            family: r.family.into(),
            generation: r.generation,
            rotated_at: r.rotated_at,
            successor_hash: r.successor_hash.map(TokenHash::from_stored),
            successor_sealed: r.successor_sealed,
        }
    }
}

#[derive(Deserialize)]
struct EventRow {
    at: i64,
    kind: String,
    actor_user_id: Option<String>,
    subject_user_id: Option<String>,
    family_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

impl From<EventRow> for AuditEvent {
    fn from(r: EventRow) -> Self {
        AuditEvent {
            at: r.at,
            kind: r.kind,
            actor_user_id: r.actor_user_id,
            subject_user_id: r.subject_user_id,
            family_id: r.family_id,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

#[derive(Deserialize)]
struct StoredEventRow {
    id: i64,
    #[serde(flatten)]
    event: EventRow,
}

#[derive(Deserialize)]
struct ApiKeyRow {
    id: String,
    key_hash: String,
    label: String,
    owner_user_id: String,
    created_by: Option<String>,
    role: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn into_key(self) -> Result<ApiKey, Error> {
        let scopes = name_list("api_keys.scopes", &self.id, &self.scopes)?;
        Ok(ApiKey {
            id: self.id,
            key_hash: KeyHash::from_stored(self.key_hash),
            label: self.label,
            owner_user_id: self.owner_user_id,
            created_by: self.created_by,
            role: self.role,
            scopes,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Deserialize)]
struct KeyLookupRow {
    owner_roles: String,
    owner_disabled: i64,
    #[serde(flatten)]
    key: ApiKeyRow,
}

#[derive(Deserialize)]
struct LivenessRow {
    user_id: String,
    revoked_at: Option<i64>,
    expires_at: i64,
    user_disabled: i64,
    user_roles: String,
}

/// Parses a `users.roles` column (a JSON array).
fn roles_column(raw: &str, user_id: &str) -> Result<Vec<String>, Error> {
    serde_json::from_str(raw)
        .map_err(|e| Error::Internal(format!("users.roles of {user_id} is not a JSON array: {e}")))
}

#[derive(Deserialize)]
struct RateCounterRow {
    key: String,
    count: i64,
    window_start: i64,
    expires_at: i64,
}

#[derive(Deserialize)]
struct RateRow {
    count: i64,
    window_start: i64,
}

impl From<RateRow> for RateHit {
    fn from(row: RateRow) -> Self {
        RateHit {
            count: row.count,
            window_start: row.window_start,
        }
    }
}

#[derive(Deserialize)]
struct PasskeyRow {
    id: String,
    user_id: String,
    credential_id: String,
    public_key: String,
    algorithm: i64,
    sign_count: i64,
    name: String,
    aaguid: String,
    backup_eligible: i64,
    backed_up: i64,
    transports: String,
    created_at: i64,
    last_used_at: Option<i64>,
    flagged_at: Option<i64>,
}

impl PasskeyRow {
    fn into_passkey(self) -> Result<Passkey, Error> {
        let transports = name_list("passkeys.transports", &self.id, &self.transports)?;
        Ok(Passkey {
            id: self.id,
            user_id: self.user_id,
            credential_id: self.credential_id,
            public_key: self.public_key,
            algorithm: self.algorithm,
            sign_count: self.sign_count,
            name: self.name,
            aaguid: self.aaguid,
            backup_eligible: self.backup_eligible != 0,
            backed_up: self.backed_up != 0,
            transports,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            flagged_at: self.flagged_at,
        })
    }
}

const PASSKEY_COLUMNS: &str =
    "id, user_id, credential_id, public_key, algorithm, sign_count, name, \
     aaguid, backup_eligible, backed_up, transports, created_at, last_used_at, flagged_at";

#[derive(Deserialize)]
struct ChallengeRow {
    challenge_hash: String,
    ceremony: String,
    user_id: Option<String>,
    expires_at: i64,
}

const TOKEN_STATE_SQL: &str = "SELECT t.generation, t.rotated_at, t.successor_hash, t.successor_sealed, \
     f.id, f.user_id, f.created_at, f.last_used_at, f.expires_at, f.revoked_at, f.revoke_reason, f.user_agent, \
     f.console, f.api_key_id \
     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?1";

fn too_few() -> Error {
    Error::Internal("the batch returned too few results".into())
}

/// The end of a rate-limit counter's insert: restart the counter in a newer window, or else
/// bump it, and return the result of this very write. A late request from an older window than
/// the stored one counts against the stored window, never resets it: windows only move forward.
/// (SET expressions all see the row as it was before the update.)
const COUNT_UPSERT: &str = "ON CONFLICT (key) DO UPDATE SET \
     count = CASE WHEN excluded.window_start > rate_limits.window_start \
                  THEN 1 ELSE rate_limits.count + 1 END, \
     window_start = max(rate_limits.window_start, excluded.window_start), \
     expires_at = max(rate_limits.expires_at, excluded.expires_at) \
     RETURNING count, window_start";

const INSERT_EVENT_SQL: &str = "INSERT INTO audit_events \
     (at, kind, actor_user_id, subject_user_id, family_id, ip, user_agent, detail) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8";

/// The two INSERTs of a new family and its first token, for a user that exists.
fn family_statements(family: &NewFamily) -> [Statement<'_>; 2] {
    [
        stmt(
            "INSERT INTO refresh_families \
             (id, user_id, created_at, last_used_at, expires_at, user_agent, console, api_key_id) \
             SELECT ?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2)",
            vec![
                text(&family.id),
                text(&family.user_id),
                int(family.created_at),
                int(family.expires_at),
                opt_text(family.user_agent.as_deref()),
                int(i64::from(family.console.is_some())),
                opt_text(family.console.as_ref().and_then(ConsoleVia::api_key_id)),
            ],
        ),
        stmt(
            "INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) \
             SELECT ?1, ?2, 0, ?3 WHERE EXISTS (SELECT 1 FROM refresh_families WHERE id = ?2)",
            vec![text(&family.first_token_hash), text(&family.id), int(family.created_at)],
        ),
    ]
}

/// The INSERT of an audit event, optionally guarded by a `WHERE` clause over its parameters
/// and `extra` (`?9`…).
fn event_statement<'a>(e: &'a AuditEvent, condition: &str, extra: Vec<Param<'a>>) -> Statement<'a> {
    let mut params = event_params(e);
    params.extend(extra);
    let sql = if condition.is_empty() {
        Cow::Borrowed(INSERT_EVENT_SQL)
    } else {
        Cow::Owned(format!("{INSERT_EVENT_SQL} {condition}"))
    };
    stmt(sql, params)
}

/// The eight parameters of [`INSERT_EVENT_SQL`] (`?1`…`?8`), in its column order.
fn event_params(e: &AuditEvent) -> Vec<Param<'_>> {
    vec![
        int(e.at),
        text(&e.kind),
        opt_text(e.actor_user_id.as_deref()),
        opt_text(e.subject_user_id.as_deref()),
        opt_text(e.family_id.as_deref()),
        opt_text(e.ip.as_deref()),
        opt_text(e.user_agent.as_deref()),
        e.detail
            .as_ref()
            .map_or(Param::Null, |d| owned(d.to_string())),
    ]
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<Param<'static>, Error> {
    serde_json::to_string(value)
        .map(owned)
        .map_err(|e| Error::Internal(e.to_string()))
}
const USER_UPDATE_PASSWORD_SQL: &str =
    "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1";

const REVOKE_USER_FAMILIES_SQL: &str =
    "UPDATE refresh_families SET revoked_at = ?2, revoke_reason = ?3 \
     WHERE user_id = ?1 AND revoked_at IS NULL";

impl<E: Executor> Store for SqlStore<E> {
    async fn ping(&self) -> Result<(), Error> {
        // Touches every table, so a database without the migrations applied is not ready.
        self.first::<Count>(stmt(
            "SELECT (SELECT count(*) FROM users WHERE 0) + (SELECT count(*) FROM refresh_families WHERE 0) \
             + (SELECT count(*) FROM refresh_tokens WHERE 0) + (SELECT count(*) FROM audit_events WHERE 0) \
             + (SELECT count(console) + count(api_key_id) FROM refresh_families WHERE 0) \
             + (SELECT count(*) FROM mfa_totp WHERE 0) + (SELECT count(*) FROM mfa_recovery_codes WHERE 0)

             + (SELECT count(*) FROM passkeys WHERE 0) + (SELECT count(*) FROM webauthn_challenges WHERE 0) AS n",
            vec![],
        ))
        .await
        .map(drop)
        .map_err(|err| match err {
            Error::Internal(cause) => Error::Unavailable(cause),
            other => other,
        })
    }

    async fn create_user(
        &self,
        user: &User,
        family: Option<&NewFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        // A taken email inserts nothing (`DO NOTHING`, zero changes), and every statement after
        // it acts only if this very user now exists.
        let mut statements = vec![stmt(
            "INSERT INTO users (id, email, name, password_hash, roles, disabled, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (email) DO NOTHING",
            vec![
                text(&user.id),
                text(&user.email),
                opt_text(user.name.as_deref()),
                text(&user.password_hash),
                json_text(&user.roles)?,
                int(i64::from(user.disabled)),
                int(user.created_at),
                int(user.updated_at),
            ],
        )];
        if let Some(family) = family {
            statements.extend(family_statements(family));
        }
        if let Some(event) = event {
            statements.push(event_statement(
                event,
                "WHERE EXISTS (SELECT 1 FROM users WHERE id = ?9)",
                vec![text(&user.id)],
            ));
        }
        let outcomes = self.batch(statements).await?;
        if changes(&outcomes, 0) == 0 {
            return Err(Error::EmailTaken);
        }
        Ok(())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        self.first::<UserRow>(stmt(
            format!("{USER_SELECT} WHERE email = ?1"),
            vec![text(email)],
        ))
        .await?
        .map(UserRow::into_user)
        .transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, Error> {
        self.first::<UserRow>(stmt(format!("{USER_SELECT} WHERE id = ?1"), vec![text(id)]))
            .await?
            .map(UserRow::into_user)
            .transpose()
    }

    async fn upgrade_password_hash(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        now: i64,
    ) -> Result<(), Error> {
        self.run(stmt(
            USER_UPDATE_PASSWORD_SQL,
            vec![text(user_id), text(phc), int(now)],
        ))
        .await
        .map(drop)
    }

    async fn change_password(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        keep: Option<&str>,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    USER_UPDATE_PASSWORD_SQL,
                    vec![text(user_id), text(phc), int(now)],
                ),
                stmt(
                    "UPDATE refresh_families SET revoked_at = ?2, revoke_reason = ?3 \
                     WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?4",
                    vec![
                        text(user_id),
                        int(now),
                        text(RevokeReason::PasswordChange.as_str()),
                        opt_text(keep),
                    ],
                ),
                // The event, in the same batch, for a user that exists, with the count of the
                // families the statement before revoked (`changes()`).
                stmt(
                    "INSERT INTO audit_events \
                     (at, kind, actor_user_id, subject_user_id, family_id, ip, user_agent, detail) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                       json_set(coalesce(?8, '{}'), '$.revoked_sessions', changes()) \
                     WHERE EXISTS (SELECT 1 FROM users WHERE id = ?9)",
                    [event_params(event), vec![text(user_id)]].concat(),
                ),
            ])
            .await?;
        Ok(changes(&outcomes, 1))
    }

    async fn create_family(
        &self,
        family: &NewFamily,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        let mut statements: Vec<_> = family_statements(family).into();
        if let Some(event) = event {
            statements.push(event_statement(event, "", vec![]));
        }
        self.batch(statements).await.map(drop)
    }

    async fn rotate_refresh(&self, r: &Rotation) -> Result<RotationOutcome, Error> {
        // One transaction, one round trip. With a limit, statement 0 counts the attempt on the
        // family's counter (a token of the required family only). Statement 1 can succeed for
        // one caller only (`rotated_at IS NULL`), and only within the family and the limit;
        // statements 2 to 4 act only for the caller whose successor statement 1 recorded
        // (insert the successor, touch the family, drop older seals); statements 5 and 6 read
        // the outcome inside the same transaction.
        let counter_prefix = format!("{REFRESH_FAMILY_BUCKET}:");
        let mut statements = Vec::with_capacity(7);
        if let Some(limit) = r.limit {
            let window_start = r.now - r.now.rem_euclid(limit.window_ms.max(1));
            statements.push(stmt(
                format!(
                    "INSERT INTO rate_limits (key, window_start, count, expires_at) \
                     SELECT ?2 || family_id, ?3, 1, ?4 FROM refresh_tokens \
                     WHERE token_hash = ?1 AND (?5 IS NULL OR family_id = ?5) {COUNT_UPSERT}"
                ),
                vec![
                    text(&r.token_hash),
                    text(&counter_prefix),
                    int(window_start),
                    int(window_start + limit.window_ms),
                    opt_text(r.family.as_deref()),
                ],
            ));
        }
        statements.extend([
            stmt(
                "UPDATE refresh_tokens SET rotated_at = ?2, successor_hash = ?3, successor_sealed = ?4 \
                 WHERE token_hash = ?1 AND rotated_at IS NULL AND (?6 IS NULL OR family_id = ?6) \
                 AND (?7 IS NULL OR (SELECT count FROM rate_limits \
                   WHERE key = ?8 || refresh_tokens.family_id) <= ?7) \
                 AND EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id \
                   AND f.revoked_at IS NULL AND f.expires_at > ?2 AND f.last_used_at > ?5)",
                vec![
                    text(&r.token_hash),
                    int(r.now),
                    text(&r.successor_hash),
                    text(&r.successor_sealed),
                    int(r.idle_cutoff),
                    opt_text(r.family.as_deref()),
                    opt_int(r.limit.map(|l| l.max)),
                    text(&counter_prefix),
                ],
            ),
            stmt(
                "INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) \
                 SELECT ?1, family_id, generation + 1, ?2 FROM refresh_tokens \
                 WHERE token_hash = ?3 AND successor_hash = ?1",
                vec![text(&r.successor_hash), int(r.now), text(&r.token_hash)],
            ),
            stmt(
                "UPDATE refresh_families SET last_used_at = ?1 WHERE id = (\
                   SELECT family_id FROM refresh_tokens WHERE token_hash = ?2 AND successor_hash = ?3)",
                vec![int(r.now), text(&r.token_hash), text(&r.successor_hash)],
            ),
            stmt(
                "UPDATE refresh_tokens SET successor_sealed = NULL \
                 WHERE successor_sealed IS NOT NULL AND token_hash != ?1 AND family_id = (\
                   SELECT family_id FROM refresh_tokens WHERE token_hash = ?1 AND successor_hash = ?2)",
                vec![text(&r.token_hash), text(&r.successor_hash)],
            ),
            stmt(TOKEN_STATE_SQL, vec![text(&r.token_hash)]),
            stmt(
                format!(
                    "{USER_SELECT} WHERE id = (SELECT f.user_id FROM refresh_tokens t \
                     JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?1)"
                ),
                vec![text(&r.token_hash)],
            ),
        ]);
        let mut outcomes = self.batch(statements).await?.into_iter();
        let counted = if r.limit.is_some() {
            let counter = outcomes.next().ok_or_else(too_few)?;
            E::rows::<RateRow>(counter.rows)?
                .into_iter()
                .next()
                .map(RateHit::from)
        } else {
            None
        };
        let mut outcomes = outcomes.skip(4);
        let state = outcomes.next().ok_or_else(too_few)?.rows;
        let user = outcomes.next().ok_or_else(too_few)?.rows;
        Ok(RotationOutcome {
            state: E::rows::<TokenRow>(state)?
                .into_iter()
                .next()
                .map(TokenState::from),
            counted,
            user: E::rows::<UserRow>(user)?
                .into_iter()
                .next()
                .map(UserRow::into_user)
                .transpose()?,
        })
    }

    async fn token_state(&self, token_hash: &TokenHash) -> Result<Option<TokenState>, Error> {
        Ok(self
            .first::<TokenRow>(stmt(TOKEN_STATE_SQL, vec![text(token_hash)]))
            .await?
            .map(TokenState::from))
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        reason: RevokeReason,
        now: i64,
        event: Option<&AuditEvent>,
    ) -> Result<bool, Error> {
        let mut statements = vec![stmt(
            "UPDATE refresh_families SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            vec![text(family_id), int(now), text(reason.as_str())],
        )];
        if let Some(event) = event {
            // `changes()` is the row count of the UPDATE just before it in this transaction:
            // the event is written only by the call that revoked the family.
            statements.push(event_statement(event, "WHERE changes() = 1", vec![]));
        }
        let outcomes = self.batch(statements).await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn family(&self, family_id: &str) -> Result<Option<Family>, Error> {
        Ok(self
            .first::<FamilyRow>(stmt(
                "SELECT * FROM refresh_families WHERE id = ?1",
                vec![text(family_id)],
            ))
            .await?
            .map(Family::from))
    }

    async fn session_liveness(&self, family_id: &str) -> Result<Option<SessionLiveness>, Error> {
        // Two primary-key lookups (refresh_families.id, users.id): one indexed read.
        let row = self
            .first::<LivenessRow>(stmt(
                "SELECT f.user_id, f.revoked_at, f.expires_at, u.disabled AS user_disabled, \
                 u.roles AS user_roles FROM refresh_families f JOIN users u ON u.id = f.user_id \
                 WHERE f.id = ?1",
                vec![text(family_id)],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SessionLiveness {
            user_roles: roles_column(&row.user_roles, &row.user_id)?,
            user_id: row.user_id,
            revoked_at: row.revoked_at,
            expires_at: row.expires_at,
            user_disabled: row.user_disabled != 0,
        }))
    }

    async fn live_tokens(&self, family_id: &str) -> Result<u64, Error> {
        let count = self
            .first::<Count>(stmt(
                "SELECT count(*) AS n FROM refresh_tokens WHERE family_id = ?1 AND rotated_at IS NULL",
                vec![text(family_id)],
            ))
            .await?;
        Ok(count.map_or(0, |c| c.n.max(0) as u64))
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), Error> {
        self.run(event_statement(event, "", vec![])).await.map(drop)
    }

    async fn audit_events(
        &self,
        subject_user_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        let rows: Vec<EventRow> = self
            .all(stmt(
                "SELECT at, kind, actor_user_id, subject_user_id, family_id, ip, user_agent, detail \
                 FROM audit_events WHERE (?1 IS NULL OR subject_user_id = ?1) ORDER BY id DESC LIMIT ?2",
                vec![opt_text(subject_user_id), int(i64::from(limit))],
            ))
            .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, Error> {
        // A substring test with instr(), not LIKE: D1 refuses LIKE patterns over 50 bytes, and
        // instr() needs no escaping of % and _.
        let needle = q.search.as_deref().map(str::to_lowercase);
        let rows: Vec<UserRow> = self
            .all(stmt(
                format!(
                    "{USER_SELECT} WHERE (?1 IS NULL OR email > ?1) \
                     AND (?2 IS NULL OR instr(lower(email), ?2) > 0 OR instr(lower(coalesce(name, '')), ?2) > 0) \
                     ORDER BY email LIMIT ?3"
                ),
                vec![
                    opt_text(q.after_email.as_deref()),
                    opt_text(needle.as_deref()),
                    int(i64::from(q.limit)),
                ],
            ))
            .await?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    async fn set_roles(
        &self,
        user_id: &str,
        roles: &[String],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    "UPDATE users SET roles = ?2, updated_at = ?3 WHERE id = ?1",
                    vec![text(user_id), json_text(&roles)?, int(now)],
                ),
                event_statement(event, "WHERE changes() = 1", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
        event: &AuditEvent,
    ) -> Result<Option<u64>, Error> {
        let mut statements = vec![
            stmt(
                "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
                vec![text(user_id), int(i64::from(disabled)), int(now)],
            ),
            event_statement(event, "WHERE changes() = 1", vec![]),
        ];
        if disabled {
            statements.push(stmt(
                REVOKE_USER_FAMILIES_SQL,
                vec![text(user_id), int(now), text(RevokeReason::Admin.as_str())],
            ));
        }
        let outcomes = self.batch(statements).await?;
        if changes(&outcomes, 0) == 0 {
            return Ok(None);
        }
        Ok(Some(changes(&outcomes, 2)))
    }

    async fn user_families(&self, user_id: &str) -> Result<Vec<Family>, Error> {
        let rows: Vec<FamilyRow> = self
            .all(stmt(
                "SELECT * FROM refresh_families WHERE user_id = ?1 ORDER BY created_at DESC, id DESC",
                vec![text(user_id)],
            ))
            .await?;
        Ok(rows.into_iter().map(Family::from).collect())
    }

    async fn revoke_user_families(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    REVOKE_USER_FAMILIES_SQL,
                    vec![text(user_id), int(now), text(reason.as_str())],
                ),
                event_statement(event, "WHERE changes() > 0", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0))
    }

    async fn create_api_key(&self, k: &ApiKey, event: &AuditEvent) -> Result<(), Error> {
        self.batch(vec![
            stmt(
                "INSERT INTO api_keys (id, key_hash, label, owner_user_id, created_by, role, scopes, \
                 created_at, expires_at, last_used_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                vec![
                    text(&k.id),
                    text(&k.key_hash),
                    text(&k.label),
                    text(&k.owner_user_id),
                    opt_text(k.created_by.as_deref()),
                    text(&k.role),
                    json_text(&k.scopes)?,
                    int(k.created_at),
                    opt_int(k.expires_at),
                    opt_int(k.last_used_at),
                    opt_int(k.revoked_at),
                ],
            ),
            event_statement(event, "", vec![]),
        ])
        .await
        .map(drop)
    }

    async fn api_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, Error> {
        self.key_lookup(
            "SELECT k.*, u.roles AS owner_roles, u.disabled AS owner_disabled \
             FROM api_keys k JOIN users u ON u.id = k.owner_user_id WHERE k.key_hash = ?1",
            key_hash.as_str(),
        )
        .await
    }

    async fn api_key_lookup(&self, id: &str) -> Result<Option<KeyLookup>, Error> {
        self.key_lookup(
            "SELECT k.*, u.roles AS owner_roles, u.disabled AS owner_disabled \
             FROM api_keys k JOIN users u ON u.id = k.owner_user_id WHERE k.id = ?1",
            id,
        )
        .await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, Error> {
        self.first::<ApiKeyRow>(stmt("SELECT * FROM api_keys WHERE id = ?1", vec![text(id)]))
            .await?
            .map(ApiKeyRow::into_key)
            .transpose()
    }

    async fn list_api_keys(&self, owner_user_id: Option<&str>) -> Result<Vec<ApiKey>, Error> {
        let rows: Vec<ApiKeyRow> = self
            .all(stmt(
                "SELECT * FROM api_keys WHERE (?1 IS NULL OR owner_user_id = ?1) \
                 ORDER BY created_at DESC, id DESC",
                vec![opt_text(owner_user_id)],
            ))
            .await?;
        rows.into_iter().map(ApiKeyRow::into_key).collect()
    }

    async fn revoke_api_key(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    vec![text(id), int(now)],
                ),
                event_statement(event, "WHERE changes() = 1", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn touch_api_key(&self, id: &str, now: i64, min_interval_ms: i64) -> Result<bool, Error> {
        let changed = self
            .run(stmt(
                "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 \
                 AND (last_used_at IS NULL OR last_used_at <= ?3)",
                vec![text(id), int(now), int(now - min_interval_ms)],
            ))
            .await?;
        Ok(changed > 0)
    }

    async fn totp(&self, user_id: &str) -> Result<Option<TotpRecord>, Error> {
        let row = self
            .first::<TotpRow>(stmt(
                "SELECT secret_sealed, last_step, enrolled_at, pending_sealed, pending_at, \
                 (SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ?1) AS recovery_codes_left \
                 FROM mfa_totp WHERE user_id = ?1",
                vec![text(user_id)],
            ))
            .await?;
        Ok(row.map(|r| TotpRecord {
            secret_sealed: r.secret_sealed,
            last_step: r.last_step,
            enrolled_at: r.enrolled_at,
            pending_sealed: r.pending_sealed,
            pending_at: r.pending_at,
            recovery_codes_left: u64::try_from(r.recovery_codes_left).unwrap_or(0),
        }))
    }

    async fn start_totp(
        &self,
        user_id: &str,
        pending_sealed: &str,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    "INSERT INTO mfa_totp (user_id, pending_sealed, pending_at) \
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1) \
                     ON CONFLICT (user_id) DO UPDATE SET pending_sealed = excluded.pending_sealed, \
                     pending_at = excluded.pending_at",
                    vec![text(user_id), text(pending_sealed), int(now)],
                ),
                event_statement(event, "WHERE changes() = 1", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn confirm_totp(&self, c: &TotpConfirmation, event: &AuditEvent) -> Result<bool, Error> {
        // The first statement is the compare-and-set; every later one acts only if this very
        // confirmation (its random id) won it.
        let won = "EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = ?1 AND enrollment_id = ?2)";
        let mut statements = vec![
            stmt(
                "UPDATE mfa_totp SET secret_sealed = pending_sealed, last_step = ?3, \
                 enrolled_at = ?4, enrollment_id = ?5, pending_sealed = NULL, pending_at = NULL \
                 WHERE user_id = ?1 AND pending_sealed = ?2",
                vec![
                    text(&c.user_id),
                    text(&c.pending_sealed),
                    int(c.step),
                    int(c.now),
                    text(&c.enrollment_id),
                ],
            ),
            stmt(
                format!("DELETE FROM mfa_recovery_codes WHERE user_id = ?1 AND {won}"),
                vec![text(&c.user_id), text(&c.enrollment_id)],
            ),
        ];
        for code in &c.recovery_codes {
            statements.push(stmt(
                format!(
                    "INSERT INTO mfa_recovery_codes (code_hash, user_id, created_at) \
                     SELECT ?3, ?1, ?4 WHERE {won}"
                ),
                vec![
                    text(&c.user_id),
                    text(&c.enrollment_id),
                    text(code),
                    int(c.now),
                ],
            ));
        }
        statements.push(event_statement(
            event,
            "WHERE EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = ?9 AND enrollment_id = ?10)",
            vec![text(&c.user_id), text(&c.enrollment_id)],
        ));
        let outcomes = self.batch(statements).await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn use_totp_step(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
    ) -> Result<bool, Error> {
        let changed = self
            .run(stmt(
                "UPDATE mfa_totp SET last_step = ?3 \
                 WHERE user_id = ?1 AND secret_sealed = ?2 AND last_step < ?3",
                vec![text(user_id), text(secret_sealed), int(step)],
            ))
            .await?;
        Ok(changed > 0)
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &RecoveryCodeHash,
    ) -> Result<bool, Error> {
        let changed = self
            .run(stmt(
                "DELETE FROM mfa_recovery_codes WHERE user_id = ?1 AND code_hash = ?2",
                vec![text(user_id), text(code)],
            ))
            .await?;
        Ok(changed > 0)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        codes: &[RecoveryCodeHash],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let mut statements = vec![
            event_statement(
                event,
                "WHERE EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = ?9 AND secret_sealed IS NOT NULL)",
                vec![text(user_id)],
            ),
            stmt(
                format!("DELETE FROM mfa_recovery_codes WHERE user_id = ?1 AND {TOTP_ENROLLED}"),
                vec![text(user_id)],
            ),
        ];
        for code in codes {
            statements.push(stmt(
                format!(
                    "INSERT INTO mfa_recovery_codes (code_hash, user_id, created_at) \
                     SELECT ?2, ?1, ?3 WHERE {TOTP_ENROLLED}"
                ),
                vec![text(user_id), text(code), int(now)],
            ));
        }
        let outcomes = self.batch(statements).await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn remove_totp(&self, user_id: &str, event: &AuditEvent) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                event_statement(
                    event,
                    "WHERE EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = ?9 AND secret_sealed IS NOT NULL)",
                    vec![text(user_id)],
                ),
                stmt(
                    "DELETE FROM mfa_recovery_codes WHERE user_id = ?1",
                    vec![text(user_id)],
                ),
                stmt("DELETE FROM mfa_totp WHERE user_id = ?1", vec![text(user_id)]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn hit_rate_limit(&self, key: &str, window_ms: i64, now: i64) -> Result<RateHit, Error> {
        let window_start = now - now.rem_euclid(window_ms.max(1));
        // One statement: insert the counter, restart it in a newer window, or else bump it. A
        // late request from an older window than the stored one counts against the stored
        // window, never resets it: windows only move forward. RETURNING reads the result of
        // this very write (SET expressions all see the row as it was before the update).
        let row = self
            .first::<RateRow>(stmt(
                format!(
                    "INSERT INTO rate_limits (key, window_start, count, expires_at) \
                     VALUES (?1, ?2, 1, ?3) {COUNT_UPSERT}"
                ),
                vec![text(key), int(window_start), int(window_start + window_ms)],
            ))
            .await?
            .ok_or_else(|| Error::Internal("rate-limit upsert returned no row".into()))?;
        Ok(row.into())
    }

    async fn login_lookup(&self, lookup: &LoginLookup<'_>) -> Result<LoginRead, Error> {
        // One transaction: each counter's upsert runs only while no counter before it is over
        // its limit (their rows as this batch left them), then the user is read.
        let window_start = lookup.now - lookup.now.rem_euclid(lookup.window_ms.max(1));
        let mut statements = Vec::with_capacity(lookup.counters.len() + 1);
        for (i, counter) in lookup.counters.iter().enumerate() {
            let earlier: Vec<String> = (0..i)
                .map(|j| format!("(key = ?{} AND count > ?{})", 4 + 2 * j, 5 + 2 * j))
                .collect();
            let condition = if earlier.is_empty() {
                "1".to_string()
            } else {
                format!(
                    "NOT EXISTS (SELECT 1 FROM rate_limits WHERE {})",
                    earlier.join(" OR ")
                )
            };
            let mut params = vec![
                text(&counter.key),
                int(window_start),
                int(window_start + lookup.window_ms),
            ];
            for before in &lookup.counters[..i] {
                params.push(text(&before.key));
                params.push(int(before.limit));
            }
            statements.push(stmt(
                format!(
                    "INSERT INTO rate_limits (key, window_start, count, expires_at) \
                     SELECT ?1, ?2, 1, ?3 WHERE {condition} {COUNT_UPSERT}"
                ),
                params,
            ));
        }
        if let Some(email) = lookup.email {
            statements.push(stmt(
                format!("{USER_SELECT} WHERE email = ?1"),
                vec![text(email)],
            ));
        }
        if statements.is_empty() {
            return Ok(LoginRead {
                hits: Vec::new(),
                user: None,
            });
        }
        let mut outcomes = self.batch(statements).await?.into_iter();
        let mut hits = Vec::with_capacity(lookup.counters.len());
        for _ in lookup.counters {
            let counted = outcomes.next().ok_or_else(too_few)?;
            hits.push(
                E::rows::<RateRow>(counted.rows)?
                    .into_iter()
                    .next()
                    .map(RateHit::from),
            );
        }
        let user = match lookup.email {
            Some(_) => E::rows::<UserRow>(outcomes.next().ok_or_else(too_few)?.rows)?
                .into_iter()
                .next()
                .map(UserRow::into_user)
                .transpose()?,
            None => None,
        };
        Ok(LoginRead { hits, user })
    }

    async fn busy_rate_limits(
        &self,
        now: i64,
        min_count: i64,
        limit: u32,
    ) -> Result<Vec<RateCounter>, Error> {
        let rows: Vec<RateCounterRow> = self
            .all(stmt(
                "SELECT key, count, window_start, expires_at FROM rate_limits \
                 WHERE expires_at > ?1 AND count >= ?2 ORDER BY count DESC, key LIMIT ?3",
                vec![int(now), int(min_count), int(i64::from(limit))],
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| RateCounter {
                key: r.key,
                count: r.count,
                window_start: r.window_start,
                expires_at: r.expires_at,
            })
            .collect())
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredEvent>, Error> {
        let rows: Vec<StoredEventRow> = self
            .all(stmt(
                "SELECT id, at, kind, actor_user_id, subject_user_id, family_id, ip, user_agent, detail \
                 FROM audit_events WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR actor_user_id = ?2) \
                 AND (?3 IS NULL OR subject_user_id = ?3) AND (?4 IS NULL OR at >= ?4) \
                 AND (?5 IS NULL OR at < ?5) AND (?6 IS NULL OR id < ?6) ORDER BY id DESC LIMIT ?7",
                vec![
                    opt_text(q.kind.as_deref()),
                    opt_text(q.actor_user_id.as_deref()),
                    opt_text(q.subject_user_id.as_deref()),
                    opt_int(q.since),
                    opt_int(q.until),
                    opt_int(q.before_id),
                    int(i64::from(q.limit)),
                ],
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredEvent {
                id: r.id,
                event: r.event.into(),
            })
            .collect())
    }

    async fn prune(&self, c: &PruneCutoffs) -> Result<PruneCounts, Error> {
        const DEAD: &str = "(expires_at < ?1 OR last_used_at + ?2 < ?1 OR revoked_at < ?1)";
        let dead = || vec![int(c.families_ended_before), int(c.idle_ms)];
        let outcomes = self
            .batch(vec![
                stmt(
                    format!(
                        "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE {DEAD})"
                    ),
                    dead(),
                ),
                stmt(format!("DELETE FROM refresh_families WHERE {DEAD}"), dead()),
                stmt("DELETE FROM audit_events WHERE at < ?1", vec![int(c.audit_before)]),
                stmt("DELETE FROM rate_limits WHERE expires_at <= ?1", vec![int(c.now)]),
                stmt(
                    "DELETE FROM webauthn_challenges WHERE expires_at <= ?1",
                    vec![int(c.now)],
                ),
            ])
            .await?;
        Ok(PruneCounts {
            tokens: changes(&outcomes, 0),
            families: changes(&outcomes, 1),
            audit_events: changes(&outcomes, 2),
            rate_limits: changes(&outcomes, 3),
            challenges: changes(&outcomes, 4),
        })
    }

    async fn create_challenge(&self, ch: &Challenge) -> Result<(), Error> {
        self.run(stmt(
            "INSERT INTO webauthn_challenges (challenge_hash, ceremony, user_id, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
            vec![
                text(&ch.challenge_hash),
                text(&ch.ceremony),
                opt_text(ch.user_id.as_deref()),
                int(ch.expires_at),
            ],
        ))
        .await?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        challenge_hash: &str,
        ceremony: &str,
    ) -> Result<Option<Challenge>, Error> {
        // One statement: the row is gone for every later caller, whoever reads it back.
        let row = self
            .first::<ChallengeRow>(stmt(
                "DELETE FROM webauthn_challenges WHERE challenge_hash = ?1 AND ceremony = ?2 \
                 RETURNING challenge_hash, ceremony, user_id, expires_at",
                vec![text(challenge_hash), text(ceremony)],
            ))
            .await?;
        Ok(row.map(|r| Challenge {
            challenge_hash: r.challenge_hash,
            ceremony: r.ceremony,
            user_id: r.user_id,
            expires_at: r.expires_at,
        }))
    }

    async fn create_passkey(&self, p: &Passkey, event: &AuditEvent) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    "INSERT INTO passkeys (id, user_id, credential_id, public_key, algorithm, sign_count, \
                     name, aaguid, backup_eligible, backed_up, transports, created_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 \
                     WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2) \
                     ON CONFLICT (credential_id) DO NOTHING",
                    vec![
                        text(&p.id),
                        text(&p.user_id),
                        text(&p.credential_id),
                        text(&p.public_key),
                        int(p.algorithm),
                        int(p.sign_count),
                        text(&p.name),
                        text(&p.aaguid),
                        int(i64::from(p.backup_eligible)),
                        int(i64::from(p.backed_up)),
                        json_text(&p.transports)?,
                        int(p.created_at),
                    ],
                ),
                event_statement(event, "WHERE changes() = 1", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) == 1)
    }

    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<Passkey>, Error> {
        self.first::<PasskeyRow>(stmt(
            format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = ?1"),
            vec![text(credential_id)],
        ))
        .await?
        .map(PasskeyRow::into_passkey)
        .transpose()
    }

    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<Passkey>, Error> {
        self.all::<PasskeyRow>(stmt(
            format!(
                "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = ?1 \
                 ORDER BY created_at DESC, id DESC"
            ),
            vec![text(user_id)],
        ))
        .await?
        .into_iter()
        .map(PasskeyRow::into_passkey)
        .collect()
    }

    async fn use_passkey(&self, u: &PasskeyUse) -> Result<bool, Error> {
        let changed = self
            .run(stmt(
                "UPDATE passkeys SET sign_count = ?3, backed_up = ?4, last_used_at = ?5 \
                 WHERE id = ?1 AND sign_count = ?2 AND flagged_at IS NULL",
                vec![
                    text(&u.id),
                    int(u.old_count),
                    int(u.new_count),
                    int(i64::from(u.backed_up)),
                    int(u.now),
                ],
            ))
            .await?;
        Ok(changed > 0)
    }

    async fn flag_passkey(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    "UPDATE passkeys SET flagged_at = ?2 WHERE id = ?1 AND flagged_at IS NULL",
                    vec![text(id), int(now)],
                ),
                event_statement(event, "WHERE changes() = 1", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) > 0)
    }

    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let outcomes = self
            .batch(vec![
                stmt(
                    "DELETE FROM passkeys WHERE id = ?1 AND user_id = ?2",
                    vec![text(id), text(user_id)],
                ),
                event_statement(event, "WHERE changes() = 1", vec![]),
            ])
            .await?;
        Ok(changes(&outcomes, 0) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_writes_parameters_as_literals() {
        let mut params = vec![text("O'Brien"), int(-5), Param::Null];
        params.extend((4..=9).map(|_| int(0)));
        params.push(text("ten"));
        let s = stmt("SELECT ?1, ?2, ?10, '?3', ?3", params);
        assert_eq!(
            inline(&s).unwrap(),
            "SELECT 'O''Brien', -5, 'ten', '?3', NULL"
        );
        let injection = stmt("SELECT ?1", vec![text("'; DROP TABLE users; --")]);
        assert_eq!(
            inline(&injection).unwrap(),
            "SELECT '''; DROP TABLE users; --'"
        );
        assert!(inline(&stmt("SELECT ?2", vec![int(1)])).is_err());
        assert!(inline(&stmt("SELECT ?", vec![int(1)])).is_err());
        assert!(inline(&stmt("SELECT ?1", vec![text("a\0b")])).is_err());
    }
}
