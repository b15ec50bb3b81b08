//! The bottom layer: types and helpers that know nothing of Gatehouse's configuration, storage
//! or routes. Every other layer may use them; they use only each other and external crates.

pub mod body;
pub mod cookies;
pub mod cors;
pub mod encoding;
pub mod error;
pub mod http;
pub mod jws;
pub mod platform;
pub mod secrets;
