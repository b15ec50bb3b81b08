//! Checks that run both natively (`cargo test`) and inside workerd (the `selftest` build, behind
//! `/__selftest/*`): the storage contract suite and the PBKDF2 cross-check.
//!
//! Failures are returned, not panicked: a panic in wasm aborts the isolate and would hide which
//! case failed.

use serde_json::{json, Value};

use crate::encoding::hex;
use crate::password::KNOWN_ANSWERS;
use crate::platform::{Pbkdf2, RustPbkdf2};

/// Compares `hasher` with the RFC 7914 known answers and with the Rust implementation on extra
/// inputs (including the 100,000-iteration production setting). Returns `(all ok, details)`.
pub async fn pbkdf2_cross_check(hasher: &impl Pbkdf2) -> (bool, Vec<Value>) {
    let mut cases = Vec::new();
    let mut all_ok = true;
    for (password, salt, iterations, want) in KNOWN_ANSWERS {
        let got = hasher
            .derive(password.as_bytes(), salt.as_bytes(), *iterations)
            .await;
        let got = got.map(|g| hex(&g)).unwrap_or_else(|e| e.to_string());
        let ok = got == *want;
        all_ok &= ok;
        cases.push(json!({ "case": format!("rfc7914 {password}/{salt}/{iterations}"), "ok": ok }));
    }
    let extra: [(&str, &[u8], u32); 3] = [
        ("correct horse battery staple", b"0123456789abcdef", 100_000),
        ("pässwörd ✓ unicode", b"gatehouse-salt-16", 1_000),
        ("", b"empty-password!!", 10),
    ];
    for (password, salt, iterations) in extra {
        let a = hasher.derive(password.as_bytes(), salt, iterations).await;
        let b = RustPbkdf2
            .derive(password.as_bytes(), salt, iterations)
            .await;
        let ok = matches!((&a, &b), (Ok(x), Ok(y)) if x == y);
        all_ok &= ok;
        cases.push(json!({ "case": format!("matches rust, {iterations} iterations"), "ok": ok }));
    }
    (all_ok, cases)
}

/// The storage contract suite.
pub mod contract {
    use self::futures_join::join_all;

    use crate::app::new_id;
    use crate::error::Error;
    use crate::platform::SystemRng;
    use crate::refresh;
    use crate::store::{AuditEvent, NewFamily, RevokeReason, Rotation, Store, TokenState, User};

    /// One case's result.
    #[derive(Debug, Clone)]
    pub struct Outcome {
        /// The case.
        pub name: &'static str,
        /// `None` when it passed.
        pub error: Option<String>,
    }

    type CaseResult = Result<(), String>;

    macro_rules! check {
        ($cond:expr, $($msg:tt)+) => {
            if !$cond {
                return Err(format!($($msg)+));
            }
        };
    }

