//! Gatehouse: accounts, Ed25519 access tokens and rotating refresh-token families for static
//! sites, as a Cloudflare Worker.
//!
//! The crate is split in two:
//!
//! * a **portable core** (every module but `worker`) that compiles and is tested natively. It
//!   never reaches for time, randomness, storage or the network: those come in through the small
//!   traits in [`platform`] and [`store`];
//! * a **thin Workers adapter** (`worker`, wasm32 only) that turns `env` into a [`config::Config`],
//!   implements [`store::Store`] on D1 and [`platform::Pbkdf2`] on WebCrypto, and hands each
//!   request to [`app::handle`].

pub mod admin;
pub mod apikey;
pub mod app;
pub mod caller;
pub mod client_asset;
pub mod config;
pub mod csrf;
pub mod password;
pub mod primitives;
pub mod proxy;
pub mod prune;
pub mod ratelimit;
pub mod refresh;
pub mod sessions;
pub mod store;
pub mod token;

#[cfg(any(test, feature = "selftest"))]
pub mod selftest;

#[cfg(target_arch = "wasm32")]
mod worker;

pub use primitives::error::Error;
