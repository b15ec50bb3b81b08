//! Rate limits for login (per account and client network, per account from all networks, per
//! IP), registration (per IP), refresh (per session family) and scoped-token minting (per
//! credential): fixed windows counted in D1 by one atomic upsert each
//! ([`crate::domain::store::Store::hit_rate_limit`]; a login's counters with its user read in one
//! batch, [`crate::domain::store::Store::login_lookup`]; a refresh's counter inside its rotation,
//! [`crate::domain::store::Store::rotate_refresh`]), so every isolate and instance shares the
//! count. Over the limit: 429 `auth_rate_limited` with `Retry-After` (seconds to the window's end).

use crate::domain::store::{Counter, RateHit, RotationLimit, Store, REFRESH_FAMILY_BUCKET};
use crate::domain::subject::client_network;
use crate::primitives::error::Error;
use crate::services::Services;

/// What is limited; the prefix of the counter's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Login attempts per account (normalised email) and client network: what one attacker's
    /// network can guess, without touching the owner's own network.
    LoginAccount,
    /// Login attempts per account from all networks together: the ceiling of a guessing
    /// attack spread over many networks. A browser with the account's device cookie is not
    /// counted by it.
    LoginAccountTotal,
    /// Login attempts per client IP.
    LoginIp,
    /// Registrations per client IP.
    RegisterIp,
    /// Refreshes per session family.
    RefreshFamily,
    /// Scoped tokens minted per credential: its session, its API key, or its user.
    TokenMint,
}

impl Bucket {
    fn prefix(self) -> &'static str {
        match self {
            Self::LoginAccount => "login_account",
            Self::LoginAccountTotal => "login_account_total",
            Self::LoginIp => "login_ip",
            Self::RegisterIp => "register_ip",
            Self::RefreshFamily => REFRESH_FAMILY_BUCKET,
            Self::TokenMint => "token_mint",
        }
    }

    fn limit(self, svc_limits: &crate::domain::config::RateLimits) -> i64 {
        match self {
            Self::LoginAccount => svc_limits.login_per_account,
            Self::LoginAccountTotal => svc_limits.login_per_account_total,
            Self::LoginIp => svc_limits.login_per_ip,
            Self::RegisterIp => svc_limits.register_per_ip,
            Self::RefreshFamily => svc_limits.refresh_per_family,
            Self::TokenMint => svc_limits.token_mint_per_credential,
        }
    }
}

/// A subject over its limit in the current window: refused at least once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Limited {
    /// The counter's bucket (`login_ip`, `login_account`, …).
    pub bucket: &'static str,
    /// Whom it counts, as stored: a client network, a keyed hash of an email (with the
    /// network), or a session family id; never what a client typed.
    pub subject: String,
    /// Attempts in this window.
    pub count: i64,
    /// The bucket's limit.
    pub limit: i64,
    /// When the window ends and the subject may try again, Unix ms.
    pub until: i64,
}

/// Every subject refused at least once in its current window, the most counted first (at most
/// `max`).
pub async fn limited_now<S: Store, H>(
    svc: &Services<'_, S, H>,
    max: u32,
) -> Result<Vec<Limited>, Error> {
    const BUCKETS: [Bucket; 6] = [
        Bucket::LoginAccountTotal,
        Bucket::LoginAccount,
        Bucket::LoginIp,
        Bucket::RegisterIp,
        Bucket::RefreshFamily,
        Bucket::TokenMint,
    ];
    let limits = &svc.config.limits.rate;
    let Some(lowest) = BUCKETS
        .iter()
        .map(|b| b.limit(limits))
        .filter(|&l| l > 0)
        .min()
    else {
        return Ok(Vec::new());
    };
    let counters = svc
        .store
        .busy_rate_limits(svc.clock.now_ms(), lowest + 1, max)
        .await?;
    Ok(counters
        .into_iter()
        .filter_map(|c| {
            // The longest prefix first: `login_account_total` before `login_account`.
            let bucket = BUCKETS
                .iter()
                .find(|b| c.key.starts_with(&format!("{}:", b.prefix())))?;
            let limit = bucket.limit(limits);
            (limit > 0 && c.count > limit).then(|| Limited {
                bucket: bucket.prefix(),
                subject: c.key[bucket.prefix().len() + 1..].to_string(),
                count: c.count,
                limit,
                until: c.expires_at,
            })
        })
        .collect())
}

