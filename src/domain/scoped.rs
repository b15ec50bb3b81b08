//! Scoped tokens: what `POST /auth/token` may mint for a caller, and the claims it signs.
//!
//! A scoped token can do less than the credential that mints it, never more: a subset of the
//! caller's roles (as held now), a subset of the proxy routes the caller may use, a lifetime
//! no longer than the caller's remaining one nor `SCOPED_TOKEN_MAX_TTL_SECONDS`, and
//! optionally an audience of another service (`SCOPED_TOKEN_AUDIENCES`). It carries the
//! caller's session (`sid`) or the API key it came from (`act.key_id`), so whatever ends that
//! credential ends the token too; a scoped token minting again stays within its own scope.
//!
//! Pure: the caller, the request, the configuration and the time are passed in.

use serde::Deserialize;

use crate::domain::caller::Caller;
use crate::domain::config::ScopedTokens;
use crate::domain::proxy::Routes;
use crate::domain::token::{AccessClaims, Actor};
use crate::domain::vars::valid_role;
use crate::primitives::error::Error;

/// RFC 8693 section 3's token type identifier of a JWT, the `issued_token_type` of the answer.
pub const ISSUED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Most roles or routes one request may name.
pub const MAX_NAMES: usize = 32;

/// The body of `POST /auth/token`; every member is optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MintRequest {
    /// The roles the token carries; default: every role the caller carries.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// The proxy routes (route names) the token may use; default: the caller's.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// The lifetime in seconds; default: the longest allowed.
    #[serde(default)]
    pub ttl: Option<i64>,
    /// Another service's audience (one of `SCOPED_TOKEN_AUDIENCES`); default: Gatehouse's.
    #[serde(default)]
    pub aud: Option<String>,
}

/// What a mint was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The roles, each once, in the order asked.
    pub roles: Vec<String>,
    /// The routes; `None`: every route the roles allow (the caller had no route limit and
    /// asked for none).
    pub routes: Option<Vec<String>>,
    /// The lifetime, seconds.
    pub ttl_secs: i64,
    /// Another service's audience; `None`: Gatehouse's own.
    pub aud: Option<String>,
}

impl Grant {
    /// RFC 8693 `scope`: `role:<name>` for each role, then `route:<name>` for each route,
    /// space-separated.
    pub fn scope(&self) -> String {
        let roles = self.roles.iter().map(|r| format!("role:{r}"));
        let routes = self.routes.iter().flatten().map(|r| format!("route:{r}"));
        roles.chain(routes).collect::<Vec<_>>().join(" ")
    }

    /// The claims of the token: `sub`, `sid` and `act` from `caller`, the grant's roles,
    /// routes and scope. `issuer` and `audience` are Gatehouse's (`audience` is used when the
    /// grant names no other one).
    pub fn claims(
        &self,
        caller: &Caller,
        issuer: &str,
        audience: &str,
        jti: String,
    ) -> AccessClaims {
        AccessClaims {
            iss: issuer.to_string(),
            aud: self.aud.clone().unwrap_or_else(|| audience.to_string()),
            sub: caller.user_id.clone(),
            jti,
            roles: self.roles.clone(),
            sid: caller.session_id.clone(),
            act: Some(Actor {
                sub: caller.user_id.clone(),
                key_id: caller.key_id.clone(),
            }),
            scope: Some(self.scope()),
            routes: self.routes.clone(),
        }
    }
}

/// Each name of `names` once, in order, each checked by `valid`, at most [`MAX_NAMES`].
fn names(field: &str, names: &[String], valid: fn(&str) -> bool) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !valid(name) {
            return Err(Error::BadRequest(format!(
                "{field}: {name:?} is not a {} name",
                field.trim_end_matches('s')
            )));
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    if out.len() > MAX_NAMES {
        return Err(Error::BadRequest(format!("{field}: at most {MAX_NAMES}")));
    }
    Ok(out)
}

