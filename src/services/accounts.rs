//! Accounts: a new user, made the same way by registration, the admin API and the CLI's rules.

use crate::domain::password;
use crate::domain::store::{Family, RevokeReason, Store, User};
use crate::primitives::encoding::new_id;
use crate::primitives::error::Error;
use crate::primitives::http::Request;
use crate::primitives::platform::Pbkdf2;
use crate::services::audit::own_event;
use crate::services::Services;

/// A new enabled user with a fresh id, created now, holding `roles`; `pw` must meet the password
/// policy and is hashed with the configured iterations. Nothing is stored.
pub async fn new_user<S, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    email: String,
    name: Option<String>,
    pw: &str,
    roles: Vec<String>,
) -> Result<User, Error> {
    password::check_policy(pw)?;
    let now = svc.clock.now_ms();
    Ok(User {
        id: new_id(svc.rng, "usr_"),
        email,
        name,
        password_hash: password::hash(
            svc.hasher,
            svc.rng,
            pw,
            svc.config.accounts.pbkdf2_iterations,
        )
        .await?,
        roles,
        disabled: false,
        created_at: now,
        updated_at: now,
        totp: false,
    })
}

/// Ends `family` at its owner's request (`kind`: `logout`, `console_signed_out`), with that
/// event, written only by the call that ended it. Whether this call ended it.
pub async fn end_own_session<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    family: &Family,
    kind: &str,
    now: i64,
) -> Result<bool, Error> {
    let event = own_event(
        req,
        now,
        kind,
        Some(&family.user_id),
        Some(&family.id),
        None,
    );
    svc.store
        .revoke_family(&family.id, RevokeReason::Logout, now, Some(&event))
        .await
}
