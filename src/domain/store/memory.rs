//! An in-memory [`Store`]: the reference implementation of the contract, for tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{
    ApiKey, AuditEvent, AuditQuery, Challenge, Family, KeyHash, KeyLookup, LoginLookup, LoginRead,
    NewFamily, Passkey, PasskeyUse, PasswordPhc, PruneCounts, PruneCutoffs, RateCounter, RateHit,
    RecoveryCodeHash, RevokeReason, Rotation, RotationOutcome, SessionLiveness, Store, StoredEvent,
    TokenHash, TokenState, TotpConfirmation, TotpRecord, User, UserQuery, REFRESH_FAMILY_BUCKET,
};
use crate::primitives::error::Error;

#[derive(Debug, Clone)]
struct TokenRow {
    family_id: String,
    generation: i64,
    rotated_at: Option<i64>,
    successor_hash: Option<TokenHash>,
    successor_sealed: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, User>,
    families: HashMap<String, Family>,
    tokens: HashMap<TokenHash, TokenRow>,
    events: Vec<StoredEvent>,
    next_event_id: i64,
    api_keys: HashMap<String, ApiKey>,
    /// key -> (window_start, count, expires_at)
    rate_limits: HashMap<String, (i64, i64, i64)>,
    /// user id -> TOTP record (its `recovery_codes_left` unused: counted from `recovery`)
    totp: HashMap<String, TotpRecord>,
    /// user id -> unused recovery codes
    recovery: HashMap<String, Vec<RecoveryCodeHash>>,
    passkeys: Vec<Passkey>,
    challenges: HashMap<String, Challenge>,
}

/// All state behind one lock: every method is one critical section, hence atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Storage operations so far (each a D1 statement or batch in the SQL store): what tests
    /// count to show that a path reads or writes no more than it should.
    operations: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many storage operations (method calls other than `ping`) this store has served.
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.operations.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl State {
    fn push_event(&mut self, event: &AuditEvent) {
        self.next_event_id += 1;
        self.events.push(StoredEvent {
            id: self.next_event_id,
            event: event.clone(),
        });
    }

    fn revoke_all(&mut self, user_id: &str, reason: RevokeReason, now: i64) -> u64 {
        let ids: Vec<String> = self
            .families
            .values()
            .filter(|f| f.user_id == user_id)
            .map(|f| f.id.clone())
            .collect();
        ids.iter().filter(|id| self.revoke(id, reason, now)).count() as u64
    }

    fn insert_family(&mut self, family: &NewFamily) -> Result<(), Error> {
        if !self.users.contains_key(&family.user_id) {
            return Err(Error::Internal("family for an unknown user".into()));
        }
        if self.families.contains_key(&family.id)
            || self.tokens.contains_key(&family.first_token_hash)
        {
            return Err(Error::Internal("duplicate family or token".into()));
        }
        self.families.insert(
            family.id.clone(),
            Family {
                id: family.id.clone(),
                user_id: family.user_id.clone(),
                created_at: family.created_at,
                last_used_at: family.created_at,
                expires_at: family.expires_at,
                revoked_at: None,
                revoke_reason: None,
                user_agent: family.user_agent.clone(),
                console: family.console.clone(),
            },
        );
        self.tokens.insert(
            family.first_token_hash.clone(),
            TokenRow {
                family_id: family.id.clone(),
                generation: 0,
                rotated_at: None,
                successor_hash: None,
                successor_sealed: None,
            },
        );
        Ok(())
    }

    /// Counts one hit on rate-limit counter `key` in the fixed window of `now`.
    fn hit(&mut self, key: &str, window_ms: i64, now: i64) -> RateHit {
        let window_start = now - now.rem_euclid(window_ms.max(1));
        let entry = self.rate_limits.entry(key.to_string()).or_insert((
            window_start,
            0,
            window_start + window_ms,
        ));
        // Windows only move forward: a late hit from an older window counts against the
        // stored one.
        if window_start > entry.0 {
            *entry = (window_start, 0, window_start + window_ms);
        }
        entry.1 += 1;
        RateHit {
            count: entry.1,
            window_start: entry.0,
        }
    }

    fn token_state(&self, token_hash: &TokenHash) -> Option<TokenState> {
        let row = self.tokens.get(token_hash)?;
        let family = self.families.get(&row.family_id)?.clone();
        Some(TokenState {
            family,
            generation: row.generation,
            rotated_at: row.rotated_at,
            successor_hash: row.successor_hash.clone(),
            successor_sealed: row.successor_sealed.clone(),
        })
    }

    /// Sets the `totp` flag users are read with.
    fn set_totp_flag(&mut self, user_id: &str) {
        let enrolled = self
            .totp
            .get(user_id)
            .is_some_and(|t| t.secret_sealed.is_some());
        if let Some(user) = self.users.get_mut(user_id) {
            user.totp = enrolled;
        }
    }

    fn revoke(&mut self, family_id: &str, reason: RevokeReason, now: i64) -> bool {
        match self.families.get_mut(family_id) {
            Some(family) if family.revoked_at.is_none() => {
                family.revoked_at = Some(now);
                family.revoke_reason = Some(reason.as_str().to_string());
                true
            }
            _ => false,
        }
    }
}

impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn create_user(
        &self,
        user: &User,
        family: Option<&NewFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        self.with(|s| {
            if s.users.values().any(|u| u.email == user.email) {
                return Err(Error::EmailTaken);
            }
            if s.users.contains_key(&user.id) {
                return Err(Error::Internal("duplicate user id".into()));
            }
            // A new user has no second factor, whatever the value says.
            s.users.insert(
                user.id.clone(),
                User {
                    totp: false,
                    ..user.clone()
                },
            );
            if let Some(family) = family {
                if let Err(err) = s.insert_family(family) {
                    s.users.remove(&user.id);
                    return Err(err);
                }
            }
            if let Some(event) = event {
                s.push_event(event);
            }
            Ok(())
        })
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        Ok(self.with(|s| s.users.values().find(|u| u.email == email).cloned()))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, Error> {
        Ok(self.with(|s| s.users.get(id).cloned()))
    }

    async fn upgrade_password_hash(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        now: i64,
    ) -> Result<(), Error> {
        self.with(|s| {
            if let Some(user) = s.users.get_mut(user_id) {
                user.password_hash = phc.clone();
                user.updated_at = now;
            }
        });
        Ok(())
    }

    async fn change_password(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        keep: Option<&str>,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error> {
        Ok(self.with(|s| {
            let Some(user) = s.users.get_mut(user_id) else {
                return 0;
            };
            user.password_hash = phc.clone();
            user.updated_at = now;
            let ids: Vec<String> = s
                .families
                .values()
                .filter(|f| f.user_id == user_id && Some(f.id.as_str()) != keep)
                .map(|f| f.id.clone())
                .collect();
            let revoked = ids
                .iter()
                .filter(|id| s.revoke(id, RevokeReason::PasswordChange, now))
                .count() as u64;
            let mut event = event.clone();
            let mut detail = match event.detail.take() {
                Some(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            detail.insert("revoked_sessions".into(), revoked.into());
            event.detail = Some(serde_json::Value::Object(detail));
            s.push_event(&event);
            revoked
        }))
    }

    async fn create_family(
        &self,
        family: &NewFamily,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        self.with(|s| {
            s.insert_family(family)?;
            if let Some(event) = event {
                s.push_event(event);
            }
            Ok(())
        })
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, Error> {
        Ok(self.with(|s| {
            let found = s.tokens.get(&rotation.token_hash).cloned().and_then(|row| {
                let family = s.families.get(&row.family_id)?.clone();
                Some((row, family))
            });
            let Some((row, family)) = found else {
                return RotationOutcome {
                    state: None,
                    counted: None,
                    user: None,
                };
            };
            let ours = rotation
                .family
                .as_ref()
                .is_none_or(|required| *required == row.family_id);
            let counted = rotation.limit.filter(|_| ours).map(|limit| {
                let key = format!("{REFRESH_FAMILY_BUCKET}:{}", row.family_id);
                s.hit(&key, limit.window_ms, rotation.now)
            });
            let within = match (rotation.limit, counted) {
                (Some(limit), Some(hit)) => hit.count <= limit.max,
                _ => true,
            };
            let eligible = ours
                && within
                && row.rotated_at.is_none()
                && family.is_live(rotation.now, rotation.now - rotation.idle_cutoff);
            if let Some(token) = s.tokens.get_mut(&rotation.token_hash).filter(|_| eligible) {
                token.rotated_at = Some(rotation.now);
                token.successor_hash = Some(rotation.successor_hash.clone());
                token.successor_sealed = Some(rotation.successor_sealed.clone());
                s.tokens.insert(
                    rotation.successor_hash.clone(),
                    TokenRow {
                        family_id: row.family_id.clone(),
                        generation: row.generation + 1,
                        rotated_at: None,
                        successor_hash: None,
                        successor_sealed: None,
                    },
                );
                if let Some(f) = s.families.get_mut(&row.family_id) {
                    f.last_used_at = rotation.now;
                }
                for (hash, token) in s.tokens.iter_mut() {
                    if token.family_id == row.family_id && *hash != rotation.token_hash {
                        token.successor_sealed = None;
                    }
                }
            }
            RotationOutcome {
                state: s.token_state(&rotation.token_hash),
                counted,
                user: s.users.get(&family.user_id).cloned(),
            }
        }))
    }

    async fn token_state(&self, token_hash: &TokenHash) -> Result<Option<TokenState>, Error> {
        Ok(self.with(|s| s.token_state(token_hash)))
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        reason: RevokeReason,
        now: i64,
        event: Option<&AuditEvent>,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let revoked = s.revoke(family_id, reason, now);
            if let Some(event) = event.filter(|_| revoked) {
                s.push_event(event);
            }
            revoked
        }))
    }

    async fn family(&self, family_id: &str) -> Result<Option<Family>, Error> {
        Ok(self.with(|s| s.families.get(family_id).cloned()))
    }

    async fn session_liveness(&self, family_id: &str) -> Result<Option<SessionLiveness>, Error> {
        Ok(self.with(|s| {
            let family = s.families.get(family_id)?;
            let user = s.users.get(&family.user_id)?;
            Some(SessionLiveness {
                user_id: family.user_id.clone(),
                revoked_at: family.revoked_at,
                expires_at: family.expires_at,
                user_disabled: user.disabled,
                user_roles: user.roles.clone(),
            })
        }))
    }

    async fn live_tokens(&self, family_id: &str) -> Result<u64, Error> {
        Ok(self.with(|s| {
            s.tokens
                .values()
                .filter(|t| t.family_id == family_id && t.rotated_at.is_none())
                .count() as u64
        }))
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), Error> {
        self.with(|s| s.push_event(event));
        Ok(())
    }

    async fn audit_events(
        &self,
        subject_user_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        Ok(self.with(|s| {
            s.events
                .iter()
                .rev()
                .map(|e| &e.event)
                .filter(|e| {
                    subject_user_id.is_none() || e.subject_user_id.as_deref() == subject_user_id
                })
                .take(limit as usize)
                .cloned()
                .collect()
        }))
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, Error> {
        let needle = query.search.as_deref().map(str::to_lowercase);
        Ok(self.with(|s| {
            let mut users: Vec<User> = s
                .users
                .values()
                .filter(|u| {
                    query
                        .after_email
                        .as_deref()
                        .is_none_or(|a| u.email.as_str() > a)
                })
                .filter(|u| {
                    needle.as_deref().is_none_or(|n| {
                        u.email.to_lowercase().contains(n)
                            || u.name
                                .as_deref()
                                .is_some_and(|m| m.to_lowercase().contains(n))
                    })
                })
                .cloned()
                .collect();
            users.sort_by(|a, b| a.email.cmp(&b.email));
            users.truncate(query.limit as usize);
            users
        }))
    }

    async fn set_roles(
        &self,
        user_id: &str,
        roles: &[String],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let Some(user) = s.users.get_mut(user_id) else {
                return false;
            };
            user.roles = roles.to_vec();
            user.updated_at = now;
            s.push_event(event);
            true
        }))
    }

    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
        event: &AuditEvent,
    ) -> Result<Option<u64>, Error> {
        Ok(self.with(|s| {
            let user = s.users.get_mut(user_id)?;
            user.disabled = disabled;
            user.updated_at = now;
            let revoked = if disabled {
                s.revoke_all(user_id, RevokeReason::Admin, now)
            } else {
                0
            };
            s.push_event(event);
            Some(revoked)
        }))
    }

    async fn user_families(&self, user_id: &str) -> Result<Vec<Family>, Error> {
        Ok(self.with(|s| {
            let mut families: Vec<Family> = s
                .families
                .values()
                .filter(|f| f.user_id == user_id)
                .cloned()
                .collect();
            families.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            families
        }))
    }

    async fn revoke_user_families(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error> {
        Ok(self.with(|s| {
            let n = s.revoke_all(user_id, reason, now);
            if n > 0 {
                s.push_event(event);
            }
            n
        }))
    }

    async fn create_api_key(&self, key: &ApiKey, event: &AuditEvent) -> Result<(), Error> {
        self.with(|s| {
            if !s.users.contains_key(&key.owner_user_id) {
                return Err(Error::Internal("API key for an unknown user".into()));
            }
            if s.api_keys.contains_key(&key.id)
                || s.api_keys.values().any(|k| k.key_hash == key.key_hash)
            {
                return Err(Error::Internal("duplicate API key".into()));
            }
            s.api_keys.insert(key.id.clone(), key.clone());
            s.push_event(event);
            Ok(())
        })
    }

    async fn api_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, Error> {
        Ok(self.with(|s| {
            let key = s
                .api_keys
                .values()
                .find(|k| k.key_hash == *key_hash)?
                .clone();
            let owner = s.users.get(&key.owner_user_id)?;
            Some(KeyLookup {
                owner_roles: owner.roles.clone(),
                owner_disabled: owner.disabled,
                key,
            })
        }))
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, Error> {
        Ok(self.with(|s| s.api_keys.get(id).cloned()))
    }

    async fn api_key_lookup(&self, id: &str) -> Result<Option<KeyLookup>, Error> {
        Ok(self.with(|s| {
            let key = s.api_keys.get(id)?.clone();
            let owner = s.users.get(&key.owner_user_id)?;
            Some(KeyLookup {
                owner_roles: owner.roles.clone(),
                owner_disabled: owner.disabled,
                key,
            })
        }))
    }

    async fn list_api_keys(&self, owner_user_id: Option<&str>) -> Result<Vec<ApiKey>, Error> {
        Ok(self.with(|s| {
            let mut keys: Vec<ApiKey> = s
                .api_keys
                .values()
                .filter(|k| owner_user_id.is_none_or(|o| k.owner_user_id == o))
                .cloned()
                .collect();
            keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            keys
        }))
    }

    async fn revoke_api_key(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error> {
        Ok(self.with(|s| match s.api_keys.get_mut(id) {
            Some(key) if key.revoked_at.is_none() => {
                key.revoked_at = Some(now);
                s.push_event(event);
                true
            }
            _ => false,
        }))
    }

    async fn touch_api_key(&self, id: &str, now: i64, min_interval_ms: i64) -> Result<bool, Error> {
        Ok(self.with(|s| match s.api_keys.get_mut(id) {
            Some(key) if key.last_used_at.is_none_or(|t| t <= now - min_interval_ms) => {
                key.last_used_at = Some(now);
                true
            }
            _ => false,
        }))
    }

    async fn totp(&self, user_id: &str) -> Result<Option<TotpRecord>, Error> {
        Ok(self.with(|s| {
            let left = s.recovery.get(user_id).map_or(0, Vec::len) as u64;
            s.totp.get(user_id).map(|t| TotpRecord {
                recovery_codes_left: left,
                ..t.clone()
            })
        }))
    }

    async fn start_totp(
        &self,
        user_id: &str,
        pending_sealed: &str,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| {
            if !s.users.contains_key(user_id) {
                return false;
            }
            let record = s.totp.entry(user_id.to_string()).or_insert(TotpRecord {
                secret_sealed: None,
                last_step: 0,
                enrolled_at: None,
                pending_sealed: None,
                pending_at: None,
                recovery_codes_left: 0,
            });
            record.pending_sealed = Some(pending_sealed.to_string());
            record.pending_at = Some(now);
            s.push_event(event);
            true
        }))
    }

    async fn confirm_totp(&self, c: &TotpConfirmation, event: &AuditEvent) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let Some(record) = s.totp.get_mut(&c.user_id) else {
                return false;
            };
            if record.pending_sealed.as_deref() != Some(c.pending_sealed.as_str()) {
                return false;
            }
            record.secret_sealed = record.pending_sealed.take();
            record.pending_at = None;
            record.last_step = c.step;
            record.enrolled_at = Some(c.now);
            s.recovery
                .insert(c.user_id.clone(), c.recovery_codes.clone());
            s.set_totp_flag(&c.user_id);
            s.push_event(event);
            true
        }))
    }

    async fn use_totp_step(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| match s.totp.get_mut(user_id) {
            Some(t) if t.secret_sealed.as_deref() == Some(secret_sealed) && t.last_step < step => {
                t.last_step = step;
                true
            }
            _ => false,
        }))
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &RecoveryCodeHash,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let Some(codes) = s.recovery.get_mut(user_id) else {
                return false;
            };
            let before = codes.len();
            codes.retain(|c| c != code);
            codes.len() < before
        }))
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        codes: &[RecoveryCodeHash],
        _now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let enrolled = s
                .totp
                .get(user_id)
                .is_some_and(|t| t.secret_sealed.is_some());
            if enrolled {
                s.recovery.insert(user_id.to_string(), codes.to_vec());
                s.push_event(event);
            }
            enrolled
        }))
    }

    async fn remove_totp(&self, user_id: &str, event: &AuditEvent) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let removed = s.totp.remove(user_id);
            s.recovery.remove(user_id);
            s.set_totp_flag(user_id);
            let enrolled = removed.is_some_and(|t| t.secret_sealed.is_some());
            if enrolled {
                s.push_event(event);
            }
            enrolled
        }))
    }

    async fn hit_rate_limit(&self, key: &str, window_ms: i64, now: i64) -> Result<RateHit, Error> {
        Ok(self.with(|s| s.hit(key, window_ms, now)))
    }

    async fn login_lookup(&self, lookup: &LoginLookup<'_>) -> Result<LoginRead, Error> {
        Ok(self.with(|s| {
            let mut within = true;
            let hits = lookup
                .counters
                .iter()
                .map(|counter| {
                    within.then(|| {
                        let hit = s.hit(&counter.key, lookup.window_ms, lookup.now);
                        within = hit.count <= counter.limit;
                        hit
                    })
                })
                .collect();
            let user = lookup
                .email
                .and_then(|email| s.users.values().find(|u| u.email == email).cloned());
            LoginRead { hits, user }
        }))
    }

    async fn busy_rate_limits(
        &self,
        now: i64,
        min_count: i64,
        limit: u32,
    ) -> Result<Vec<RateCounter>, Error> {
        Ok(self.with(|s| {
            let mut busy: Vec<RateCounter> = s
                .rate_limits
                .iter()
                .filter(|(_, (_, count, expires_at))| *expires_at > now && *count >= min_count)
                .map(|(key, (window_start, count, expires_at))| RateCounter {
                    key: key.clone(),
                    count: *count,
                    window_start: *window_start,
                    expires_at: *expires_at,
                })
                .collect();
            busy.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            busy.truncate(limit as usize);
            busy
        }))
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredEvent>, Error> {
        Ok(self.with(|s| {
            s.events
                .iter()
                .rev()
                .filter(|e| {
                    let ev = &e.event;
                    q.kind.as_deref().is_none_or(|k| ev.kind == k)
                        && q.actor_user_id.is_none_or_eq(&ev.actor_user_id)
                        && q.subject_user_id.is_none_or_eq(&ev.subject_user_id)
                        && q.since.is_none_or(|t| ev.at >= t)
                        && q.until.is_none_or(|t| ev.at < t)
                        && q.before_id.is_none_or(|id| e.id < id)
                })
                .take(q.limit as usize)
                .cloned()
                .collect()
        }))
    }

    async fn prune(&self, c: &PruneCutoffs) -> Result<PruneCounts, Error> {
        Ok(self.with(|s| {
            let cut = c.families_ended_before;
            let dead: Vec<String> = s
                .families
                .values()
                .filter(|f| {
                    f.expires_at < cut
                        || f.last_used_at + c.idle_ms < cut
                        || f.revoked_at.is_some_and(|r| r < cut)
                })
                .map(|f| f.id.clone())
                .collect();
            let mut counts = PruneCounts::default();
            for id in &dead {
                s.families.remove(id);
                counts.families += 1;
            }
            let before = s.tokens.len();
            s.tokens.retain(|_, t| !dead.contains(&t.family_id));
            counts.tokens = (before - s.tokens.len()) as u64;
            let before = s.events.len();
            s.events.retain(|e| e.event.at >= c.audit_before);
            counts.audit_events = (before - s.events.len()) as u64;
            let before = s.rate_limits.len();
            s.rate_limits
                .retain(|_, (_, _, expires_at)| *expires_at > c.now);
            counts.rate_limits = (before - s.rate_limits.len()) as u64;
            let before = s.challenges.len();
            s.challenges.retain(|_, ch| ch.expires_at > c.now);
            counts.challenges = (before - s.challenges.len()) as u64;
            counts
        }))
    }

    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), Error> {
        self.with(|s| {
            if s.challenges.contains_key(&challenge.challenge_hash) {
                return Err(Error::Internal("duplicate challenge".into()));
            }
            s.challenges
                .insert(challenge.challenge_hash.clone(), challenge.clone());
            Ok(())
        })
    }

    async fn take_challenge(
        &self,
        challenge_hash: &str,
        ceremony: &str,
    ) -> Result<Option<Challenge>, Error> {
        Ok(self.with(|s| match s.challenges.get(challenge_hash) {
            Some(ch) if ch.ceremony == ceremony => s.challenges.remove(challenge_hash),
            _ => None,
        }))
    }

    async fn create_passkey(&self, passkey: &Passkey, event: &AuditEvent) -> Result<bool, Error> {
        self.with(|s| {
            if !s.users.contains_key(&passkey.user_id) {
                return Err(Error::Internal("passkey for an unknown user".into()));
            }
            if s.passkeys.iter().any(|p| p.id == passkey.id) {
                return Err(Error::Internal("duplicate passkey id".into()));
            }
            if s.passkeys
                .iter()
                .any(|p| p.credential_id == passkey.credential_id)
            {
                return Ok(false);
            }
            s.passkeys.push(passkey.clone());
            s.push_event(event);
            Ok(true)
        })
    }

    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<Passkey>, Error> {
        Ok(self.with(|s| {
            s.passkeys
                .iter()
                .find(|p| p.credential_id == credential_id)
                .cloned()
        }))
    }

    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<Passkey>, Error> {
        Ok(self.with(|s| {
            let mut list: Vec<Passkey> = s
                .passkeys
                .iter()
                .filter(|p| p.user_id == user_id)
                .cloned()
                .collect();
            list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            list
        }))
    }

    async fn use_passkey(&self, used: &PasskeyUse) -> Result<bool, Error> {
        Ok(self.with(|s| {
            match s.passkeys.iter_mut().find(|p| {
                p.id == used.id && p.sign_count == used.old_count && p.flagged_at.is_none()
            }) {
                Some(p) => {
                    p.sign_count = used.new_count;
                    p.backed_up = used.backed_up;
                    p.last_used_at = Some(used.now);
                    true
                }
                None => false,
            }
        }))
    }

    async fn flag_passkey(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error> {
        Ok(self.with(|s| {
            match s
                .passkeys
                .iter_mut()
                .find(|p| p.id == id && p.flagged_at.is_none())
            {
                Some(p) => {
                    p.flagged_at = Some(now);
                    s.push_event(event);
                    true
                }
                None => false,
            }
        }))
    }

    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        Ok(self.with(|s| {
            let before = s.passkeys.len();
            s.passkeys.retain(|p| !(p.id == id && p.user_id == user_id));
            let deleted = s.passkeys.len() < before;
            if deleted {
                s.push_event(event);
            }
            deleted
        }))
    }
}

/// `None` matches everything; `Some(x)` matches exactly `Some(x)`.
trait MatchesOpt {
    fn is_none_or_eq(&self, value: &Option<String>) -> bool;
}

impl MatchesOpt for Option<String> {
    fn is_none_or_eq(&self, value: &Option<String>) -> bool {
        self.is_none() || self == value
    }
}
