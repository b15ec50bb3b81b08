//! The D1 implementation of [`Store`]. Every multi-row change is one `batch()` (one
//! transaction); see docs/storage-schema.md for the rotation step.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::error::Error;
use crate::store::{
    AuditEvent, Family, NewFamily, RevokeReason, Rotation, Store, TokenState, User,
};

/// [`Store`] on a D1 binding.
pub struct D1Store {
    db: D1Database,
}

impl D1Store {
    /// Wraps the binding.
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, Error> {
        self.db.prepare(sql).bind(args).map_err(db_err)
    }

    async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>, Error> {
        self.db.batch(statements).await.map_err(db_err)
    }

    async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Option<T>, Error> {
        self.stmt(sql, args)?.first::<T>(None).await.map_err(db_err)
    }

    async fn all<T: DeserializeOwned>(&self, sql: &str, args: &[JsValue]) -> Result<Vec<T>, Error> {
        self.stmt(sql, args)?
            .all()
            .await
            .map_err(db_err)?
            .results::<T>()
            .map_err(db_err)
    }
}

fn db_err(err: worker::Error) -> Error {
    Error::Internal(format!("D1: {err}"))
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

fn opt_text(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

fn int(n: i64) -> JsValue {
    // D1 numbers are JS doubles; Unix milliseconds and counters stay far below 2^53.
    JsValue::from_f64(n as f64)
}

fn changes(result: &D1Result) -> u64 {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0) as u64
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
}

impl UserRow {
    fn into_user(self) -> Result<User, Error> {
        let roles = serde_json::from_str(&self.roles).map_err(|e| {
            Error::Internal(format!(
                "users.roles of {} is not a JSON array: {e}",
                self.id
            ))
        })?;
        Ok(User {
            id: self.id,
            email: self.email,
            name: self.name,
            password_hash: self.password_hash,
            roles,
            disabled: self.disabled != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
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
            successor_hash: r.successor_hash,
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

const TOKEN_STATE_SQL: &str = "SELECT t.generation, t.rotated_at, t.successor_hash, t.successor_sealed, \
     f.id, f.user_id, f.created_at, f.last_used_at, f.expires_at, f.revoked_at, f.revoke_reason, f.user_agent \
     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?1";

const INSERT_EVENT_SQL: &str = "INSERT INTO audit_events \
     (at, kind, actor_user_id, subject_user_id, family_id, ip, user_agent, detail) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8";

impl D1Store {
    fn family_statements(&self, family: &NewFamily) -> Result<[D1PreparedStatement; 2], Error> {
        Ok([
            self.stmt(
                "INSERT INTO refresh_families (id, user_id, created_at, last_used_at, expires_at, user_agent) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                &[
                    text(&family.id),
                    text(&family.user_id),
                    int(family.created_at),
                    int(family.expires_at),
                    opt_text(family.user_agent.as_deref()),
                ],
            )?,
            self.stmt(
                "INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) VALUES (?1, ?2, 0, ?3)",
                &[text(&family.first_token_hash), text(&family.id), int(family.created_at)],
            )?,
        ])
    }

    /// The INSERT of an audit event, optionally guarded by a `WHERE` clause.
    fn event_statement(
        &self,
        e: &AuditEvent,
        condition: &str,
    ) -> Result<D1PreparedStatement, Error> {
        let detail = e.detail.as_ref().map(|d| d.to_string());
        self.stmt(
            &format!("{INSERT_EVENT_SQL} {condition}"),
            &[
                int(e.at),
                text(&e.kind),
                opt_text(e.actor_user_id.as_deref()),
                opt_text(e.subject_user_id.as_deref()),
                opt_text(e.family_id.as_deref()),
                opt_text(e.ip.as_deref()),
                opt_text(e.user_agent.as_deref()),
                opt_text(detail.as_deref()),
            ],
        )
    }
}

impl Store for D1Store {
    async fn ping(&self) -> Result<(), Error> {
        // Touches every table, so a database without the migrations applied is not ready.
        self.first::<Count>(
            "SELECT (SELECT count(*) FROM users WHERE 0) + (SELECT count(*) FROM refresh_families WHERE 0) \
             + (SELECT count(*) FROM refresh_tokens WHERE 0) + (SELECT count(*) FROM audit_events WHERE 0) AS n",
            &[],
        )
        .await
        .map(drop)
    }

    async fn create_user(
        &self,
        user: &User,
        family: Option<&NewFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        let roles =
            serde_json::to_string(&user.roles).map_err(|e| Error::Internal(e.to_string()))?;
        let mut statements = vec![self.stmt(
            "INSERT INTO users (id, email, name, password_hash, roles, disabled, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[
                text(&user.id),
                text(&user.email),
                opt_text(user.name.as_deref()),
                text(&user.password_hash),
                text(&roles),
                int(i64::from(user.disabled)),
                int(user.created_at),
                int(user.updated_at),
            ],
        )?];
        if let Some(family) = family {
            statements.extend(self.family_statements(family)?);
        }
        if let Some(event) = event {
            statements.push(self.event_statement(event, "")?);
        }
        match self.db.batch(statements).await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .to_string()
                    .contains("UNIQUE constraint failed: users.email") =>
            {
                Err(Error::EmailTaken)
            }
            Err(err) => Err(db_err(err)),
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        self.first::<UserRow>("SELECT * FROM users WHERE email = ?1", &[text(email)])
            .await?
            .map(UserRow::into_user)
            .transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, Error> {
        self.first::<UserRow>("SELECT * FROM users WHERE id = ?1", &[text(id)])
            .await?
            .map(UserRow::into_user)
            .transpose()
    }

    async fn upgrade_password_hash(&self, user_id: &str, phc: &str, now: i64) -> Result<(), Error> {
        self.stmt(
            "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            &[text(user_id), text(phc), int(now)],
        )?
        .run()
        .await
        .map_err(db_err)
        .map(drop)
    }

    async fn change_password(
        &self,
        user_id: &str,
        phc: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<u64, Error> {
        let results = self
            .batch(vec![
                self.stmt(
                    "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
                    &[text(user_id), text(phc), int(now)],
                )?,
                self.stmt(
                    "UPDATE refresh_families SET revoked_at = ?2, revoke_reason = ?3 \
                     WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?4",
                    &[
                        text(user_id),
                        int(now),
                        text(RevokeReason::PasswordChange.as_str()),
                        opt_text(keep),
                    ],
                )?,
            ])
            .await?;
        Ok(results.get(1).map_or(0, changes))
    }

    async fn create_family(
        &self,
        family: &NewFamily,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        let mut statements: Vec<_> = self.family_statements(family)?.into();
        if let Some(event) = event {
            statements.push(self.event_statement(event, "")?);
        }
        self.batch(statements).await.map(drop)
    }

    async fn rotate_refresh(&self, r: &Rotation) -> Result<Option<TokenState>, Error> {
        // One transaction. Statement 1 can succeed for one caller only (`rotated_at IS NULL`);
        // statements 2 to 4 act only for the caller whose successor statement 1 recorded
        // (insert the successor, touch the family, drop older seals); statement 5 reads the
        // outcome inside the same transaction.
        let results = self
            .batch(vec![
                self.stmt(
                    "UPDATE refresh_tokens SET rotated_at = ?2, successor_hash = ?3, successor_sealed = ?4 \
                     WHERE token_hash = ?1 AND rotated_at IS NULL AND EXISTS (\
                       SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id \
                       AND f.revoked_at IS NULL AND f.expires_at > ?2 AND f.last_used_at > ?5)",
                    &[
                        text(&r.token_hash),
                        int(r.now),
                        text(&r.successor_hash),
                        text(&r.successor_sealed),
                        int(r.idle_cutoff),
                    ],
                )?,
                self.stmt(
                    "INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) \
                     SELECT ?1, family_id, generation + 1, ?2 FROM refresh_tokens \
                     WHERE token_hash = ?3 AND successor_hash = ?1",
                    &[text(&r.successor_hash), int(r.now), text(&r.token_hash)],
                )?,
                self.stmt(
                    "UPDATE refresh_families SET last_used_at = ?1 WHERE id = (\
                       SELECT family_id FROM refresh_tokens WHERE token_hash = ?2 AND successor_hash = ?3)",
                    &[int(r.now), text(&r.token_hash), text(&r.successor_hash)],
                )?,
                self.stmt(
                    "UPDATE refresh_tokens SET successor_sealed = NULL \
                     WHERE successor_sealed IS NOT NULL AND token_hash != ?1 AND family_id = (\
                       SELECT family_id FROM refresh_tokens WHERE token_hash = ?1 AND successor_hash = ?2)",
                    &[text(&r.token_hash), text(&r.successor_hash)],
                )?,
                self.stmt(TOKEN_STATE_SQL, &[text(&r.token_hash)])?,
            ])
            .await?;
        let rows = results
            .get(4)
            .ok_or_else(|| Error::Internal("D1 batch returned too few results".into()))?
            .results::<TokenRow>()
            .map_err(db_err)?;
        Ok(rows.into_iter().next().map(TokenState::from))
    }

    async fn token_state(&self, token_hash: &str) -> Result<Option<TokenState>, Error> {
        Ok(self
            .first::<TokenRow>(TOKEN_STATE_SQL, &[text(token_hash)])
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
        let mut statements = vec![self.stmt(
            "UPDATE refresh_families SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            &[text(family_id), int(now), text(reason.as_str())],
        )?];
        if let Some(event) = event {
            // `changes()` is the row count of the UPDATE just before it in this transaction:
            // the event is written only by the call that revoked the family.
            statements.push(self.event_statement(event, "WHERE changes() = 1")?);
        }
        let results = self.batch(statements).await?;
        Ok(results.first().map_or(0, changes) > 0)
    }

    async fn family(&self, family_id: &str) -> Result<Option<Family>, Error> {
        Ok(self
            .first::<FamilyRow>(
                "SELECT * FROM refresh_families WHERE id = ?1",
                &[text(family_id)],
            )
            .await?
            .map(Family::from))
    }

    async fn live_tokens(&self, family_id: &str) -> Result<u64, Error> {
        let count = self
            .first::<Count>(
                "SELECT count(*) AS n FROM refresh_tokens WHERE family_id = ?1 AND rotated_at IS NULL",
                &[text(family_id)],
            )
            .await?;
        Ok(count.map_or(0, |c| c.n.max(0) as u64))
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), Error> {
        self.event_statement(event, "")?
            .run()
            .await
            .map_err(db_err)
            .map(drop)
    }

    async fn audit_events(
        &self,
        subject_user_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        let rows: Vec<EventRow> = self
            .all(
                "SELECT at, kind, actor_user_id, subject_user_id, family_id, ip, user_agent, detail \
                 FROM audit_events WHERE (?1 IS NULL OR subject_user_id = ?1) ORDER BY id DESC LIMIT ?2",
                &[opt_text(subject_user_id), int(i64::from(limit))],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                at: r.at,
                kind: r.kind,
                actor_user_id: r.actor_user_id,
                subject_user_id: r.subject_user_id,
                family_id: r.family_id,
                ip: r.ip,
                user_agent: r.user_agent,
                detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
            .collect())
    }
}
