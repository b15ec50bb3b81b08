//! The storage contract suite: every [`Store`] implementation is held to it. It sits beside
//! `store` rather than in it because it makes its tokens with `refresh`, which reads the store's
//! records.
//!
//! It runs natively against the in-memory store (`cargo test`) and inside workerd against real
//! D1 (the `selftest` build's `/__selftest/contract`).
//!
//! Failures are returned, not panicked: a panic in wasm aborts the isolate and would hide which
//! case failed.

use futures_util::future::join_all;

use crate::domain::refresh;
use crate::domain::store::{
    ApiKey, AuditEvent, AuditQuery, Challenge, ConsoleVia, Counter, KeyHash, LoginLookup,
    NewFamily, Passkey, PasskeyUse, PasswordPhc, PruneCutoffs, RateHit, RecoveryCodeHash,
    RevokeReason, Rotation, RotationLimit, Store, TokenState, TotpConfirmation, User, UserQuery,
};
use crate::primitives::encoding::new_id;
use crate::primitives::error::Error;
use crate::primitives::platform::SystemRng;

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
        password_hash: PasswordPhc::from_stored("$pbkdf2-sha256$i=10000,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs".into()),
        roles: vec!["user".into(), "editor".into()],
        disabled: false,
        created_at: NOW,
        updated_at: NOW,
        totp: false,
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
        console: None,
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
        family: None,
        limit: None,
    }
}

async fn session<S: Store>(store: &S, hint: &str) -> Result<(User, String, NewFamily), String> {
    let u = user(hint);
    let (token, fam) = family(&u.id, NOW);
    ok(store.create_user(&u, Some(&fam), None).await, "create_user")?;
    Ok((u, token, fam))
}