/// The counters one login attempt counts, in the order they are checked: its client network
/// (when the request has a client address), then, for a well-formed `email` (normalised), the
/// account from that network and, unless the browser showed the account's device cookie
/// (`trusted_device`), the account from all networks. A request without a client address (only
/// off Cloudflare) counts as one network of its own. Limits set to 0 are left out.
pub fn login_counters(
    config: &crate::domain::config::Config,
    client_ip: Option<&str>,
    email: Option<&str>,
    trusted_device: bool,
) -> Vec<Counter> {
    let limits = &config.limits.rate;
    let network = client_ip.map(client_network);
    let mut counters = Vec::with_capacity(3);
    let mut add = |bucket: Bucket, subject: &str| {
        let limit = bucket.limit(limits);
        if limit > 0 {
            counters.push(Counter {
                key: format!("{}:{subject}", bucket.prefix()),
                limit,
            });
        }
    };
    if let Some(network) = &network {
        add(Bucket::LoginIp, network);
    }
    if let Some(email) = email {
        // Counted under a keyed hash, never the text typed (it may be a password).
        let account = config.accounts.subject_key.email(email);
        add(
            Bucket::LoginAccount,
            &format!("{account}:{}", network.as_deref().unwrap_or("-")),
        );
        if !trusted_device {
            add(Bucket::LoginAccountTotal, &account);
        }
    }
    counters
}

/// The refusal of the first of `counters` whose hit (`hits`, in the same order) is over its
/// limit: 429 with the seconds to its window's end.
pub fn first_over(
    counters: &[Counter],
    hits: &[Option<RateHit>],
    window_ms: i64,
    now: i64,
) -> Result<(), Error> {
    for (counter, hit) in counters.iter().zip(hits) {
        if let Some(hit) = hit {
            over_limit(*hit, counter.limit, window_ms, now)?;
        }
    }
    Ok(())
}

/// Counts one attempt on `bucket` for `subject`; the attempt after the limit is refused.
pub async fn check<S: Store, H>(
    svc: &Services<'_, S, H>,
    bucket: Bucket,
    subject: &str,
) -> Result<(), Error> {
    // Counted under a name that is never the text a client sent: an email (which may be a
    // password typed into the wrong field) as a keyed hash, a client by its network.
    let subject = match bucket {
        Bucket::LoginAccount | Bucket::LoginAccountTotal => {
            svc.config.accounts.subject_key.email(subject)
        }
        Bucket::LoginIp | Bucket::RegisterIp => client_network(subject),
        Bucket::RefreshFamily | Bucket::TokenMint => subject.to_string(),
    };
    hit(svc, bucket, &subject).await
}

/// Counts one attempt on `bucket` under `subject`, already in its stored form.
async fn hit<S: Store, H>(
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
    let key = format!("{}:{subject}", bucket.prefix());
    let hit = svc.store.hit_rate_limit(&key, window_ms, now).await?;
    over_limit(hit, limit, window_ms, now)
}

/// The refusal of a counter over `limit` after `hit`: 429 with the seconds to its window's end.
pub fn over_limit(hit: RateHit, limit: i64, window_ms: i64, now: i64) -> Result<(), Error> {
    if hit.count > limit {
        let left_ms = (hit.window_start + window_ms - now).max(1);
        let secs = (left_ms + 999) / 1000;
        return Err(Error::AuthRateLimited(
            u32::try_from(secs).unwrap_or(u32::MAX),
        ));
    }
    Ok(())
}

/// The limit a refresh counts itself against inside its rotation (`None` when off).
pub fn refresh_limit(limits: &crate::domain::config::RateLimits) -> Option<RotationLimit> {
    (limits.refresh_per_family > 0).then(|| RotationLimit {
        window_ms: limits.window_secs * 1000,
        max: limits.refresh_per_family,
    })
}
