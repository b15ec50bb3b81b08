//! The services layer: what a request is handled with ([`Services`]), and the work that needs
//! storage or the clock on top of the domain: authenticating a caller, audit events, rate
//! limits, the scheduled prune.

use crate::domain::config::Config;
use crate::primitives::jws::SignatureVerifier;
use crate::primitives::platform::{AesGcm, Clock, DocumentCache, Fetcher, Rng};

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod console;
pub mod issuers;
pub mod mfa;
pub mod prune;
pub mod ratelimit;
pub mod webauthn;

/// Everything a request is handled with.
pub struct Services<'a, S, H> {
    /// The validated configuration.
    pub config: &'a Config,
    /// Storage.
    pub store: &'a S,
    /// PBKDF2.
    pub hasher: &'a H,
    /// The request's time.
    pub clock: &'a dyn Clock,
    /// Randomness.
    pub rng: &'a dyn Rng,
    /// AES-256-GCM (the TOTP secrets at rest).
    pub aead: &'a dyn AesGcm,
    /// Signature checks with other issuers' keys (WebCrypto in the worker).
    pub verifier: &'a dyn SignatureVerifier,
    /// Fetches of other issuers' JWKS (the worker's outbound `fetch`).
    pub fetcher: &'a dyn Fetcher,
    /// Fetched documents kept beyond the isolate (the Workers Cache API): other issuers' JWKS.
    pub documents: &'a dyn DocumentCache,
}
