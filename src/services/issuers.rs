//! Callers with a trusted external issuer's token (`TRUSTED_ISSUERS`), on proxied routes and
//! `/auth/me`.
//!
//! A token is taken from `Authorization: Bearer` (when its `iss` is not Gatehouse's own) or
//! from an issuer's cookie. Its `iss` chooses the issuer; its `alg` must be one the issuer
//! accepts; its key comes from the issuer's inline keys or from its JWKS, fetched through the
//! [`Fetcher`](crate::primitives::platform::Fetcher) handed in and kept per isolate
//! (`domain::issuers::KeyCache`: `Cache-Control` honoured, an unknown `kid` refetched at most
//! once per `jwks_refetch_seconds`, cached keys kept in use while the JWKS host is down) and,
//! when its `Cache-Control` allows, in the
//! [`DocumentCache`](crate::primitives::platform::DocumentCache) handed in (the Workers Cache
//! API, shared by the isolates of a data centre), where an isolate without fresh keys looks
//! first; a refetch for an unknown `kid` goes past it and replaces its copy. The
//! signature is checked by the [`SignatureVerifier`](crate::primitives::jws::SignatureVerifier)
//! handed in (WebCrypto in the worker). Such a caller never gets a Gatehouse session.

use serde_json::Value;

use crate::domain::account::normalize_email;
use crate::domain::caller::Caller;
use crate::domain::csrf;
use crate::domain::issuers::{
    self, keys_ttl_secs, parse_jwks, select, shared_max_age_secs, Issuer, KeyCache, Keys, Plan,
    Source, JWKS_BODY_LIMIT, JWKS_TIMEOUT_MS,
};
use crate::domain::store::Store;
use crate::primitives::error::{Error, TokenRejection};
use crate::primitives::http::Request;
use crate::primitives::jws::{JwsAlg, PublicKey};
use crate::primitives::platform::Fetched;
use crate::services::Services;

/// The caller of `req` if it carries a trusted issuer's token: `Ok(None)` when it carries none
/// (no credential, an API key, or a bearer token of Gatehouse's own issuer, all for
/// `services::auth`), an error when it carries one that is not valid, or a bearer token of an
/// issuer that is not trusted (401 `untrusted_issuer`; only while `TRUSTED_ISSUERS` is set, so
/// that without it every token is Gatehouse's to judge).
pub async fn authenticate_external<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Option<Caller>, Error> {
    let trusted = &svc.config.issuers;
    if trusted.is_empty() {
        return Ok(None);
    }
    let (token, source, cookie_issuer) = match req.bearer()? {
        Some(t) if t.starts_with(crate::domain::apikey::PREFIX) => return Ok(None),
        Some(t) => (t, Source::Bearer, None),
        None => match trusted
            .cookies()
            .find_map(|(issuer, name)| req.cookie(name).map(|t| (t, issuer)))
        {
            Some((t, issuer)) => (t, Source::Cookie, Some(issuer)),
            None => return Ok(None),
        },
    };
    let Some(iss) = issuers::peek_iss(token) else {
        return match source {
            // Not a JWT with an `iss`: Gatehouse's own check answers it.
            Source::Bearer => Ok(None),
            Source::Cookie => Err(Error::InvalidToken(TokenRejection::Malformed)),
        };
    };
    if source == Source::Bearer && iss == svc.config.tokens.issuer {
        return Ok(None);
    }
    let shown: String = iss.chars().take(80).collect();
    let Some(issuer) = trusted.by_iss(&iss) else {
        return Err(Error::UntrustedIssuer(format!(
            "iss {shown:?} is not a trusted issuer"
        )));
    };
    if let Some(owner) = cookie_issuer.filter(|o| o.name != issuer.name) {
        return Err(Error::UntrustedIssuer(format!(
            "the cookie of issuer {:?} holds a token of {:?}",
            owner.name, issuer.name
        )));
    }
    if !issuer.accepts(source) {
        return Err(Error::UntrustedIssuer(format!(
            "issuer {:?} does not take tokens from the Authorization header",
            issuer.name
        )));
    }
    if source == Source::Cookie && req.method != "GET" && req.method != "HEAD" {
        // A cookie rides along with any page's request: a change needs an allowed origin.
        csrf::check_origin(&svc.config.browser.allowed_origins, req)?;
    }
    verify(svc, issuer, token).await.map(Some)
}