    fn ok<T>(result: Result<T, Error>, what: &str) -> Result<T, String> {
        result.map_err(|e| format!("{what}: {e}"))
    }

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn user(email_hint: &str) -> User {
        let id = new_id(&SystemRng, "usr_");
        User {
            email: format!("{email_hint}.{}@example.test", &id[4..12]),
            id,
            name: Some("Ada Lovelace".into()),
            password_hash: "$pbkdf2-sha256$i=10000,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs".into(),
            roles: vec!["user".into(), "editor".into()],
            disabled: false,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn family(user_id: &str, now: i64) -> (String, NewFamily) {
        let token = refresh::generate(&SystemRng);
        let family = NewFamily {
            id: new_id(&SystemRng, "fam_"),
            user_id: user_id.to_string(),
            created_at: now,
            expires_at: now + 30 * DAY,
            user_agent: Some("contract-test/1.0".into()),
            first_token_hash: refresh::hash(&token),
        };
        (token, family)
    }

    fn rotation(presented: &str, successor: &str, now: i64) -> Rotation {
        Rotation {
            token_hash: refresh::hash(presented),
            successor_hash: refresh::hash(successor),
            successor_sealed: refresh::seal(presented, successor),
            now,
            idle_cutoff: now - 7 * DAY,
        }
    }

    async fn session<S: Store>(store: &S, hint: &str) -> Result<(User, String, NewFamily), String> {
        let u = user(hint);
        let (token, fam) = family(&u.id, NOW);
        ok(store.create_user(&u, Some(&fam), None).await, "create_user")?;
        Ok((u, token, fam))
    }

    async fn rotate<S: Store>(store: &S, r: &Rotation) -> Result<TokenState, String> {
        ok(store.rotate_refresh(r).await, "rotate_refresh")?.ok_or_else(|| "token not found".into())
    }

    async fn ping<S: Store>(store: &S) -> CaseResult {
        ok(store.ping().await, "ping")
    }

    async fn users_round_trip<S: Store>(store: &S) -> CaseResult {
        let mut u = user("round");
        u.name = None;
        ok(store.create_user(&u, None, None).await, "create_user")?;
        let by_email = ok(store.user_by_email(&u.email).await, "user_by_email")?;
        check!(
            by_email.as_ref() == Some(&u),
            "by email: {by_email:?} != {u:?}"
        );
        let by_id = ok(store.user_by_id(&u.id).await, "user_by_id")?;
        check!(by_id.as_ref() == Some(&u), "by id: {by_id:?}");
        let missing = ok(
            store.user_by_email("nobody@example.test").await,
            "user_by_email",
        )?;
        check!(missing.is_none(), "unknown email found");
        Ok(())
    }

    async fn duplicate_email_writes_nothing<S: Store>(store: &S) -> CaseResult {
        let (first, _, _) = session(store, "dup").await?;
        let mut second = user("other");
        second.email = first.email.clone();
        let (_, fam) = family(&second.id, NOW);
        let registered = event_for(&second.id, "registered");
        let result = store
            .create_user(&second, Some(&fam), Some(&registered))
            .await;
        check!(
            matches!(result, Err(Error::EmailTaken)),
            "expected EmailTaken, got {result:?}"
        );
        check!(
            ok(store.user_by_id(&second.id).await, "user_by_id")?.is_none(),
            "second user was written"
        );
        check!(
            ok(store.family(&fam.id).await, "family")?.is_none(),
            "its family was written"
        );
        check!(
            ok(
                store.token_state(&fam.first_token_hash).await,
                "token_state"
            )?
            .is_none(),
            "its token was written"
        );
        let events = ok(
            store.audit_events(Some(&second.id), 10).await,
            "audit_events",
        )?;
        check!(events.is_empty(), "its audit event was written: {events:?}");
        Ok(())
    }

    fn event_for(user_id: &str, kind: &str) -> AuditEvent {
        AuditEvent {
            at: NOW,
            kind: kind.into(),
            actor_user_id: Some(user_id.into()),
            subject_user_id: Some(user_id.into()),
            family_id: None,
            ip: None,
            user_agent: None,
            detail: None,
        }
    }

    async fn events_are_written_with_the_rows<S: Store>(store: &S) -> CaseResult {
        let u = user("atomic");
        let (_, fam) = family(&u.id, NOW);
        let registered = event_for(&u.id, "registered");
        ok(
            store.create_user(&u, Some(&fam), Some(&registered)).await,
            "create_user",
        )?;
        let (_, fam2) = family(&u.id, NOW);
        let login = event_for(&u.id, "login_succeeded");
        ok(
            store.create_family(&fam2, Some(&login)).await,
            "create_family",
        )?;
        let kinds: Vec<_> = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?
            .into_iter()
            .map(|e| e.kind)
            .collect();
        check!(
            kinds == ["login_succeeded", "registered"],
            "kinds: {kinds:?}"
        );
        // A family that cannot be inserted (duplicate id) takes its event with it.
        let failed = event_for(&u.id, "should_not_exist");
        let result = store.create_family(&fam2, Some(&failed)).await;
        check!(result.is_err(), "a duplicate family was accepted");
        let after = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?;
        check!(
            after.len() == 2,
            "an event outlived its failed batch: {after:?}"
        );
        Ok(())
    }

    async fn new_family_has_one_live_token<S: Store>(store: &S) -> CaseResult {
        let (u, token, fam) = session(store, "fam").await?;
        let got = ok(store.family(&fam.id).await, "family")?.ok_or("family missing")?;
        check!(
            got.user_id == u.id && got.created_at == NOW && got.last_used_at == NOW,
            "family row: {got:?}"
        );
        check!(
            got.expires_at == fam.expires_at && got.revoked_at.is_none(),
            "family row: {got:?}"
        );
        check!(
            got.user_agent.as_deref() == Some("contract-test/1.0"),
            "user agent: {got:?}"
        );
        check!(
            ok(store.live_tokens(&fam.id).await, "live_tokens")? == 1,
            "live tokens != 1"
        );
        let state = ok(
            store.token_state(&refresh::hash(&token)).await,
            "token_state",
        )?
        .ok_or("token missing")?;
        check!(
            state.generation == 0 && state.rotated_at.is_none() && state.successor_hash.is_none(),
            "{state:?}"
        );
        // A second login of the same user is a second family.
        let (_, fam2) = family(&u.id, NOW);
        ok(store.create_family(&fam2, None).await, "create_family")?;
        check!(
            ok(store.live_tokens(&fam2.id).await, "live_tokens")? == 1,
            "second family live tokens != 1"
        );
        Ok(())
    }

    async fn rotation_replaces_the_live_token<S: Store>(store: &S) -> CaseResult {
        let (_, token, fam) = session(store, "rot").await?;
        let next = refresh::generate(&SystemRng);
        let later = NOW + 60_000;
        let state = rotate(store, &rotation(&token, &next, later)).await?;
        check!(state.rotated_at == Some(later), "rotated_at: {state:?}");
        check!(
            state.successor_hash.as_deref() == Some(refresh::hash(&next).as_str()),
            "successor not ours"
        );
        let unsealed = refresh::unseal(
            &token,
            state.successor_sealed.as_deref().unwrap_or(""),
            &refresh::hash(&next),
        );
        check!(
            unsealed.as_deref() == Some(next.as_str()),
            "sealed successor does not unseal"
        );
        check!(
            state.family.last_used_at == later,
            "family not touched: {:?}",
            state.family
        );
        let succ = ok(
            store.token_state(&refresh::hash(&next)).await,
            "token_state",
        )?
        .ok_or("successor missing")?;
        check!(
            succ.generation == 1 && succ.rotated_at.is_none() && succ.family.id == fam.id,
            "{succ:?}"
        );
        check!(
            ok(store.live_tokens(&fam.id).await, "live_tokens")? == 1,
            "live tokens != 1"
        );
        // The successor rotates in turn.
        let third = refresh::generate(&SystemRng);
        let state = rotate(store, &rotation(&next, &third, later + 1)).await?;
        check!(
            state.successor_hash.as_deref() == Some(refresh::hash(&third).as_str()),
            "second rotation lost"
        );
        // Only the newest rotated token keeps a sealed successor: an old token plus a database
        // copy must not unseal a chain up to the live token.
        let first = ok(
            store.token_state(&refresh::hash(&token)).await,
            "token_state",
        )?
        .ok_or("first token missing")?;
        check!(
            first.successor_sealed.is_none(),
            "an older seal survived a later rotation"
        );
        check!(
            first.successor_hash.is_some(),
            "the older successor hash was lost"
        );
        check!(
            state.successor_sealed.is_some(),
            "the newest seal is missing"
        );
        Ok(())
    }

    async fn a_rotated_token_does_not_rotate_again<S: Store>(store: &S) -> CaseResult {
        let (_, token, fam) = session(store, "again").await?;
        let (a, b) = (refresh::generate(&SystemRng), refresh::generate(&SystemRng));
        rotate(store, &rotation(&token, &a, NOW + 1)).await?;
        let state = rotate(store, &rotation(&token, &b, NOW + 2)).await?;
        check!(
            state.successor_hash.as_deref() == Some(refresh::hash(&a).as_str()),
            "second caller replaced the successor"
        );
        check!(
            state.rotated_at == Some(NOW + 1),
            "rotated_at changed: {state:?}"
        );
        check!(
            ok(store.token_state(&refresh::hash(&b)).await, "token_state")?.is_none(),
            "loser's successor was stored"
        );
        check!(
            ok(store.live_tokens(&fam.id).await, "live_tokens")? == 1,
            "live tokens != 1"
        );
        Ok(())
    }

    async fn concurrent_rotations_have_one_winner<S: Store>(store: &S) -> CaseResult {
        let (_, token, fam) = session(store, "race").await?;
        let successors: Vec<String> = (0..20).map(|_| refresh::generate(&SystemRng)).collect();
        let rotations: Vec<Rotation> = successors
            .iter()
            .map(|s| rotation(&token, s, NOW + 5))
            .collect();
        let results = join_all(rotations.iter().map(|r| store.rotate_refresh(r))).await;
        let mut winners = std::collections::HashSet::new();
        for result in results {
            let state = ok(result, "rotate_refresh")?.ok_or("token not found")?;
            winners.insert(state.successor_hash.ok_or("not rotated")?);
        }
        check!(
            winners.len() == 1,
            "{} different successors won",
            winners.len()
        );
        let winner = winners.into_iter().next().unwrap_or_default();
        check!(
            successors.iter().any(|s| refresh::hash(s) == winner),
            "the winner is none of the callers"
        );
        check!(
            ok(store.live_tokens(&fam.id).await, "live_tokens")? == 1,
            "live tokens != 1"
        );
        Ok(())
    }

    async fn unknown_tokens_are_none<S: Store>(store: &S) -> CaseResult {
        let ghost = refresh::generate(&SystemRng);
        let next = refresh::generate(&SystemRng);
        let got = ok(
            store.rotate_refresh(&rotation(&ghost, &next, NOW)).await,
            "rotate_refresh",
        )?;
        check!(got.is_none(), "unknown token rotated: {got:?}");
        check!(
            ok(
                store.token_state(&refresh::hash(&next)).await,
                "token_state"
            )?
            .is_none(),
            "successor stored"
        );
        Ok(())
    }

    async fn dead_families_do_not_rotate<S: Store>(store: &S) -> CaseResult {
        // Revoked.
        let (_, token, fam) = session(store, "dead").await?;
        let revoked = ok(
            store
                .revoke_family(&fam.id, RevokeReason::Logout, NOW + 1, None)
                .await,
            "revoke",
        )?;
        check!(revoked, "revoke_family returned false");
        let state = rotate(
            store,
            &rotation(&token, &refresh::generate(&SystemRng), NOW + 2),
        )
        .await?;
        check!(state.rotated_at.is_none(), "revoked family rotated");
        check!(
            state.family.revoked_at == Some(NOW + 1),
            "revoked_at: {:?}",
            state.family
        );
        check!(
            state.family.revoke_reason.as_deref() == Some("logout"),
            "reason: {:?}",
            state.family
        );
        check!(
            ok(store.live_tokens(&fam.id).await, "live_tokens")? == 1,
            "live tokens changed"
        );
        // Past its absolute lifetime.
        let (_, token, fam) = session(store, "old").await?;
        let state = rotate(
            store,
            &rotation(&token, &refresh::generate(&SystemRng), fam.expires_at),
        )
        .await?;
        check!(state.rotated_at.is_none(), "expired family rotated");
        // Idle too long.
        let (_, token, _) = session(store, "idle").await?;
        let mut r = rotation(&token, &refresh::generate(&SystemRng), NOW + 8 * DAY);
        r.idle_cutoff = NOW;
        let state = rotate(store, &r).await?;
        check!(state.rotated_at.is_none(), "idle family rotated");
        Ok(())
    }

    async fn revocation_is_once_and_recorded<S: Store>(store: &S) -> CaseResult {
        let (u, _, fam) = session(store, "rev").await?;
        let event = AuditEvent {
            at: NOW + 3,
            kind: "refresh_token_reused".into(),
            actor_user_id: None,
            subject_user_id: Some(u.id.clone()),
            family_id: Some(fam.id.clone()),
            ip: Some("203.0.113.9".into()),
            user_agent: Some("contract-test/1.0".into()),
            detail: Some(
                serde_json::json!({ "cause": "rotated_token_replayed_after_grace", "generation": 2 }),
            ),
        };
        let first = ok(
            store
                .revoke_family(&fam.id, RevokeReason::Reuse, NOW + 3, Some(&event))
                .await,
            "revoke",
        )?;
        let mut late = event.clone();
        late.kind = "logout".into();
        let second = ok(
            store
                .revoke_family(&fam.id, RevokeReason::Logout, NOW + 4, Some(&late))
                .await,
            "revoke",
        )?;
        check!(first && !second, "first {first}, second {second}");
        let got = ok(store.family(&fam.id).await, "family")?.ok_or("family missing")?;
        check!(
            got.revoke_reason.as_deref() == Some("reuse") && got.revoked_at == Some(NOW + 3),
            "{got:?}"
        );
        let events = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?;
        check!(
            events.len() == 1 && events[0] == event,
            "events: {events:?}"
        );
        Ok(())
    }

    async fn password_change_revokes_other_families<S: Store>(store: &S) -> CaseResult {
        let (u, _, keep) = session(store, "pw").await?;
        let (_, other) = family(&u.id, NOW);
        ok(store.create_family(&other, None).await, "create_family")?;
        let revoked = ok(
            store
                .change_password(&u.id, "$new-hash", Some(&keep.id), NOW + 9)
                .await,
            "change_password",
        )?;
        check!(revoked == 1, "revoked {revoked}");
        let got = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user missing")?;
        check!(
            got.password_hash == "$new-hash" && got.updated_at == NOW + 9,
            "hash not changed"
        );
        let kept = ok(store.family(&keep.id).await, "family")?.ok_or("family missing")?;
        check!(kept.revoked_at.is_none(), "kept family revoked");
        let gone = ok(store.family(&other.id).await, "family")?.ok_or("family missing")?;
        check!(
            gone.revoke_reason.as_deref() == Some("password_change"),
            "{gone:?}"
        );
        let revoked = ok(
            store.change_password(&u.id, "$newer", None, NOW + 10).await,
            "change_password",
        )?;
        check!(revoked == 1, "without keep: revoked {revoked}");
        Ok(())
    }

    async fn hash_upgrade_keeps_sessions<S: Store>(store: &S) -> CaseResult {
        let (u, _, fam) = session(store, "up").await?;
        ok(
            store
                .upgrade_password_hash(&u.id, "$upgraded", NOW + 1)
                .await,
            "upgrade",
        )?;
        let got = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user missing")?;
        check!(got.password_hash == "$upgraded", "hash not upgraded");
        let fam = ok(store.family(&fam.id).await, "family")?.ok_or("family missing")?;
        check!(fam.revoked_at.is_none(), "upgrade revoked a family");
        Ok(())
    }

    async fn audit_events_newest_first<S: Store>(store: &S) -> CaseResult {
        let u = user("audit");
        ok(store.create_user(&u, None, None).await, "create_user")?;
        for (i, kind) in ["login_failed", "login_succeeded", "logout"]
            .iter()
            .enumerate()
        {
            let event = AuditEvent {
                at: NOW + i as i64,
                kind: (*kind).into(),
                actor_user_id: Some(u.id.clone()),
                subject_user_id: Some(u.id.clone()),
                family_id: None,
                ip: None,
                user_agent: None,
                detail: None,
            };
            ok(store.record_event(&event).await, "record_event")?;
        }
        let events = ok(store.audit_events(Some(&u.id), 2).await, "audit_events")?;
        let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
        check!(kinds == ["logout", "login_succeeded"], "kinds: {kinds:?}");
        Ok(())
    }

    /// Runs every case against `store` (which may hold data from earlier runs).
    pub async fn run<S: Store>(store: &S) -> Vec<Outcome> {
        let mut out = Vec::new();
        macro_rules! case {
            ($name:ident) => {
                out.push(Outcome {
                    name: stringify!($name),
                    error: $name(store).await.err(),
                });
            };
        }
        case!(ping);
        case!(users_round_trip);
        case!(duplicate_email_writes_nothing);
        case!(new_family_has_one_live_token);
        case!(rotation_replaces_the_live_token);
        case!(a_rotated_token_does_not_rotate_again);
        case!(concurrent_rotations_have_one_winner);
        case!(unknown_tokens_are_none);
        case!(dead_families_do_not_rotate);
        case!(revocation_is_once_and_recorded);
        case!(password_change_revokes_other_families);
        case!(hash_upgrade_keeps_sessions);
        case!(audit_events_newest_first);
        case!(events_are_written_with_the_rows);
        out
    }

    /// A minimal `join_all` so the worker build needs no `futures` dependency.
    mod futures_join {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::{Context, Poll};

        pub struct JoinAll<F: Future> {
            futures: Vec<Option<Pin<Box<F>>>>,
            outputs: Vec<Option<F::Output>>,
        }

        pub fn join_all<F: Future>(iter: impl IntoIterator<Item = F>) -> JoinAll<F> {
            let futures: Vec<_> = iter.into_iter().map(|f| Some(Box::pin(f))).collect();
            let outputs = futures.iter().map(|_| None).collect();
            JoinAll { futures, outputs }
        }

        impl<F: Future> Future for JoinAll<F> {
            type Output = Vec<F::Output>;
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                // Safe: JoinAll never moves the pinned boxes it owns; it is Unpin.
                let this = self.get_mut();
                let mut pending = false;
                for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
                    if let Some(fut) = slot {
                        match fut.as_mut().poll(cx) {
                            Poll::Ready(v) => {
                                *out = Some(v);
                                *slot = None;
                            }
                            Poll::Pending => pending = true,
                        }
                    }
                }
                if pending {
                    Poll::Pending
                } else {
                    Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
                }
            }
        }

        impl<F: Future> Unpin for JoinAll<F> {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use futures::executor::block_on;

    #[test]
    fn contract_suite_passes_on_the_memory_store() {
        let store = MemoryStore::new();
        let outcomes = block_on(contract::run(&store));
        assert!(outcomes.len() >= 14);
        let failed: Vec<_> = outcomes.iter().filter(|o| o.error.is_some()).collect();
        assert!(failed.is_empty(), "failed: {failed:#?}");
        // Run twice on the same store: cases must not depend on an empty database (D1 keeps data).
        let again = block_on(contract::run(&store));
        assert!(again.iter().all(|o| o.error.is_none()), "{again:#?}");
    }

    #[test]
    fn pbkdf2_cross_check_passes_natively() {
        let (ok, cases) = block_on(pbkdf2_cross_check(&RustPbkdf2));
        assert!(ok, "{cases:?}");
        assert_eq!(cases.len(), KNOWN_ANSWERS.len() + 3);
    }
}
