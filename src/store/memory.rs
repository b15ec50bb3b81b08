//! An in-memory [`Store`]: the reference implementation of the contract, for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{AuditEvent, Family, NewFamily, RevokeReason, Rotation, Store, TokenState, User};
use crate::error::Error;

#[derive(Debug, Clone)]
struct TokenRow {
    family_id: String,
    generation: i64,
    rotated_at: Option<i64>,
    successor_hash: Option<String>,
    successor_sealed: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, User>,
    families: HashMap<String, Family>,
    tokens: HashMap<String, TokenRow>,
    events: Vec<AuditEvent>,
}

/// All state behind one lock: every method is one critical section, hence atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl State {
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

    fn token_state(&self, token_hash: &str) -> Option<TokenState> {
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
            s.users.insert(user.id.clone(), user.clone());
            if let Some(family) = family {
                if let Err(err) = s.insert_family(family) {
                    s.users.remove(&user.id);
                    return Err(err);
                }
            }
            s.events.extend(event.cloned());
            Ok(())
        })
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        Ok(self.with(|s| s.users.values().find(|u| u.email == email).cloned()))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, Error> {
        Ok(self.with(|s| s.users.get(id).cloned()))
    }

    async fn upgrade_password_hash(&self, user_id: &str, phc: &str, now: i64) -> Result<(), Error> {
        self.with(|s| {
            if let Some(user) = s.users.get_mut(user_id) {
                user.password_hash = phc.to_string();
                user.updated_at = now;
            }
        });
        Ok(())
    }

    async fn change_password(
        &self,
        user_id: &str,
        phc: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<u64, Error> {
        Ok(self.with(|s| {
            let Some(user) = s.users.get_mut(user_id) else {
                return 0;
            };
            user.password_hash = phc.to_string();
            user.updated_at = now;
            let ids: Vec<String> = s
                .families
                .values()
                .filter(|f| f.user_id == user_id && Some(f.id.as_str()) != keep)
                .map(|f| f.id.clone())
                .collect();
            ids.iter()
                .filter(|id| s.revoke(id, RevokeReason::PasswordChange, now))
                .count() as u64
        }))
    }

    async fn create_family(
        &self,
        family: &NewFamily,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        self.with(|s| {
            s.insert_family(family)?;
            s.events.extend(event.cloned());
            Ok(())
        })
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<Option<TokenState>, Error> {
        Ok(self.with(|s| {
            let row = s.tokens.get(&rotation.token_hash)?.clone();
            let family = s.families.get(&row.family_id)?.clone();
            let eligible = row.rotated_at.is_none()
                && family.revoked_at.is_none()
                && family.expires_at > rotation.now
                && family.last_used_at > rotation.idle_cutoff;
            if eligible {
                let token = s.tokens.get_mut(&rotation.token_hash)?;
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
            s.token_state(&rotation.token_hash)
        }))
    }

    async fn token_state(&self, token_hash: &str) -> Result<Option<TokenState>, Error> {
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
                s.events.push(event.clone());
            }
            revoked
        }))
    }

    async fn family(&self, family_id: &str) -> Result<Option<Family>, Error> {
        Ok(self.with(|s| s.families.get(family_id).cloned()))
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
        self.with(|s| s.events.push(event.clone()));
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
                .filter(|e| {
                    subject_user_id.is_none() || e.subject_user_id.as_deref() == subject_user_id
                })
                .take(limit as usize)
                .cloned()
                .collect()
        }))
    }
}