/// Verifies `token` for `issuer` and makes its caller.
async fn verify<S: Store, H>(
    svc: &Services<'_, S, H>,
    issuer: &Issuer,
    token: &str,
) -> Result<Caller, Error> {
    let now = svc.clock.now_ms();
    let read = issuers::read(issuer, token)?;
    if !issuer.verified().contains(token) {
        let key = key_for(svc, issuer, read.kid.as_deref(), read.alg, now).await?;
        let good = svc
            .verifier
            .verify(&key, read.signing_input.as_bytes(), &read.signature)
            .await?;
        if !good {
            return Err(Error::InvalidToken(TokenRejection::Signature));
        }
    }
    let (user, exp) = issuers::check_claims(
        issuer,
        &read.claims,
        now,
        svc.config.tokens.clock_leeway_secs,
    )?;
    issuer.verified().insert(token, exp, now.div_euclid(1000));
    if !issuer.known_users_only {
        let id = format!("{}:{user}", issuer.name);
        return Ok(Caller::from_external_token(
            &issuer.name,
            id,
            issuer.roles(&read.claims),
        ));
    }
    let found = match &issuer.email_claim {
        Some(claim) => {
            let Some(email) = read.claims.get(claim).and_then(Value::as_str) else {
                return Err(Error::InvalidToken(TokenRejection::Claims));
            };
            if read.claims.get("email_verified") == Some(&Value::Bool(false)) {
                return Err(Error::InvalidToken(TokenRejection::UnknownUser));
            }
            let email =
                normalize_email(email).map_err(|_| Error::InvalidToken(TokenRejection::Claims))?;
            svc.store.user_by_email(&email).await?
        }
        None => svc.store.user_by_id(&user).await?,
    };
    let local = found
        .filter(|u| !u.disabled)
        .ok_or(Error::InvalidToken(TokenRejection::UnknownUser))?;
    // The local roles; the token's say nothing.
    Ok(Caller::from_external_token(
        &issuer.name,
        local.id,
        local.roles,
    ))
}

/// The key for a token of `issuer` naming `kid` with `alg`.
async fn key_for<S, H>(
    svc: &Services<'_, S, H>,
    issuer: &Issuer,
    kid: Option<&str>,
    alg: JwsAlg,
    now: i64,
) -> Result<PublicKey, Error> {
    let unknown = || Error::InvalidToken(TokenRejection::UnknownKey);
    let (uri, cache) = match &issuer.keys {
        Keys::Inline(keys) => return select(keys, kid, alg).cloned().ok_or_else(unknown),
        Keys::Remote { uri, cache } => (uri, cache),
    };
    match cache.plan(kid, alg, now, issuer.refetch_secs) {
        Plan::Use(key) => Ok(key),
        Plan::Unknown if cache.last_failed() => Err(Error::IssuerUnavailable(format!(
            "issuer {:?}: the last fetch of its JWKS failed; the next is tried {} s after it",
            issuer.name, issuer.refetch_secs
        ))),
        Plan::Unknown => Err(unknown()),
        Plan::Load => {
            // The shared copy, when it is a JWKS; one that is not is passed over, and the
            // fetch below replaces it.
            let shared = svc.documents.get(uri, JWKS_BODY_LIMIT, now).await;
            if let Some((keys, expires)) =
                shared.and_then(|doc| Some((parse_jwks(&doc.body).ok()?, doc.expires_ms)))
            {
                if let Some(key) = cache.loaded(keys, expires, kid, alg, now) {
                    return Ok(key);
                }
            }
            fetch(svc, issuer, uri, cache, kid, alg, now).await
        }
        Plan::Fetch => fetch(svc, issuer, uri, cache, kid, alg, now).await,
    }
}

/// Fetches `issuer`'s JWKS from `uri` into the isolate's `cache` and, when its `Cache-Control`
/// allows, into the shared cache in place of what is there. The key for `kid`.
async fn fetch<S, H>(
    svc: &Services<'_, S, H>,
    issuer: &Issuer,
    uri: &str,
    cache: &KeyCache,
    kid: Option<&str>,
    alg: JwsAlg,
    now: i64,
) -> Result<PublicKey, Error> {
    let unknown = || Error::InvalidToken(TokenRejection::UnknownKey);
    match fetch_keys(svc, uri).await {
        Ok((keys, fetched)) => {
            let cc = fetched.cache_control.as_deref();
            // The isolate's cache first: a request meanwhile finds the keys there.
            let key = cache.fetched(keys, keys_ttl_secs(cc, issuer.refetch_secs), kid, alg, now);
            if let Some(max_age) = shared_max_age_secs(cc) {
                // A store that fails costs the next isolate a fetch, nothing more (the adapter
                // logs it).
                let _ = svc.documents.put(uri, &fetched.body, max_age, now).await;
            }
            key.ok_or_else(unknown)
        }
        Err(cause) => cache.failed(kid, alg, now).ok_or_else(|| {
            Error::IssuerUnavailable(format!("issuer {:?}: JWKS {uri}: {cause}", issuer.name))
        }),
    }
}

/// Fetches and reads a JWKS: its keys and the answer they were read from.
async fn fetch_keys<S, H>(
    svc: &Services<'_, S, H>,
    uri: &str,
) -> Result<(Vec<PublicKey>, Fetched), String> {
    let fetched = svc
        .fetcher
        .get(uri, JWKS_BODY_LIMIT, JWKS_TIMEOUT_MS)
        .await?;
    if fetched.status != 200 {
        return Err(format!("answered {}", fetched.status));
    }
    let keys = parse_jwks(&fetched.body)?;
    Ok((keys, fetched))
}
