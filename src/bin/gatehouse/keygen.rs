//! `keygen`: the worker's signing key, its API-key pepper, or its MFA encryption key.

use clap::Args;

use gatehouse::domain::token::{public_jwk, KeySet};
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::platform::{random_array, SystemRng};

/// `keygen`: prints the secret for `wrangler secret put JWT_SIGNING_KEY` and the public JWK.
#[derive(Args)]
pub struct Keygen {
    /// Print only `JWT_SIGNING_KEY=<secret>` (for .dev.vars).
    #[arg(long, conflicts_with_all = ["pepper", "mfa_key"])]
    env: bool,
    /// Make an API_KEY_PEPPER secret instead (for `wrangler secret put API_KEY_PEPPER`).
    #[arg(long, conflicts_with = "mfa_key")]
    pepper: bool,
    /// Make an MFA_ENCRYPTION_KEY secret instead (for `wrangler secret put MFA_ENCRYPTION_KEY`).
    #[arg(long)]
    mfa_key: bool,
}

pub fn run(args: &Keygen) -> Result<(), String> {
    if args.pepper || args.mfa_key {
        let bytes: [u8; 32] = random_array(&SystemRng);
        println!("{}", b64url(&bytes));
        return Ok(());
    }
    let seed: [u8; 32] = random_array(&SystemRng);
    let keys = KeySet::new(&seed, &[]).map_err(|e| e.to_string())?;
    if args.env {
        println!("JWT_SIGNING_KEY={}", b64url(&seed));
        return Ok(());
    }
    let jwk = public_jwk(&keys.public_key());
    println!("JWT_SIGNING_KEY (secret; store it with `wrangler secret put JWT_SIGNING_KEY`):");
    println!("{}", b64url(&seed));
    println!();
    println!(
        "public JWK (kid {}; also served at /.well-known/jwks.json):",
        keys.current_kid()
    );
    println!("{jwk}");
    println!();
    println!("public key x (when this key is later replaced, put this value, never the secret,");
    println!("into JWT_PREVIOUS_PUBLIC_KEYS until the access tokens it signed have expired):");
    println!("{}", b64url(&keys.public_key()));
    Ok(())
}