async fn rotate<S: Store>(store: &S, r: &Rotation) -> Result<TokenState, String> {
    ok(store.rotate_refresh(r).await, "rotate_refresh")?
        .state
        .ok_or_else(|| "token not found".into())
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

async fn console_sessions_round_trip<S: Store>(store: &S) -> CaseResult {
    let u = user("console");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    for via in [
        ConsoleVia::Password,
        ConsoleVia::ApiKey("key_console".into()),
    ] {
        let (_, mut fam) = family(&u.id, NOW);
        fam.console = Some(via.clone());
        ok(store.create_family(&fam, None).await, "create_family")?;
        let got = ok(store.family(&fam.id).await, "family")?;
        check!(
            got.as_ref().and_then(|f| f.console.clone()) == Some(via.clone()),
            "family: {got:?}"
        );
        let state = ok(
            store.token_state(&fam.first_token_hash).await,
            "token_state",
        )?;
        check!(
            state.as_ref().and_then(|s| s.family.console.clone()) == Some(via.clone()),
            "token_state: {state:?}"
        );
    }
    let (_, plain) = family(&u.id, NOW);
    ok(store.create_family(&plain, None).await, "create_family")?;
    let list = ok(store.user_families(&u.id).await, "user_families")?;
    let consoles = list.iter().filter(|f| f.console.is_some()).count();
    check!(list.len() == 3 && consoles == 2, "user_families: {list:?}");
    Ok(())
}

async fn rotation_replaces_the_live_token<S: Store>(store: &S) -> CaseResult {
    let (_, token, fam) = session(store, "rot").await?;
    let next = refresh::generate(&SystemRng);
    let later = NOW + 60_000;
    let state = rotate(store, &rotation(&token, &next, later)).await?;
    check!(state.rotated_at == Some(later), "rotated_at: {state:?}");
    check!(
        state.successor_hash == Some(refresh::hash(&next)),
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
        state.successor_hash == Some(refresh::hash(&third)),
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
        state.successor_hash == Some(refresh::hash(&a)),
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
        let state = ok(result, "rotate_refresh")?
            .state
            .ok_or("token not found")?;
        winners.insert(state.successor_hash.ok_or("not rotated")?);
    }
    check!(
        winners.len() == 1,
        "{} different successors won",
        winners.len()
    );
    let winner = winners.into_iter().next().ok_or("no successor won")?;
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

/// One round trip tells the caller everything: the state it won, and the family's user.
async fn a_rotation_reads_the_user_with_it<S: Store>(store: &S) -> CaseResult {
    let (u, token, fam) = session(store, "rotuser").await?;
    let next = refresh::generate(&SystemRng);
    let got = ok(
        store
            .rotate_refresh(&rotation(&token, &next, NOW + 1))
            .await,
        "rotate_refresh",
    )?;
    let state = got.state.ok_or("token not found")?;
    check!(
        state.successor_hash == Some(refresh::hash(&next)) && state.family.id == fam.id,
        "not won: {state:?}"
    );
    check!(got.user.as_ref() == Some(&u), "user: {:?}", got.user);
    check!(got.counted.is_none(), "counted without a limit");
    // A disabled user is read as disabled, in the same transaction.
    ok(
        store
            .set_disabled(&u.id, true, NOW + 2, &event_for(&u.id, "user_disabled"))
            .await,
        "set_disabled",
    )?;
    let after = refresh::generate(&SystemRng);
    let got = ok(
        store
            .rotate_refresh(&rotation(&next, &after, NOW + 3))
            .await,
        "rotate_refresh",
    )?;
    check!(
        got.user.is_some_and(|user| user.disabled),
        "the disabled user was not read"
    );
    Ok(())
}

/// A rotation bound to a family (a cookie refresh's CSRF token) changes nothing for a token of
/// another family: no rotation, no count.
async fn a_rotation_bound_to_another_family_changes_nothing<S: Store>(store: &S) -> CaseResult {
    let (_, token, fam) = session(store, "rotfam").await?;
    let (_, _, other) = session(store, "rotfam2").await?;
    let limit = RotationLimit {
        window_ms: 60_000,
        max: 5,
    };
    let next = refresh::generate(&SystemRng);
    let mut r = rotation(&token, &next, NOW + 1);
    r.family = Some(other.id.clone());
    r.limit = Some(limit);
    let got = ok(store.rotate_refresh(&r).await, "rotate_refresh")?;
    let state = got.state.ok_or("token not found")?;
    check!(
        state.family.id == fam.id && state.rotated_at.is_none() && state.successor_hash.is_none(),
        "rotated for another family: {state:?}"
    );
    check!(got.counted.is_none(), "counted: {:?}", got.counted);
    check!(
        ok(
            store.token_state(&refresh::hash(&next)).await,
            "token_state"
        )?
        .is_none(),
        "successor stored"
    );
    // Bound to its own family, it rotates, and is the first count.
    r.family = Some(fam.id.clone());
    let got = ok(store.rotate_refresh(&r).await, "rotate_refresh")?;
    check!(
        got.state.and_then(|s| s.successor_hash) == Some(refresh::hash(&next)),
        "not rotated in its own family"
    );
    check!(
        got.counted.map(|hit| hit.count) == Some(1),
        "count: {:?}",
        got.counted
    );
    Ok(())
}

/// With a limit, every attempt on a known token counts; past the limit nothing rotates, in the
/// same transaction; a new window starts the count again.
async fn a_rotation_counts_itself_and_stops_past_the_limit<S: Store>(store: &S) -> CaseResult {
    let (_, mut token, _) = session(store, "rotlimit").await?;
    let limit = RotationLimit {
        window_ms: 60_000,
        max: 2,
    };
    let t = NOW - NOW.rem_euclid(60_000) + 60_000;
    let limited = |presented: &str, successor: &str, now: i64| {
        let mut r = rotation(presented, successor, now);
        r.limit = Some(limit);
        r
    };
    for n in 1..=2 {
        let next = refresh::generate(&SystemRng);
        let got = ok(
            store.rotate_refresh(&limited(&token, &next, t + n)).await,
            "rotate_refresh",
        )?;
        check!(
            got.counted
                == Some(RateHit {
                    count: n,
                    window_start: t
                }),
            "count {n}: {:?}",
            got.counted
        );
        check!(
            got.state.and_then(|s| s.successor_hash) == Some(refresh::hash(&next)),
            "rotation {n} within the limit did not win"
        );
        token = next;
    }
    let refused = refresh::generate(&SystemRng);
    let got = ok(
        store
            .rotate_refresh(&limited(&token, &refused, t + 3))
            .await,
        "rotate_refresh",
    )?;
    check!(
        got.counted.map(|hit| hit.count) == Some(3),
        "third count: {:?}",
        got.counted
    );
    let state = got.state.ok_or("token not found")?;
    check!(
        state.rotated_at.is_none(),
        "rotated past the limit: {state:?}"
    );
    check!(
        ok(
            store.token_state(&refresh::hash(&refused)).await,
            "token_state"
        )?
        .is_none(),
        "successor stored past the limit"
    );
    // The next window.
    let next = refresh::generate(&SystemRng);
    let got = ok(
        store
            .rotate_refresh(&limited(&token, &next, t + 60_000))
            .await,
        "rotate_refresh",
    )?;
    check!(
        got.counted
            == Some(RateHit {
                count: 1,
                window_start: t + 60_000
            }),
        "new window: {:?}",
        got.counted
    );
    check!(
        got.state.and_then(|s| s.successor_hash) == Some(refresh::hash(&next)),
        "no rotation in the new window"
    );
    Ok(())
}

/// A login's three counters under fresh keys, with these limits.
fn login_counters(limits: [i64; 3]) -> [Counter; 3] {
    let tag = new_id(&SystemRng, "");
    let [ip, account, total] = limits;
    [
        ("login_ip", ip),
        ("login_account", account),
        ("login_account_total", total),
    ]
    .map(|(bucket, limit)| Counter {
        key: format!("{bucket}:{tag}"),
        limit,
    })
}

/// A sign-in's counters are counted in order, each only while those before it are within their
/// limits, and its user is read in the same round trip.
async fn a_login_lookup_counts_in_order_and_reads_the_user<S: Store>(store: &S) -> CaseResult {
    let u = user("lookup");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    let counters = login_counters([2, 5, 5]);
    let window_ms = 60_000;
    let t = NOW - NOW.rem_euclid(window_ms) + window_ms;
    fn lookup<'a>(counters: &'a [Counter], now: i64, email: Option<&'a str>) -> LoginLookup<'a> {
        LoginLookup {
            counters,
            window_ms: 60_000,
            now,
            email,
        }
    }
    let email = u.email.as_str();
    let hit = |count: i64, window_start: i64| {
        Some(RateHit {
            count,
            window_start,
        })
    };
    for n in 1..=2 {
        let read = ok(
            store
                .login_lookup(&lookup(&counters, t + n, Some(email)))
                .await,
            "login_lookup",
        )?;
        check!(
            read.hits == vec![hit(n, t); 3],
            "attempt {n}: {:?}",
            read.hits
        );
        check!(read.user.as_ref() == Some(&u), "user: {:?}", read.user);
    }
    // The first counter goes over: the others are not counted.
    let read = ok(
        store.login_lookup(&lookup(&counters, t + 3, None)).await,
        "login_lookup",
    )?;
    check!(
        read.hits == vec![hit(3, t), None, None],
        "over the first: {:?}",
        read.hits
    );
    check!(read.user.is_none(), "read a user without an email");
    let read = ok(
        store
            .login_lookup(&lookup(&counters, t + 4, Some("nobody@example.com")))
            .await,
        "login_lookup",
    )?;
    check!(
        read.hits == vec![hit(4, t), None, None] && read.user.is_none(),
        "still over: {read:?}"
    );
    // The next window counts afresh, every counter again.
    let read = ok(
        store
            .login_lookup(&lookup(&counters, t + window_ms, None))
            .await,
        "login_lookup",
    )?;
    check!(
        read.hits == vec![hit(1, t + window_ms); 3],
        "next window: {:?}",
        read.hits
    );
    // A later counter over its limit stops only those after it; its old window's count is
    // restarted by its own upsert before the next counter reads it.
    let middle = login_counters([5, 1, 5]);
    for (n, want) in [
        (1, vec![hit(1, t), hit(1, t), hit(1, t)]),
        (2, vec![hit(2, t), hit(2, t), None]),
        (3, vec![hit(3, t), hit(3, t), None]),
    ] {
        let read = ok(
            store.login_lookup(&lookup(&middle, t + n, None)).await,
            "login_lookup",
        )?;
        check!(read.hits == want, "middle, attempt {n}: {:?}", read.hits);
    }
    let read = ok(
        store
            .login_lookup(&lookup(&middle, t + window_ms, None))
            .await,
        "login_lookup",
    )?;
    check!(
        read.hits == vec![hit(1, t + window_ms); 3],
        "middle, next window: {:?}",
        read.hits
    );
    // No counters: the read alone.
    let none = LoginLookup {
        counters: &[],
        window_ms,
        now: t,
        email: Some(email),
    };
    let read = ok(store.login_lookup(&none).await, "login_lookup")?;
    check!(
        read.hits.is_empty() && read.user.as_ref() == Some(&u),
        "no counters: {read:?}"
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
    check!(
        got.state.is_none() && got.user.is_none() && got.counted.is_none(),
        "unknown token rotated: {got:?}"
    );
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
    let mut changed = event_for(&u.id, "password_changed");
    changed.at = NOW + 9;
    changed.family_id = Some(keep.id.clone());
    changed.detail = Some(serde_json::json!({ "by": "self" }));
    let revoked = ok(
        store
            .change_password(&u.id, &phc("$new-hash"), Some(&keep.id), NOW + 9, &changed)
            .await,
        "change_password",
    )?;
    check!(revoked == 1, "revoked {revoked}");
    // The event is written with the change, carrying the count.
    let events = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?;
    changed.detail = Some(serde_json::json!({ "by": "self", "revoked_sessions": 1 }));
    check!(
        events.first() == Some(&changed),
        "event: {:?}",
        events.first()
    );
    let got = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user missing")?;
    check!(
        got.password_hash == phc("$new-hash") && got.updated_at == NOW + 9,
        "hash not changed"
    );
    let kept = ok(store.family(&keep.id).await, "family")?.ok_or("family missing")?;
    check!(kept.revoked_at.is_none(), "kept family revoked");
    let gone = ok(store.family(&other.id).await, "family")?.ok_or("family missing")?;
    check!(
        gone.revoke_reason.as_deref() == Some("password_change"),
        "{gone:?}"
    );
    let mut again = event_for(&u.id, "password_changed");
    again.at = NOW + 10;
    let revoked = ok(
        store
            .change_password(&u.id, &phc("$newer"), None, NOW + 10, &again)
            .await,
        "change_password",
    )?;
    check!(revoked == 1, "without keep: revoked {revoked}");
    let events = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?;
    again.detail = Some(serde_json::json!({ "revoked_sessions": 1 }));
    check!(
        events.first() == Some(&again),
        "event: {:?}",
        events.first()
    );
    // No such user: nothing changes and no event is written.
    let ghost = event_for("usr_pw_ghost", "password_changed");
    let revoked = ok(
        store
            .change_password("usr_pw_ghost", &phc("$x"), None, NOW + 11, &ghost)
            .await,
        "change_password",
    )?;
    let events = ok(
        store.audit_events(Some("usr_pw_ghost"), 10).await,
        "audit_events",
    )?;
    check!(
        revoked == 0 && events.is_empty(),
        "unknown user: revoked {revoked}, events {events:?}"
    );
    Ok(())
}

async fn hash_upgrade_keeps_sessions<S: Store>(store: &S) -> CaseResult {
    let (u, _, fam) = session(store, "up").await?;
    ok(
        store
            .upgrade_password_hash(&u.id, &phc("$upgraded"), NOW + 1)
            .await,
        "upgrade",
    )?;
    let got = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user missing")?;
    check!(got.password_hash == phc("$upgraded"), "hash not upgraded");
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

fn tag() -> String {
    new_id(&SystemRng, "")[..10].to_string()
}

async fn users_list_pages_and_searches<S: Store>(store: &S) -> CaseResult {
    let t = tag();
    let mut ids = Vec::new();
    for (i, name) in ["Grace", "Edsger", "Barbara"].iter().enumerate() {
        let mut u = user(&format!("{t}{i}"));
        u.email = format!("list{i}.{t}@example.test");
        u.name = Some(format!("{name} {t}x"));
        ok(store.create_user(&u, None, None).await, "create_user")?;
        ids.push(u.email);
    }
    let page = |after: Option<String>, search: &str| UserQuery {
        search: Some(search.to_string()),
        after_email: after,
        limit: 2,
    };
    let first = ok(store.list_users(&page(None, &t)).await, "list_users")?;
    let emails: Vec<_> = first.iter().map(|u| u.email.clone()).collect();
    check!(emails == ids[..2], "first page: {emails:?}");
    let second = ok(
        store.list_users(&page(emails.last().cloned(), &t)).await,
        "list_users",
    )?;
    let emails: Vec<_> = second.iter().map(|u| u.email.clone()).collect();
    check!(emails == ids[2..], "second page: {emails:?}");
    let by_name = ok(
        store.list_users(&page(None, &format!("EDSGER {t}"))).await,
        "list_users",
    )?;
    check!(
        by_name.len() == 1 && by_name[0].email == ids[1],
        "by name: {by_name:?}"
    );
    let wildcard = ok(
        store.list_users(&page(None, &format!("%{t}"))).await,
        "list_users",
    )?;
    check!(wildcard.is_empty(), "% is not a wildcard: {wildcard:?}");
    let underscore = ok(
        store.list_users(&page(None, &format!("list_.{t}"))).await,
        "list_users",
    )?;
    check!(underscore.is_empty(), "_ is not a wildcard: {underscore:?}");
    // A long search term (D1 refuses LIKE patterns over 50 bytes) is an ordinary search.
    let long = format!("{t}x {}", "y".repeat(150));
    let none = ok(store.list_users(&page(None, &long)).await, "a long search")?;
    check!(none.is_empty(), "long search: {none:?}");
    let whole_email = ok(store.list_users(&page(None, &ids[0])).await, "list_users")?;
    check!(
        whole_email.len() == 1 && whole_email[0].email == ids[0],
        "whole email: {whole_email:?}"
    );
    Ok(())
}

async fn roles_and_disabling_are_recorded<S: Store>(store: &S) -> CaseResult {
    let (u, token, fam) = session(store, "roles").await?;
    let ev = event_for(&u.id, "role_changed");
    let roles = vec!["admin".to_string()];
    check!(
        ok(
            store.set_roles(&u.id, &roles, NOW + 1, &ev).await,
            "set_roles"
        )?,
        "set_roles found no user"
    );
    let got = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user gone")?;
    check!(
        got.roles == roles && got.updated_at == NOW + 1,
        "roles: {got:?}"
    );
    let missing = ok(
        store
            .set_roles(
                "usr_nobody",
                &roles,
                NOW,
                &event_for("usr_nobody", "role_changed"),
            )
            .await,
        "set_roles",
    )?;
    check!(!missing, "set_roles on an unknown user");
    let revoked = ok(
        store
            .set_disabled(&u.id, true, NOW + 2, &event_for(&u.id, "user_disabled"))
            .await,
        "set_disabled",
    )?;
    check!(revoked == Some(1), "disabling revoked {revoked:?}");
    let state = ok(
        store.token_state(&refresh::hash(&token)).await,
        "token_state",
    )?
    .ok_or("token gone")?;
    check!(
        state.family.revoke_reason.as_deref() == Some("admin"),
        "family: {:?}",
        state.family
    );
    let _ = fam;
    let enabled = ok(
        store
            .set_disabled(&u.id, false, NOW + 3, &event_for(&u.id, "user_enabled"))
            .await,
        "set_disabled",
    )?;
    check!(enabled == Some(0), "enabling: {enabled:?}");
    let got = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user gone")?;
    check!(!got.disabled, "still disabled");
    let none = ok(
        store
            .set_disabled(
                "usr_nobody",
                true,
                NOW,
                &event_for("usr_nobody", "user_disabled"),
            )
            .await,
        "set_disabled",
    )?;
    check!(none.is_none(), "unknown user: {none:?}");
    let kinds: Vec<String> = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    check!(
        kinds == ["user_enabled", "user_disabled", "role_changed"],
        "events: {kinds:?}"
    );
    let ghost = ok(
        store.audit_events(Some("usr_nobody"), 10).await,
        "audit_events",
    )?;
    check!(ghost.is_empty(), "events for an unknown user: {ghost:?}");
    Ok(())
}

async fn user_families_and_revoke_all<S: Store>(store: &S) -> CaseResult {
    let (u, _, first) = session(store, "fams").await?;
    let (_, mut second) = family(&u.id, NOW + 5);
    second.user_agent = None;
    ok(store.create_family(&second, None).await, "create_family")?;
    let list = ok(store.user_families(&u.id).await, "user_families")?;
    let ids: Vec<_> = list.iter().map(|f| f.id.as_str()).collect();
    check!(
        ids == [second.id.as_str(), first.id.as_str()],
        "order: {ids:?}"
    );
    check!(
        list[1].user_agent.as_deref() == Some("contract-test/1.0"),
        "user agent: {:?}",
        list[1]
    );
    let ev = event_for(&u.id, "session_revoked");
    let n = ok(
        store
            .revoke_user_families(&u.id, RevokeReason::Admin, NOW + 9, &ev)
            .await,
        "revoke_user_families",
    )?;
    check!(n == 2, "revoked {n}");
    let n = ok(
        store
            .revoke_user_families(&u.id, RevokeReason::Admin, NOW + 10, &ev)
            .await,
        "revoke_user_families",
    )?;
    check!(n == 0, "revoked again: {n}");
    let events = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?;
    check!(events.len() == 1, "events: {events:?}");
    Ok(())
}

async fn session_liveness_reads_family_and_user<S: Store>(store: &S) -> CaseResult {
    let (u, _, fam) = session(store, "liveness").await?;
    let live = ok(store.session_liveness(&fam.id).await, "session_liveness")?
        .ok_or("a new family has no liveness")?;
    check!(
        live.user_id == u.id
            && live.revoked_at.is_none()
            && live.expires_at == fam.expires_at
            && !live.user_disabled
            && live.user_roles == u.roles,
        "new family: {live:?}"
    );
    check!(live.stands_for(&u.id, NOW), "a new family does not stand");
    check!(
        !live.stands_for(&u.id, fam.expires_at) && !live.stands_for("usr_other", NOW),
        "stands past its end or for another user"
    );
    let roles = vec!["viewer".to_string()];
    ok(
        store
            .set_roles(&u.id, &roles, NOW + 1, &event_for(&u.id, "role_changed"))
            .await,
        "set_roles",
    )?;
    let live =
        ok(store.session_liveness(&fam.id).await, "session_liveness")?.ok_or("family gone")?;
    check!(live.user_roles == roles, "roles not current: {live:?}");
    let (_, second) = family(&u.id, NOW + 2);
    ok(store.create_family(&second, None).await, "create_family")?;
    ok(
        store
            .revoke_family(&fam.id, RevokeReason::Logout, NOW + 3, None)
            .await,
        "revoke_family",
    )?;
    let live =
        ok(store.session_liveness(&fam.id).await, "session_liveness")?.ok_or("family gone")?;
    check!(
        live.revoked_at == Some(NOW + 3) && !live.stands_for(&u.id, NOW + 4),
        "revoked family: {live:?}"
    );
    let other = ok(store.session_liveness(&second.id).await, "session_liveness")?
        .ok_or("second family gone")?;
    check!(
        other.stands_for(&u.id, NOW + 4),
        "the other family ended too"
    );
    ok(
        store
            .set_disabled(&u.id, true, NOW + 5, &event_for(&u.id, "user_disabled"))
            .await,
        "set_disabled",
    )?;
    let other = ok(store.session_liveness(&second.id).await, "session_liveness")?
        .ok_or("second family gone")?;
    check!(
        other.user_disabled && other.revoked_at == Some(NOW + 5),
        "disabled user: {other:?}"
    );
    let none = ok(
        store.session_liveness("fam_nosuchfamily").await,
        "session_liveness",
    )?;
    check!(none.is_none(), "unknown family: {none:?}");
    Ok(())
}

/// A stored password hash standing for a real one.
fn phc(text: &str) -> PasswordPhc {
    PasswordPhc::from_stored(text.into())
}

fn api_key(owner: &str, now: i64) -> ApiKey {
    ApiKey {
        id: new_id(&SystemRng, "key_"),
        key_hash: KeyHash::from_stored(crate::primitives::encoding::hex(
            &crate::primitives::encoding::sha256(new_id(&SystemRng, "").as_bytes()),
        )),
        label: "deploy bot".into(),
        owner_user_id: owner.into(),
        created_by: Some(owner.into()),
        role: "editor".into(),
        scopes: vec!["cms-read".into(), "cms-write".into()],
        created_at: now,
        expires_at: Some(now + DAY),
        last_used_at: None,
        revoked_at: None,
    }
}

async fn api_keys_round_trip<S: Store>(store: &S) -> CaseResult {
    let u = user("keys");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    let k = api_key(&u.id, NOW);
    let mut older = api_key(&u.id, NOW - 1);
    older.expires_at = None;
    older.created_by = None;
    ok(
        store
            .create_api_key(&older, &event_for(&u.id, "api_key_minted"))
            .await,
        "create_api_key",
    )?;
    ok(
        store
            .create_api_key(&k, &event_for(&u.id, "api_key_minted"))
            .await,
        "create_api_key",
    )?;
    let found = ok(store.api_key_by_hash(&k.key_hash).await, "api_key_by_hash")?
        .ok_or("key not found by hash")?;
    check!(found.key == k, "lookup: {found:?}");
    check!(
        found.owner_roles == u.roles && !found.owner_disabled,
        "owner: {found:?}"
    );
    check!(
        ok(
            store
                .api_key_by_hash(&KeyHash::from_stored("00".into()))
                .await,
            "api_key_by_hash"
        )?
        .is_none(),
        "unknown hash found"
    );
    let listed = ok(store.list_api_keys(Some(&u.id)).await, "list_api_keys")?;
    check!(
        listed == vec![k.clone(), older.clone()],
        "listed: {listed:?}"
    );
    check!(
        ok(store.api_key(&older.id).await, "api_key")?.as_ref() == Some(&older),
        "by id"
    );
    check!(
        ok(store.touch_api_key(&k.id, NOW + 10, 60_000).await, "touch")?,
        "first touch"
    );
    check!(
        !ok(
            store.touch_api_key(&k.id, NOW + 59_000, 60_000).await,
            "touch"
        )?,
        "touched twice a minute"
    );
    check!(
        ok(
            store.touch_api_key(&k.id, NOW + 60_010, 60_000).await,
            "touch"
        )?,
        "touch after a minute"
    );
    let got = ok(store.api_key(&k.id).await, "api_key")?.ok_or("gone")?;
    check!(got.last_used_at == Some(NOW + 60_010), "last used: {got:?}");
    let ev = event_for(&u.id, "api_key_revoked");
    check!(
        ok(
            store.revoke_api_key(&k.id, NOW + 70_000, &ev).await,
            "revoke"
        )?,
        "not revoked"
    );
    check!(
        !ok(
            store.revoke_api_key(&k.id, NOW + 80_000, &ev).await,
            "revoke"
        )?,
        "revoked twice"
    );
    let got = ok(store.api_key_by_hash(&k.key_hash).await, "api_key_by_hash")?.ok_or("gone")?;
    check!(
        got.key.revoked_at == Some(NOW + 70_000),
        "revoked at: {got:?}"
    );
    let kinds: Vec<String> = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    check!(
        kinds == ["api_key_revoked", "api_key_minted", "api_key_minted"],
        "events: {kinds:?}"
    );
    ok(
        store
            .set_disabled(&u.id, true, NOW, &event_for(&u.id, "user_disabled"))
            .await,
        "set_disabled",
    )?;
    let got = ok(
        store.api_key_by_hash(&older.key_hash).await,
        "api_key_by_hash",
    )?
    .ok_or("gone")?;
    check!(got.owner_disabled, "owner not disabled: {got:?}");
    // By id, the same join: what a scoped token minted from a key reads.
    let by_id = ok(store.api_key_lookup(&k.id).await, "api_key_lookup")?.ok_or("gone")?;
    check!(
        by_id.key.revoked_at == Some(NOW + 70_000)
            && by_id.owner_disabled
            && by_id.owner_roles == u.roles
            && by_id.key.id == k.id,
        "by id: {by_id:?}"
    );
    check!(
        ok(store.api_key_lookup("key_unknown").await, "api_key_lookup")?.is_none(),
        "unknown id found"
    );
    Ok(())
}

async fn rate_limits_count_per_fixed_window<S: Store>(store: &S) -> CaseResult {
    let key = format!("contract:{}", tag());
    const W: i64 = 60_000;
    let start = NOW - NOW % W;
    for want in 1..=3 {
        let hit = ok(store.hit_rate_limit(&key, W, start + 5 + want).await, "hit")?;
        check!(
            hit.count == want && hit.window_start == start,
            "hit {want}: {hit:?}"
        );
    }
    let hit = ok(store.hit_rate_limit(&key, W, start + W).await, "hit")?;
    check!(
        hit.count == 1 && hit.window_start == start + W,
        "next window: {hit:?}"
    );
    let hits = join_all((0..5).map(|_| store.hit_rate_limit(&key, W, start + W + 1))).await;
    let mut counts = Vec::new();
    for hit in hits {
        counts.push(ok(hit, "concurrent hit")?.count);
    }
    counts.sort_unstable();
    check!(counts == [2, 3, 4, 5, 6], "concurrent counts: {counts:?}");
    let other = ok(
        store
            .hit_rate_limit(&format!("{key}:other"), W, start + W + 2)
            .await,
        "hit",
    )?;
    check!(other.count == 1, "keys are separate: {other:?}");
    Ok(())
}

async fn busy_rate_limits_are_live_and_counted_enough<S: Store>(store: &S) -> CaseResult {
    let key = format!("contract:{}", tag());
    const W: i64 = 60_000;
    let start = NOW - NOW % W;
    for i in 0..7 {
        ok(store.hit_rate_limit(&key, W, start + i).await, "hit")?;
    }
    let ours =
        |busy: Vec<crate::domain::store::RateCounter>| busy.into_iter().find(|c| c.key == key);
    let busy = ok(store.busy_rate_limits(start + 10, 7, 10_000).await, "busy")?;
    let found = ours(busy).ok_or("a counter of 7 hits is not listed at 7")?;
    check!(
        found.count == 7 && found.window_start == start && found.expires_at == start + W,
        "listed as {found:?}"
    );
    let busy = ok(store.busy_rate_limits(start + 10, 8, 10_000).await, "busy")?;
    check!(ours(busy).is_none(), "listed below its minimum");
    let busy = ok(store.busy_rate_limits(start + W, 1, 10_000).await, "busy")?;
    check!(ours(busy).is_none(), "listed after its window ended");
    let top = ok(store.busy_rate_limits(start + 10, 1, 1).await, "busy")?;
    check!(
        top.len() == 1 && top[0].count >= 7,
        "at most one, the most hit: {top:?}"
    );
    Ok(())
}

async fn rate_limit_windows_only_move_forward<S: Store>(store: &S) -> CaseResult {
    let key = format!("contract:{}", tag());
    const W: i64 = 60_000;
    let start = NOW - NOW % W;
    for want in 1..=2 {
        let hit = ok(store.hit_rate_limit(&key, W, start + W + want).await, "hit")?;
        check!(
            hit.count == want && hit.window_start == start + W,
            "hit {want}: {hit:?}"
        );
    }
    // A request from the previous window that arrives late counts against the stored
    // window instead of resetting it.
    let late = ok(
        store.hit_rate_limit(&key, W, start + W - 1).await,
        "late hit",
    )?;
    check!(
        late.count == 3 && late.window_start == start + W,
        "late hit: {late:?}"
    );
    let hit = ok(store.hit_rate_limit(&key, W, start + W + 3).await, "hit")?;
    check!(
        hit.count == 4 && hit.window_start == start + W,
        "after the late hit: {hit:?}"
    );
    let hit = ok(store.hit_rate_limit(&key, W, start + 2 * W).await, "hit")?;
    check!(
        hit.count == 1 && hit.window_start == start + 2 * W,
        "next window: {hit:?}"
    );
    Ok(())
}

async fn audit_queries_filter_and_page<S: Store>(store: &S) -> CaseResult {
    let actor = format!("usr_{}", tag());
    let subject = format!("usr_{}", tag());
    for (i, kind) in [
        "login_failed",
        "role_changed",
        "login_failed",
        "user_disabled",
    ]
    .iter()
    .enumerate()
    {
        let mut ev = event_for(&actor, kind);
        ev.subject_user_id = Some(subject.clone());
        ev.at = NOW + i as i64 * 1000;
        ev.ip = Some("203.0.113.7".into());
        ev.detail = Some(serde_json::json!({ "n": i }));
        ok(store.record_event(&ev).await, "record_event")?;
    }
    let base = AuditQuery {
        actor_user_id: Some(actor.clone()),
        limit: 10,
        ..AuditQuery::default()
    };
    let all = ok(store.query_audit(&base).await, "query_audit")?;
    let kinds: Vec<_> = all.iter().map(|e| e.event.kind.as_str()).collect();
    check!(
        kinds
            == [
                "user_disabled",
                "login_failed",
                "role_changed",
                "login_failed"
            ],
        "all: {kinds:?}"
    );
    check!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "ids not decreasing"
    );
    check!(
        all[0].event.detail == Some(serde_json::json!({ "n": 3 })),
        "detail: {:?}",
        all[0]
    );
    let failed = ok(
        store
            .query_audit(&AuditQuery {
                kind: Some("login_failed".into()),
                ..base.clone()
            })
            .await,
        "query_audit",
    )?;
    check!(failed.len() == 2, "by kind: {failed:?}");
    let page = ok(
        store
            .query_audit(&AuditQuery {
                before_id: Some(all[1].id),
                limit: 1,
                ..base.clone()
            })
            .await,
        "query_audit",
    )?;
    check!(
        page.len() == 1 && page[0].id == all[2].id,
        "paging: {page:?}"
    );
    let window = ok(
        store
            .query_audit(&AuditQuery {
                since: Some(NOW + 1000),
                until: Some(NOW + 3000),
                ..base.clone()
            })
            .await,
        "query_audit",
    )?;
    check!(window.len() == 2, "time window: {window:?}");
    let by_subject = ok(
        store
            .query_audit(&AuditQuery {
                subject_user_id: Some(subject.clone()),
                limit: 10,
                ..AuditQuery::default()
            })
            .await,
        "query_audit",
    )?;
    check!(by_subject.len() == 4, "by subject: {by_subject:?}");
    Ok(())
}

async fn prune_removes_only_what_ended<S: Store>(store: &S) -> CaseResult {
    let t = NOW + 500 * DAY;
    let u = user("prune");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    let make = |created: i64, expires: i64| {
        let (token, mut fam) = family(&u.id, created);
        fam.expires_at = expires;
        (token, fam)
    };
    let live = make(t - DAY, t + 29 * DAY);
    let expired = make(t - 40 * DAY, t - 10 * DAY);
    let revoked_old = make(t - 20 * DAY, t + 10 * DAY);
    let revoked_recent = make(t - 2 * DAY, t + 20 * DAY);
    let idle = make(t - 20 * DAY, t + 10 * DAY);
    let ended_recently = make(t - 2 * DAY, t - DAY);
    for (_, fam) in [
        &live,
        &expired,
        &revoked_old,
        &revoked_recent,
        &idle,
        &ended_recently,
    ] {
        ok(store.create_family(fam, None).await, "create_family")?;
    }
    ok(
        store
            .revoke_family(&revoked_old.1.id, RevokeReason::Logout, t - 8 * DAY, None)
            .await,
        "revoke",
    )?;
    ok(
        store
            .revoke_family(&revoked_recent.1.id, RevokeReason::Logout, t - DAY, None)
            .await,
        "revoke",
    )?;
    // The live family has rotated once: both its tokens stay.
    let next = refresh::generate(&SystemRng);
    rotate(
        store,
        &Rotation {
            idle_cutoff: t - 7 * DAY,
            ..rotation(&live.0, &next, t - 3_600_000)
        },
    )
    .await?;
    let mut old_event = event_for(&u.id, "login_succeeded");
    old_event.at = t - 91 * DAY;
    let mut new_event = event_for(&u.id, "logout");
    new_event.at = t - 89 * DAY;
    ok(store.record_event(&old_event).await, "record_event")?;
    ok(store.record_event(&new_event).await, "record_event")?;
    const W: i64 = 60_000;
    let rl_old = format!("contract-old:{}", tag());
    let rl_now = format!("contract-now:{}", tag());
    ok(store.hit_rate_limit(&rl_old, W, t - 10 * W).await, "hit")?;
    ok(store.hit_rate_limit(&rl_now, W, t).await, "hit")?;
    // API keys (active, revoked, expired; all created 60 days ago) and a disabled user are
    // never the prune's business.
    let active_key = api_key(&u.id, t - 60 * DAY);
    let revoked_key = api_key(&u.id, t - 60 * DAY);
    let mut expired_key = api_key(&u.id, t - 60 * DAY);
    expired_key.expires_at = Some(t - 59 * DAY);
    for k in [&active_key, &revoked_key, &expired_key] {
        ok(
            store
                .create_api_key(k, &event_for(&u.id, "api_key_minted"))
                .await,
            "create_api_key",
        )?;
    }
    ok(
        store
            .revoke_api_key(
                &revoked_key.id,
                t - 59 * DAY,
                &event_for(&u.id, "api_key_revoked"),
            )
            .await,
        "revoke_api_key",
    )?;
    let disabled = user("prune-disabled");
    ok(
        store.create_user(&disabled, None, None).await,
        "create_user",
    )?;
    ok(
        store
            .set_disabled(
                &disabled.id,
                true,
                t - 60 * DAY,
                &event_for(&disabled.id, "user_disabled"),
            )
            .await,
        "set_disabled",
    )?;

    let stale = challenge("login", None, t - 1);
    let fresh = challenge("login", None, t + 300_000);
    ok(store.create_challenge(&stale).await, "create_challenge")?;
    ok(store.create_challenge(&fresh).await, "create_challenge")?;
    let counts = ok(
        store
            .prune(&PruneCutoffs {
                now: t,
                families_ended_before: t - 7 * DAY,
                idle_ms: 7 * DAY,
                audit_before: t - 90 * DAY,
            })
            .await,
        "prune",
    )?;
    check!(
        counts.families >= 3 && counts.tokens >= 3,
        "counts: {counts:?}"
    );
    check!(
        counts.audit_events >= 1 && counts.rate_limits >= 1 && counts.challenges >= 1,
        "counts: {counts:?}"
    );
    check!(
        ok(
            store.take_challenge(&stale.challenge_hash, "login").await,
            "take"
        )?
        .is_none(),
        "the expired challenge was kept"
    );
    check!(
        ok(
            store.take_challenge(&fresh.challenge_hash, "login").await,
            "take"
        )?
        .is_some(),
        "the open challenge was pruned"
    );
    for (what, (token, fam), stays) in [
        ("live", &live, true),
        ("expired", &expired, false),
        ("revoked 8 days ago", &revoked_old, false),
        ("revoked a day ago", &revoked_recent, true),
        ("idle for 20 days", &idle, false),
        ("expired a day ago", &ended_recently, true),
    ] {
        let family = ok(store.family(&fam.id).await, "family")?;
        let state = ok(
            store.token_state(&refresh::hash(token)).await,
            "token_state",
        )?;
        check!(
            family.is_some() == stays,
            "{what}: family kept = {}",
            family.is_some()
        );
        check!(
            state.is_some() == stays,
            "{what}: token kept = {}",
            state.is_some()
        );
    }
    check!(
        ok(
            store.token_state(&refresh::hash(&next)).await,
            "token_state"
        )?
        .is_some(),
        "the live family's newest token was pruned"
    );
    check!(
        ok(store.live_tokens(&live.1.id).await, "live_tokens")? == 1,
        "live tokens"
    );
    let kinds: Vec<String> = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    check!(kinds == ["logout"], "events left: {kinds:?}");
    let again = ok(store.hit_rate_limit(&rl_now, W, t + 1).await, "hit")?;
    check!(
        again.count == 2,
        "the current counter was pruned: {again:?}"
    );
    check!(
        ok(store.user_by_id(&u.id).await, "user_by_id")?.is_some(),
        "the user was pruned"
    );
    check!(
        ok(store.user_by_id(&disabled.id).await, "user_by_id")?.is_some_and(|d| d.disabled),
        "the disabled user was pruned"
    );
    for (what, k) in [
        ("active", &active_key),
        ("revoked", &revoked_key),
        ("expired", &expired_key),
    ] {
        check!(
            ok(store.api_key(&k.id).await, "api_key")?.is_some(),
            "the {what} API key was pruned"
        );
    }
    Ok(())
}

fn passkey(user_id: &str, created_at: i64) -> Passkey {
    Passkey {
        id: new_id(&SystemRng, "pk_"),
        user_id: user_id.to_string(),
        credential_id: format!("cred-{}", tag()),
        public_key: "pQECAyYgASFYIA".into(),
        algorithm: -7,
        sign_count: 0,
        name: "Laptop".into(),
        aaguid: "00".repeat(16),
        backup_eligible: true,
        backed_up: false,
        transports: vec!["internal".into(), "hybrid".into()],
        created_at,
        last_used_at: None,
        flagged_at: None,
    }
}

fn challenge(ceremony: &str, user_id: Option<&str>, expires_at: i64) -> Challenge {
    Challenge {
        challenge_hash: format!("{}{}", tag(), tag()),
        ceremony: ceremony.into(),
        user_id: user_id.map(str::to_string),
        expires_at,
    }
}

async fn challenges_are_used_once<S: Store>(store: &S) -> CaseResult {
    let u = user("challenge");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    let reg = challenge("register", Some(&u.id), NOW + 300_000);
    ok(store.create_challenge(&reg).await, "create_challenge")?;
    // Another ceremony's challenge is not used up by this one.
    check!(
        ok(
            store.take_challenge(&reg.challenge_hash, "login").await,
            "take"
        )?
        .is_none(),
        "taken by another ceremony"
    );
    let taken = ok(
        store.take_challenge(&reg.challenge_hash, "register").await,
        "take",
    )?;
    check!(taken.as_ref() == Some(&reg), "taken: {taken:?}");
    check!(
        ok(
            store.take_challenge(&reg.challenge_hash, "register").await,
            "take"
        )?
        .is_none(),
        "taken twice"
    );
    // Concurrent takes: one winner.
    let login = challenge("login", None, NOW + 300_000);
    ok(store.create_challenge(&login).await, "create_challenge")?;
    let results =
        join_all((0..8).map(|_| store.take_challenge(&login.challenge_hash, "login"))).await;
    let mut winners = 0;
    for r in results {
        if ok(r, "take")?.is_some() {
            winners += 1;
        }
    }
    check!(winners == 1, "{winners} winners");
    // An expired challenge is still taken (once): the caller tells it apart by its expiry.
    let old = challenge("login", None, NOW - 1);
    ok(store.create_challenge(&old).await, "create_challenge")?;
    let taken = ok(
        store.take_challenge(&old.challenge_hash, "login").await,
        "take",
    )?;
    check!(
        taken.is_some_and(|c| c.expires_at == NOW - 1),
        "expired challenge"
    );
    Ok(())
}

async fn passkeys_round_trip<S: Store>(store: &S) -> CaseResult {
    let u = user("passkeys");
    let other = user("passkeys-other");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    ok(store.create_user(&other, None, None).await, "create_user")?;
    let older = passkey(&u.id, NOW - 10);
    let newer = passkey(&u.id, NOW);
    for p in [&older, &newer] {
        check!(
            ok(
                store
                    .create_passkey(p, &event_for(&u.id, "passkey_registered"))
                    .await,
                "create_passkey"
            )?,
            "not created"
        );
    }
    // The same credential for another user: refused, nothing written.
    let dup = Passkey {
        id: new_id(&SystemRng, "pk_"),
        user_id: other.id.clone(),
        ..older.clone()
    };
    check!(
        !ok(
            store
                .create_passkey(&dup, &event_for(&other.id, "passkey_registered"))
                .await,
            "create_passkey"
        )?,
        "duplicate credential stored"
    );
    check!(
        ok(store.user_passkeys(&other.id).await, "user_passkeys")?.is_empty()
            && ok(store.audit_events(Some(&other.id), 5).await, "audit")?.is_empty(),
        "the refused duplicate wrote something"
    );
    let listed = ok(store.user_passkeys(&u.id).await, "user_passkeys")?;
    check!(
        listed == vec![newer.clone(), older.clone()],
        "listed: {listed:?}"
    );
    let found = ok(
        store.passkey_by_credential(&older.credential_id).await,
        "passkey_by_credential",
    )?;
    check!(found.as_ref() == Some(&older), "found: {found:?}");
    check!(
        ok(store.passkey_by_credential("nope").await, "by credential")?.is_none(),
        "unknown credential found"
    );

    // The counter moves only from the value read (compare-and-set).
    let used = PasskeyUse {
        id: older.id.clone(),
        old_count: 0,
        new_count: 5,
        backed_up: true,
        now: NOW + 1,
    };
    check!(ok(store.use_passkey(&used).await, "use")?, "first use");
    check!(
        !ok(store.use_passkey(&used).await, "use")?,
        "used twice from 0"
    );
    let got = ok(
        store.passkey_by_credential(&older.credential_id).await,
        "get",
    )?
    .ok_or("gone")?;
    check!(
        got.sign_count == 5 && got.backed_up && got.last_used_at == Some(NOW + 1),
        "after use: {got:?}"
    );

    // Flagged once, with its event; a flagged passkey is not used.
    let ev = event_for(&u.id, "passkey_counter_regression");
    check!(
        ok(store.flag_passkey(&older.id, NOW + 2, &ev).await, "flag")?,
        "not flagged"
    );
    check!(
        !ok(store.flag_passkey(&older.id, NOW + 3, &ev).await, "flag")?,
        "flagged twice"
    );
    let after_flag = PasskeyUse {
        old_count: 5,
        new_count: 6,
        ..used.clone()
    };
    check!(
        !ok(store.use_passkey(&after_flag).await, "use")?,
        "flagged passkey used"
    );
    let got = ok(
        store.passkey_by_credential(&older.credential_id).await,
        "get",
    )?
    .ok_or("gone")?;
    check!(got.flagged_at == Some(NOW + 2), "flagged at: {got:?}");

    // Deleted only by its owner's id, once.
    let del = event_for(&u.id, "passkey_deleted");
    check!(
        !ok(
            store.delete_passkey(&other.id, &newer.id, &del).await,
            "delete"
        )?,
        "deleted as another user"
    );
    check!(
        ok(store.delete_passkey(&u.id, &newer.id, &del).await, "delete")?,
        "not deleted"
    );
    check!(
        !ok(store.delete_passkey(&u.id, &newer.id, &del).await, "delete")?,
        "deleted twice"
    );
    let kinds: Vec<String> = ok(store.audit_events(Some(&u.id), 10).await, "audit_events")?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    check!(
        kinds
            == [
                "passkey_deleted",
                "passkey_counter_regression",
                "passkey_registered",
                "passkey_registered"
            ],
        "events: {kinds:?}"
    );
    let left = ok(store.user_passkeys(&u.id).await, "user_passkeys")?;
    check!(left.len() == 1 && left[0].id == older.id, "left: {left:?}");
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
    case!(console_sessions_round_trip);
    case!(rotation_replaces_the_live_token);
    case!(a_rotated_token_does_not_rotate_again);
    case!(concurrent_rotations_have_one_winner);
    case!(unknown_tokens_are_none);
    case!(a_rotation_reads_the_user_with_it);
    case!(a_rotation_bound_to_another_family_changes_nothing);
    case!(a_rotation_counts_itself_and_stops_past_the_limit);
    case!(a_login_lookup_counts_in_order_and_reads_the_user);
    case!(dead_families_do_not_rotate);
    case!(revocation_is_once_and_recorded);
    case!(password_change_revokes_other_families);
    case!(hash_upgrade_keeps_sessions);
    case!(audit_events_newest_first);
    case!(events_are_written_with_the_rows);
    case!(users_list_pages_and_searches);
    case!(roles_and_disabling_are_recorded);
    case!(user_families_and_revoke_all);
    case!(session_liveness_reads_family_and_user);
    case!(api_keys_round_trip);
    case!(rate_limits_count_per_fixed_window);
    case!(busy_rate_limits_are_live_and_counted_enough);
    case!(rate_limit_windows_only_move_forward);
    case!(audit_queries_filter_and_page);
    case!(totp_enrollment_is_pending_until_confirmed);
    case!(totp_steps_and_recovery_codes_are_used_once);
    case!(challenges_are_used_once);
    case!(passkeys_round_trip);
    // Last: it deletes what other cases left behind.
    case!(prune_removes_only_what_ended);
    out
}

fn code_hash(n: u32) -> RecoveryCodeHash {
    RecoveryCodeHash::from_stored(format!("{:064x}", u64::from(n) << 20 ^ rand_u32()))
}

fn rand_u32() -> u64 {
    let bytes: [u8; 8] = crate::primitives::platform::random_array(&SystemRng);
    u64::from_le_bytes(bytes)
}

fn confirmation(
    user_id: &str,
    pending: &str,
    step: i64,
    codes: Vec<RecoveryCodeHash>,
) -> TotpConfirmation {
    TotpConfirmation {
        user_id: user_id.into(),
        pending_sealed: pending.into(),
        step,
        enrollment_id: new_id(&SystemRng, "enr_"),
        recovery_codes: codes,
        now: NOW + 10,
    }
}

async fn kinds_of<S: Store>(store: &S, user_id: &str) -> Result<Vec<String>, String> {
    Ok(
        ok(store.audit_events(Some(user_id), 50).await, "audit_events")?
            .into_iter()
            .map(|e| e.kind)
            .collect(),
    )
}

async fn totp_enrollment_is_pending_until_confirmed<S: Store>(store: &S) -> CaseResult {
    let u = user("totp");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    check!(
        ok(store.totp(&u.id).await, "totp")?.is_none(),
        "a new user has a TOTP record"
    );
    let started = event_for(&u.id, "totp_enrollment_started");
    check!(
        ok(
            store.start_totp(&u.id, "v1.first", NOW, &started).await,
            "start_totp"
        )?,
        "start_totp refused an existing user"
    );
    check!(
        !ok(
            store.start_totp("usr_missing", "v1.x", NOW, &started).await,
            "start_totp"
        )?,
        "start_totp accepted an unknown user"
    );
    let rec = ok(store.totp(&u.id).await, "totp")?.ok_or("no record after start")?;
    check!(
        rec.secret_sealed.is_none()
            && rec.pending_sealed.as_deref() == Some("v1.first")
            && rec.pending_at == Some(NOW),
        "after start: {rec:?}"
    );
    let read = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user gone")?;
    check!(!read.totp, "a pending enrollment counts as enrolled");
    // Starting again replaces the pending secret; confirming the first one then fails.
    ok(
        store
            .start_totp(&u.id, "v1.second", NOW + 1, &started)
            .await,
        "start_totp",
    )?;
    let enrolled = event_for(&u.id, "totp_enrolled");
    let stale = confirmation(&u.id, "v1.first", 100, vec![code_hash(1)]);
    check!(
        !ok(store.confirm_totp(&stale, &enrolled).await, "confirm_totp")?,
        "a replaced pending secret was confirmed"
    );
    let codes: Vec<_> = (0..10).map(code_hash).collect();
    let good = confirmation(&u.id, "v1.second", 100, codes.clone());
    check!(
        ok(store.confirm_totp(&good, &enrolled).await, "confirm_totp")?,
        "the pending secret was not confirmed"
    );
    // The same confirmation again (a second request that checked the same pending secret).
    let again = confirmation(&u.id, "v1.second", 100, vec![code_hash(99)]);
    check!(
        !ok(store.confirm_totp(&again, &enrolled).await, "confirm_totp")?,
        "a pending secret was confirmed twice"
    );
    let rec = ok(store.totp(&u.id).await, "totp")?.ok_or("no record after confirm")?;
    check!(
        rec.secret_sealed.as_deref() == Some("v1.second")
            && rec.pending_sealed.is_none()
            && rec.last_step == 100
            && rec.enrolled_at == Some(NOW + 10)
            && rec.recovery_codes_left == 10,
        "after confirm: {rec:?}"
    );
    for read in [
        ok(store.user_by_id(&u.id).await, "user_by_id")?,
        ok(store.user_by_email(&u.email).await, "user_by_email")?,
    ] {
        check!(
            read.is_some_and(|r| r.totp),
            "the user is not read as enrolled"
        );
    }
    let listed = ok(
        store
            .list_users(&UserQuery {
                search: Some(u.email.clone()),
                after_email: None,
                limit: 5,
            })
            .await,
        "list_users",
    )?;
    check!(
        listed.len() == 1 && listed[0].totp,
        "list_users: {listed:?}"
    );
    // A new enrollment keeps the enrolled secret until it is confirmed.
    ok(
        store
            .start_totp(&u.id, "v1.third", NOW + 20, &started)
            .await,
        "start_totp",
    )?;
    let rec = ok(store.totp(&u.id).await, "totp")?.ok_or("record gone")?;
    check!(
        rec.secret_sealed.as_deref() == Some("v1.second")
            && rec.pending_sealed.as_deref() == Some("v1.third"),
        "a new start replaced the enrolled secret: {rec:?}"
    );
    let kinds = kinds_of(store, &u.id).await?;
    check!(
        kinds.iter().filter(|k| *k == "totp_enrolled").count() == 1
            && kinds
                .iter()
                .filter(|k| *k == "totp_enrollment_started")
                .count()
                == 3,
        "events: {kinds:?}"
    );
    Ok(())
}

async fn totp_steps_and_recovery_codes_are_used_once<S: Store>(store: &S) -> CaseResult {
    let u = user("totpuse");
    ok(store.create_user(&u, None, None).await, "create_user")?;
    let ev = event_for(&u.id, "totp_enrolled");
    ok(
        store.start_totp(&u.id, "v1.s", NOW, &ev).await,
        "start_totp",
    )?;
    let codes: Vec<_> = (0..3).map(code_hash).collect();
    ok(
        store
            .confirm_totp(&confirmation(&u.id, "v1.s", 100, codes.clone()), &ev)
            .await,
        "confirm",
    )?;
    // The confirming code's step is used; later steps once each; never an older one.
    for (step, expect) in [
        (100, false),
        (99, false),
        (101, true),
        (101, false),
        (100, false),
        (103, true),
        (102, false),
    ] {
        let used = ok(
            store.use_totp_step(&u.id, "v1.s", step).await,
            "use_totp_step",
        )?;
        check!(
            used == expect,
            "step {step}: used {used}, expected {expect}"
        );
    }
    check!(
        !ok(
            store.use_totp_step(&u.id, "v1.other", 200).await,
            "use_totp_step"
        )?,
        "a step of another secret was accepted"
    );
    // Twenty concurrent uses of one new step: exactly one wins.
    let results = join_all((0..20).map(|_| store.use_totp_step(&u.id, "v1.s", 150))).await;
    let mut winners = 0;
    for r in results {
        winners += usize::from(ok(r, "use_totp_step")?);
    }
    check!(winners == 1, "{winners} concurrent uses of one step won");
    // A recovery code works once, and only for its user.
    let other = user("totpother");
    ok(store.create_user(&other, None, None).await, "create_user")?;
    check!(
        !ok(
            store.use_recovery_code(&other.id, &codes[0]).await,
            "use_recovery_code"
        )?,
        "another user's recovery code was accepted"
    );
    let results = join_all((0..10).map(|_| store.use_recovery_code(&u.id, &codes[0]))).await;
    let mut winners = 0;
    for r in results {
        winners += usize::from(ok(r, "use_recovery_code")?);
    }
    check!(
        winners == 1,
        "{winners} concurrent uses of one recovery code won"
    );
    let rec = ok(store.totp(&u.id).await, "totp")?.ok_or("record gone")?;
    check!(
        rec.recovery_codes_left == 2 && rec.last_step == 150,
        "after use: {rec:?}"
    );
    // New codes replace the old ones.
    let fresh: Vec<_> = (10..20).map(code_hash).collect();
    let regenerated = event_for(&u.id, "recovery_codes_regenerated");
    check!(
        ok(
            store
                .replace_recovery_codes(&u.id, &fresh, NOW, &regenerated)
                .await,
            "replace"
        )?,
        "replace_recovery_codes refused an enrolled user"
    );
    check!(
        !ok(
            store.use_recovery_code(&u.id, &codes[1]).await,
            "use_recovery_code"
        )?,
        "an old recovery code outlived its replacement"
    );
    check!(
        ok(
            store.use_recovery_code(&u.id, &fresh[3]).await,
            "use_recovery_code"
        )?,
        "a new recovery code was refused"
    );
    check!(
        !ok(
            store
                .replace_recovery_codes(&other.id, &fresh, NOW, &regenerated)
                .await,
            "replace"
        )?,
        "recovery codes were issued to a user without TOTP"
    );
    check!(
        !kinds_of(store, &other.id)
            .await?
            .contains(&"recovery_codes_regenerated".to_string()),
        "an event of a refused replacement was written"
    );
    // Removal takes the secret and the codes, once, recorded once.
    let removed = event_for(&u.id, "totp_removed");
    check!(
        ok(store.remove_totp(&u.id, &removed).await, "remove_totp")?,
        "not removed"
    );
    check!(
        !ok(store.remove_totp(&u.id, &removed).await, "remove_totp")?,
        "removed twice"
    );
    check!(
        ok(store.totp(&u.id).await, "totp")?.is_none(),
        "a record outlived removal"
    );
    check!(
        !ok(
            store.use_recovery_code(&u.id, &fresh[4]).await,
            "use_recovery_code"
        )?,
        "a recovery code outlived removal"
    );
    check!(
        !ok(
            store.use_totp_step(&u.id, "v1.s", 500).await,
            "use_totp_step"
        )?,
        "a step was accepted after removal"
    );
    let read = ok(store.user_by_id(&u.id).await, "user_by_id")?.ok_or("user gone")?;
    check!(!read.totp, "the user is still read as enrolled");
    let kinds = kinds_of(store, &u.id).await?;
    check!(
        kinds.iter().filter(|k| *k == "totp_removed").count() == 1,
        "events: {kinds:?}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::store::memory::MemoryStore;
    use futures::executor::block_on;

    #[test]
    fn contract_suite_passes_on_the_memory_store() {
        let store = MemoryStore::new();
        let outcomes = block_on(run(&store));
        assert!(outcomes.len() >= 21);
        let failed: Vec<_> = outcomes.iter().filter(|o| o.error.is_some()).collect();
        assert!(failed.is_empty(), "failed: {failed:#?}");
        // Run twice on the same store: cases must not depend on an empty database (D1 keeps data).
        let again = block_on(run(&store));
        assert!(again.iter().all(|o| o.error.is_none()), "{again:#?}");
    }
}