/// What `caller` may mint of `ask` at `now_ms` (Unix ms), with `limits` and the configured
/// proxy `routes`.
///
/// Bad input first, 400 `bad_request` naming the member: a malformed role or route name, a
/// route that is not configured, an audience not in `SCOPED_TOKEN_AUDIENCES`, a `ttl` below 1,
/// above `SCOPED_TOKEN_MAX_TTL_SECONDS` or beyond the caller's own expiry. Then what the caller
/// does not hold: a role it does not carry, 403 `insufficient_role`; a route outside its
/// scope, 403 `scope_violation`.
pub fn grant(
    caller: &Caller,
    ask: &MintRequest,
    limits: &ScopedTokens,
    routes: &Routes,
    now_ms: i64,
) -> Result<Grant, Error> {
    let roles = match &ask.roles {
        Some(asked) => names("roles", asked, valid_role)?,
        None => caller.roles.clone(),
    };
    let asked_routes = match &ask.routes {
        Some(asked) => {
            let asked = names(
                "routes",
                asked,
                crate::domain::proxy::routes::valid_route_name,
            )?;
            if let Some(unknown) = asked.iter().find(|r| routes.iter().all(|c| &c.name != *r)) {
                return Err(Error::BadRequest(format!(
                    "routes: {unknown:?} is not a configured proxy route"
                )));
            }
            Some(asked)
        }
        None => None,
    };
    let aud = match &ask.aud {
        None => None,
        Some(aud) if limits.audiences.contains(aud) => Some(aud.clone()),
        Some(aud) => {
            return Err(Error::BadRequest(format!(
                "aud: {:?} is not an audience listed in SCOPED_TOKEN_AUDIENCES",
                aud.chars().take(64).collect::<String>()
            )))
        }
    };
    let longest = longest_ttl(caller, limits, now_ms);
    let ttl_secs = match ask.ttl {
        Some(ttl) if ttl >= 1 && ttl <= longest => ttl,
        None if longest >= 1 => longest,
        _ if longest < 1 => {
            return Err(Error::BadRequest(
                "ttl: the credential expires within a second; nothing can be minted from it".into(),
            ))
        }
        _ => {
            return Err(Error::BadRequest(format!(
                "ttl: whole seconds from 1 to {longest} (SCOPED_TOKEN_MAX_TTL_SECONDS or the credential's remaining lifetime)"
            )))
        }
    };
    if roles.iter().any(|r| !caller.has_role(r)) {
        return Err(Error::InsufficientRole);
    }
    let routes = match (asked_routes, &caller.scopes) {
        (Some(asked), _) if asked.iter().any(|r| !caller.may_use_route(r)) => {
            return Err(Error::ScopeViolation)
        }
        (Some(asked), _) => Some(asked),
        (None, scopes) => scopes.clone(),
    };
    Ok(Grant {
        roles,
        routes,
        ttl_secs,
        aud,
    })
}

/// The longest lifetime `caller` may mint at `now_ms`, seconds: `SCOPED_TOKEN_MAX_TTL_SECONDS`,
/// and no later than the caller's own end (whole seconds, so the new `exp` is never after it).
pub fn longest_ttl(caller: &Caller, limits: &ScopedTokens, now_ms: i64) -> i64 {
    match caller.expires_at {
        Some(end) => {
            let remaining = end.div_euclid(1000) - now_ms.div_euclid(1000);
            remaining.min(limits.max_ttl_secs)
        }
        None => limits.max_ttl_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::Config;
    use crate::domain::token::AccessClaims;

    const NOW: i64 = 1_800_000_000_000;

    /// A caller of an access token expiring at `exp_ms` carrying `roles`.
    fn caller(roles: &[&str], exp_ms: i64) -> Caller {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let claims = AccessClaims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: "usr_a".into(),
            jti: "j".into(),
            roles: roles.clone(),
            sid: Some("fam_a".into()),
            act: None,
            scope: None,
            routes: None,
        };
        Caller::from_access_token(claims, &roles, exp_ms)
    }

    fn config() -> Config {
        Config::for_tests(&[])
    }

    #[test]
    fn at_most_32_names_after_repeats_count_once() {
        let config = config();
        let held: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        let held_refs: Vec<&str> = held.iter().map(String::as_str).collect();
        let who = caller(&held_refs, NOW + 900_000);
        let ask = |n: usize, repeat: bool| MintRequest {
            roles: Some(
                held[..n]
                    .iter()
                    .chain(if repeat { held[..n].iter() } else { [].iter() })
                    .cloned()
                    .collect(),
            ),
            ..MintRequest::default()
        };
        let limits = &config.tokens.scoped;
        let routes = &config.proxy.routes;
        let granted = grant(&who, &ask(MAX_NAMES, true), limits, routes, NOW).unwrap();
        assert_eq!(granted.roles.len(), MAX_NAMES);
        assert!(matches!(
            grant(&who, &ask(MAX_NAMES + 1, false), limits, routes, NOW),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn the_longest_lifetime_counts_whole_seconds_and_never_goes_below_the_callers_end() {
        let config = config();
        let limits = &config.tokens.scoped;
        assert_eq!(limits.max_ttl_secs, 300);
        assert_eq!(longest_ttl(&caller(&[], NOW + 900_000), limits, NOW), 300);
        assert_eq!(longest_ttl(&caller(&[], NOW + 120_000), limits, NOW), 120);
        // 0.9 s before NOW the token is issued at the whole second before (`iat` is NOW - 1 s),
        // so 121 s end exactly at the caller's end, and not a second later.
        assert_eq!(
            longest_ttl(&caller(&[], NOW + 120_000), limits, NOW - 900),
            121
        );
        assert_eq!(longest_ttl(&caller(&[], NOW + 120_999), limits, NOW), 120);
        assert_eq!(longest_ttl(&caller(&[], NOW), limits, NOW), 0);
        assert!(longest_ttl(&caller(&[], NOW - 5_000), limits, NOW) < 0);
    }

    #[test]
    fn scope_lists_roles_then_routes() {
        let grant = Grant {
            roles: vec!["user".into(), "editor".into()],
            routes: Some(vec!["cms".into()]),
            ttl_secs: 60,
            aud: None,
        };
        assert_eq!(grant.scope(), "role:user role:editor route:cms");
        let unlimited = Grant {
            routes: None,
            roles: Vec::new(),
            ..grant
        };
        assert_eq!(unlimited.scope(), "");
    }
}
