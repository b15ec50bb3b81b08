//! `rotate-key`: replaces the signing key in three steps without logging anyone out, printing
//! what to run at each. Nothing here talks to Cloudflare: the operator runs the printed
//! `wrangler` commands, and passes the worker's current JWKS (`curl …/.well-known/jwks.json`)
//! on standard input so the printed values match what is deployed.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::Value;

use gatehouse::domain::token::{thumbprint, KeySet};
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::platform::{random_array, SystemRng};

/// The three steps.
#[derive(Args)]
pub struct RotateKey {
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Step 1: makes the next key and says how to publish its public half ahead of use.
    Prepare,
    /// Step 2: says how to sign with the next key and keep accepting the old one. Reads the
    /// deployed JWKS on stdin.
    Promote {
        /// The public x of the next key (printed by `prepare`).
        #[arg(long)]
        next: String,
    },
    /// Step 3: once the old key's tokens have expired, says how to stop accepting it. Reads the
    /// deployed JWKS on stdin.
    Retire {
        /// The public x of the key to stop accepting.
        #[arg(long)]
        old: String,
    },
}

pub fn run(args: &RotateKey) -> Result<(), String> {
    match &args.step {
        Step::Prepare => prepare(),
        Step::Promote { next } => promote(next, &read_jwks()?),
        Step::Retire { old } => retire(old, &read_jwks()?),
    }
}

fn prepare() -> Result<(), String> {
    let seed: [u8; 32] = random_array(&SystemRng);
    let keys = KeySet::new(&seed, &[]).map_err(|e| e.to_string())?;
    let x = b64url(&keys.public_key());
    println!("Next signing key (secret: keep it in your password manager until step 2):");
    println!("{}", b64url(&seed));
    println!();
    println!("Its public x (kid {}):", keys.current_kid());
    println!("{x}");
    println!();
    println!("1. Publish it: set JWT_NEXT_PUBLIC_KEY = \"{x}\" in [vars] of wrangler.toml, then");
    println!("   `wrangler deploy`. The JWKS lists it second; tokens it will sign verify at once.");
    println!(
        "2. Wait at least 300 s (the JWKS's Cache-Control max-age), so parties that cache the"
    );
    println!("   JWKS know the key before it signs anything, then run:");
    println!("   curl -s https://<gatehouse>/.well-known/jwks.json | gatehouse rotate-key promote --next {x}");
    Ok(())
}

fn promote(next: &str, jwks: &[String]) -> Result<(), String> {
    let current = jwks.first().ok_or("the JWKS lists no key")?;
    if current == next {
        return Err("the next key already signs: run `rotate-key retire` after the wait".into());
    }
    if !jwks.iter().any(|x| x == next) {
        return Err(format!(
            "the deployed JWKS does not list {next} yet: publish it first (rotate-key prepare, step 1)"
        ));
    }
    let previous: Vec<&str> = std::iter::once(current.as_str())
        .chain(
            jwks.iter()
                .skip(1)
                .map(String::as_str)
                .filter(|x| *x != next),
        )
        .collect();
    println!(
        "1. Accept the old key's tokens: set JWT_PREVIOUS_PUBLIC_KEYS = \"{}\"",
        previous.join(",")
    );
    println!("   and remove JWT_NEXT_PUBLIC_KEY in [vars] of wrangler.toml (do not deploy yet).");
    println!("2. Sign with the next key: `wrangler secret put JWT_SIGNING_KEY` and paste the seed");
    println!("   that `rotate-key prepare` printed; then `wrangler deploy`.");
    println!("   Sessions go on: refresh tokens do not depend on the key, access tokens signed by");
    println!(
        "   the old key ({}) verify until they expire.",
        thumbprint_of(current)?
    );
    println!("3. After ACCESS_TOKEN_TTL + CLOCK_LEEWAY_SECONDS (930 s with the defaults), run:");
    println!("   curl -s https://<gatehouse>/.well-known/jwks.json | gatehouse rotate-key retire --old {current}");
    Ok(())
}

fn retire(old: &str, jwks: &[String]) -> Result<(), String> {
    let current = jwks.first().ok_or("the JWKS lists no key")?;
    if current == old {
        return Err("that key still signs: promote the next key first".into());
    }
    if !jwks.iter().any(|x| x == old) {
        return Err(format!(
            "the deployed JWKS does not list {old}: nothing to retire"
        ));
    }
    let keep: Vec<&str> = jwks
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|x| *x != old)
        .collect();
    if keep.is_empty() {
        println!("1. Remove JWT_PREVIOUS_PUBLIC_KEYS from [vars] of wrangler.toml, then `wrangler deploy`.");
    } else {
        println!(
            "1. Set JWT_PREVIOUS_PUBLIC_KEYS = \"{}\" in [vars] of wrangler.toml, then `wrangler deploy`.",
            keep.join(",")
        );
    }
    println!(
        "   Tokens signed by {} are refused from then on.",
        thumbprint_of(old)?
    );
    Ok(())
}

/// The `x` of every key in a JWKS document on stdin, in its order (the signing key first).
fn read_jwks() -> Result<Vec<String>, String> {
    let mut text = String::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the JWKS from stdin: {e}"))?;
    jwks_keys(&text)
}

fn jwks_keys(text: &str) -> Result<Vec<String>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        format!("stdin is not a JWKS document ({e}); pipe in the worker's /.well-known/jwks.json")
    })?;
    doc["keys"]
        .as_array()
        .ok_or("stdin is not a JWKS document: no \"keys\" array")?
        .iter()
        .map(|k| {
            k["x"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| "a key of the JWKS has no x".to_string())
        })
        .collect()
}

fn thumbprint_of(x: &str) -> Result<String, String> {
    let raw = gatehouse::domain::token::decode_key32(x)
        .ok_or_else(|| format!("{x} is not a base64url 32-byte public key"))?;
    Ok(format!("kid {}", thumbprint(&raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const B: &str = "3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08";

    #[test]
    fn reads_the_keys_of_a_jwks_in_order() {
        let doc = format!(r#"{{"keys":[{{"x":"{A}"}},{{"x":"{B}"}}]}}"#);
        assert_eq!(jwks_keys(&doc).unwrap(), vec![A, B]);
        assert!(jwks_keys("{}").is_err());
        assert!(jwks_keys("not json").is_err());
    }

    #[test]
    fn each_step_refuses_the_wrong_order() {
        let jwks = vec![A.to_string(), B.to_string()];
        assert!(promote(B, &jwks).is_ok());
        assert!(promote(A, &jwks).is_err(), "already signing");
        assert!(promote("other", &jwks).is_err(), "not published");
        assert!(retire(B, &jwks).is_ok());
        assert!(retire(A, &jwks).is_err(), "still signing");
    }
}
