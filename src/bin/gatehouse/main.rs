//! `gatehouse`: the operator's command line.
//!
//! ```text
//! gatehouse keygen [--env | --pepper]
//! gatehouse add-user --email EMAIL [--name NAME] [--roles a,b] [--password-stdin]
//!                    [--local | --remote] [--update] [--iterations N]
//!                    [--database NAME] [--persist-to DIR] [--config wrangler.toml] [--print-sql]
//! gatehouse mint-key --owner EMAIL --label LABEL --role ROLE [--scopes a,b] [--expires-days N]
//! gatehouse list-keys [--owner EMAIL] [--json]
//! gatehouse revoke-key KEY_ID
//! gatehouse set-roles --email EMAIL --roles a,b
//! gatehouse disable-user --email EMAIL
//! gatehouse enable-user --email EMAIL
//! gatehouse list-users [--search TEXT] [--limit N] [--json]
//! ```
//!
//! `keygen` and `add-user` are in `cli.rs`; the commands on keys and users after them are in
//! `ops.rs`. Every command that touches D1 takes `--local | --remote`, `--database`,
//! `--persist-to`, `--config` and `--print-sql`.
//!
//! `add-user` hashes the password here (the same PBKDF2 as the worker) and writes the row with
//! `wrangler d1 execute`, so it works against local D1 (`--local`, the default) and the
//! deployed database (`--remote`) alike. The password is read from a prompt without echo, or
//! from the first line of standard input with `--password-stdin`; it is never an argument. Like
//! every command that changes something, it writes the admin API's audit events (actor NULL,
//! `"by": "cli"`): `registered` for a new user; with `--update` on an existing one,
//! `password_changed` (with how many sessions it revoked) and `role_changed` if the roles differ.

#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod ops;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
