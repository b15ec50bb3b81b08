//! The scheduled clean-up (Cron Trigger): ended sessions past `SESSION_RETENTION_DAYS` with
//! their tokens, audit events past `AUDIT_RETENTION_DAYS`, and rate-limit counters whose window
//! has passed. Live sessions, recent events and current counters are never touched.

use crate::domain::config::Config;
use crate::domain::store::{PruneCounts, PruneCutoffs, Store};
use crate::primitives::error::Error;

const DAY_MS: i64 = 86_400_000;

/// The cutoffs for a run at `now`.
pub fn cutoffs(config: &Config, now: i64) -> PruneCutoffs {
    PruneCutoffs {
        now,
        families_ended_before: now - config.limits.session_retention_days * DAY_MS,
        idle_ms: config.tokens.refresh_idle_secs * 1000,
        audit_before: now - config.limits.audit_retention_days * DAY_MS,
    }
}

/// Runs one prune at `now`.
pub async fn run<S: Store>(store: &S, config: &Config, now: i64) -> Result<PruneCounts, Error> {
    store.prune(&cutoffs(config, now)).await
}
