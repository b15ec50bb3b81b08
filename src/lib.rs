//! Gatehouse: accounts, Ed25519 access tokens and rotating refresh-token families for static
//! sites, as a Cloudflare Worker.
//!
//! The crate is a stack of layers; each imports only from the layers below it (`tests/layers.rs`
//! checks this, `docs/architecture.md` describes it):
//!
//! * [`primitives`]: errors, encoding, secrets, platform traits ([`primitives::platform`]),
//!   HTTP types, JSON bodies, cookies, CORS;
//! * [`domain`]: the rules, pure: configuration, tokens, passwords, refresh families, CSRF, API
//!   keys, the proxy's policy, and the storage contract ([`domain::store::Store`]);
//! * [`services`]: what a request is handled with ([`services::Services`]), authentication,
//!   audit events, rate limits, prune;
//! * [`routes`]: the router and the handlers; [`routes::serve`] takes each request (or
//!   [`routes::serve_on`], with its proxied route already found), and [`routes::fast`] the
//!   proxied requests without a body that can be decided from memory;
//! * `worker` (wasm32 only): the thin Workers adapter that turns `env` into a
//!   [`domain::config::Config`], implements the store on D1 and PBKDF2 on WebCrypto, and hands
//!   each request, with its proxied route found once, to [`routes::serve_on`] (a proxied request
//!   without a body decided from memory through [`routes::fast`], without a future).
//!
//! Everything but `worker` compiles and is tested natively. It never reaches for time,
//! randomness, storage or the network: those come in through the traits of
//! [`primitives::platform`], [`domain::store`] and [`domain::proxy::Upstream`].

pub mod domain;
pub mod primitives;
pub mod routes;
pub mod services;

#[cfg(target_arch = "wasm32")]
mod worker;

pub use primitives::error::Error;
