//! The domain layer: Gatehouse's rules, pure (no storage, no clock, no network of its own):
//! configuration, tokens, passwords, refresh families, CSRF, API keys, the proxy's policy and
//! the storage contract.

pub mod account;
pub mod apikey;
pub mod caller;
pub mod config;
#[cfg(any(test, feature = "selftest"))]
pub mod contract;
pub mod csrf;
pub mod device;
pub mod issuers;
pub mod liveness;
pub mod mfa;
pub mod password;
pub mod proxy;
pub mod refresh;
pub mod scoped;
pub mod store;
pub mod subject;
pub mod token;
pub mod vars;
pub mod webauthn;
