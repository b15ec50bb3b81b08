//! Rate limits for login (per account and per IP), registration (per IP) and refresh (per
//! session family): fixed windows counted in D1 by one atomic upsert
//! ([`crate::domain::store::Store::hit_rate_limit`]), so every isolate and instance shares the count.
//! Over the limit: 429 `auth_rate_limited` with `Retry-After` (seconds to the window's end).

use crate::domain::store::Store;
use crate::domain::subject::client_network;
use crate::primitives::error::Error;
use crate::services::Services;

/// What is limited; the prefix of the counter's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Login attempts per account (normalised email).
    LoginAccount,
    /// Login attempts per client IP.
    LoginIp,
    /// Registrations per client IP.
    RegisterIp,
    /// Refreshes per session family.
    RefreshFamily,
}

impl Bucket {
    fn prefix(self) -> &'static str {
        match self {
            Self::LoginAccount => "login_account",
            Self::LoginIp => "login_ip",
            Self::RegisterIp => "register_ip",
            Self::RefreshFamily => "refresh_family",
        }
    }

    fn limit(self, svc_limits: &crate::domain::config::RateLimits) -> i64 {
        match self {
            Self::LoginAccount => svc_limits.login_per_account,
            Self::LoginIp => svc_limits.login_per_ip,
            Self::RegisterIp => svc_limits.register_per_ip,
            Self::RefreshFamily => svc_limits.refresh_per_family,
        }
    }
}

/// Counts one attempt on `bucket` for `subject`; the attempt after the limit is refused.
pub async fn check<S: Store, H>(
    svc: &Services<'_, S, H>,
    bucket: Bucket,
    subject: &str,
) -> Result<(), Error> {
    let limits = &svc.config.limits.rate;
    let limit = bucket.limit(limits);
    if limit == 0 {
        return Ok(());
    }
    let window_ms = limits.window_secs * 1000;
    let now = svc.clock.now_ms();
    // Counted under a name that is never the text a client sent: an email (which may be a
    // password typed into the wrong field) as a keyed hash, a client by its network.
    let subject = match bucket {
        Bucket::LoginAccount => svc.config.accounts.subject_key.email(subject),
        Bucket::LoginIp | Bucket::RegisterIp => client_network(subject),
        Bucket::RefreshFamily => subject.to_string(),
    };
    let key = format!("{}:{subject}", bucket.prefix());
    let hit = svc.store.hit_rate_limit(&key, window_ms, now).await?;
    if hit.count > limit {
        let left_ms = (hit.window_start + window_ms - now).max(1);
        let secs = (left_ms + 999) / 1000;
        return Err(Error::AuthRateLimited(
            u32::try_from(secs).unwrap_or(u32::MAX),
        ));
    }
    Ok(())
}
