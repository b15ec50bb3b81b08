//! `gatehouse`: the operator's command line.
//!
//! `keygen` makes the worker's secrets. Every other command works on the worker's D1 database
//! through the worker's own storage code (`SqlStore`), whose statements it runs with
//! `wrangler d1 execute` against the local (`--local`, the default) or the deployed
//! (`--remote`) database, and writes the same audit events as the admin API (no actor,
//! `"by": "cli"` in the detail). Passwords are read from a prompt without echo, or from the
//! first line of standard input with `--password-stdin`; never from an argument. `mint-key`
//! reads the worker's `API_KEY_PEPPER` from the environment.

#[cfg(not(target_arch = "wasm32"))]
mod keygen;
#[cfg(not(target_arch = "wasm32"))]
mod keys;
#[cfg(not(target_arch = "wasm32"))]
mod rotate;
#[cfg(not(target_arch = "wasm32"))]
mod users;
#[cfg(not(target_arch = "wasm32"))]
mod wrangler;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::future::Future;
    use std::pin::pin;
    use std::process::ExitCode;
    use std::task::{Context, Poll, Waker};

    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::{Parser, Subcommand};

    use super::{keygen, keys, rotate, users};

    /// The operator's command line of Gatehouse.
    #[derive(Parser)]
    #[command(name = "gatehouse", version)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Makes the worker's Ed25519 signing key (or, with --pepper, its API_KEY_PEPPER).
        Keygen(keygen::Keygen),
        /// Replaces the signing key in three steps (prepare, promote, retire) without logging
        /// anyone out, printing the wrangler commands of each.
        RotateKey(rotate::RotateKey),
        /// Creates a user; with --update replaces an existing user's password and roles and
        /// revokes all their sessions.
        AddUser(users::AddUser),
        /// Replaces a user's roles.
        SetRoles(users::SetRoles),
        /// Disables a user and revokes all their sessions; their API keys stop at once.
        DisableUser(users::ByEmail),
        /// Enables a disabled user.
        EnableUser(users::ByEmail),
        /// Removes a user's TOTP second factor and recovery codes (a lost authenticator).
        ResetMfa(users::ByEmail),
        /// Lists users by email.
        ListUsers(users::ListUsers),
        /// Mints an API key and prints it once (needs API_KEY_PEPPER in the environment).
        MintKey(keys::MintKey),
        /// Lists API keys (never the keys themselves).
        ListKeys(keys::ListKeys),
        /// Revokes an API key (the proxy refuses it within REVOCATION_DELAY_SECONDS).
        RevokeKey(keys::RevokeKey),
    }

    pub fn main() -> ExitCode {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(err) => return usage_error(err),
        };
        let result = match cli.command {
            Command::Keygen(args) => keygen::run(&args),
            Command::RotateKey(args) => rotate::run(&args),
            Command::AddUser(args) => users::add_user(&args),
            Command::SetRoles(args) => users::set_roles(&args),
            Command::DisableUser(args) => users::set_disabled(&args, true),
            Command::EnableUser(args) => users::set_disabled(&args, false),
            Command::ResetMfa(args) => users::reset_mfa(&args),
            Command::ListUsers(args) => users::list_users(&args),
            Command::MintKey(args) => keys::mint_key(&args),
            Command::ListKeys(args) => keys::list_keys(&args),
            Command::RevokeKey(args) => keys::revoke_key(&args),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("gatehouse: {message}");
                ExitCode::from(2)
            }
        }
    }

    /// Help and version go to stdout with success; a wrong argument exits 2 and names it.
    fn usage_error(err: clap::Error) -> ExitCode {
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        if err.kind() == ErrorKind::UnknownArgument {
            if let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) {
                eprintln!("gatehouse: unknown option {arg}");
            }
        }
        let _ = err.print();
        ExitCode::from(2)
    }

    /// Runs a future that never waits: the store's executor and the native PBKDF2 are
    /// synchronous.
    pub fn ready<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => value,
            Poll::Pending => unreachable!("the command line's futures never wait"),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use cli::ready;
