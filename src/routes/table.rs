//! The one route table of Gatehouse's own endpoints: `(method, path pattern) → endpoint`.
//!
//! A pattern is a path whose `{}` segments match any one non-empty segment, handed to the
//! handler in order. `GET` rows answer `HEAD` too. A path some row matches, with a method no
//! matching row lists, is a 405 whose `Allow` lists the methods of the matching rows in table
//! order; a path no row matches is a 404.

use std::borrow::Cow;

use crate::primitives::error::Error;
use crate::routes::{assets, console};

/// What the admin API does (`/admin/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOp {
    /// `GET /admin/users`
    ListUsers,
    /// `POST /admin/users`
    CreateUser,
    /// `GET /admin/users/{id}`
    ShowUser,
    /// `POST /admin/users/{id}/disable`
    Disable,
    /// `POST /admin/users/{id}/enable`
    Enable,
    /// `PUT /admin/users/{id}/roles`
    SetRoles,
    /// `POST /admin/users/{id}/password`
    ResetPassword,
    /// `GET /admin/users/{id}/sessions`
    ListSessions,
    /// `DELETE /admin/users/{id}/mfa`
    ResetMfa,
    /// `DELETE /admin/users/{id}/sessions`
    RevokeAllSessions,
    /// `DELETE /admin/users/{id}/sessions/{fid}`
    RevokeSession,
    /// `GET /admin/api-keys`
    ListKeys,
    /// `POST /admin/api-keys`
    MintKey,
    /// `DELETE /admin/api-keys/{id}`
    RevokeKey,
    /// `GET /admin/audit`
    Audit,
    /// `GET /admin/config`
    Config,
    /// `GET /admin/rate-limits`
    RateLimits,
    /// `GET /admin/users/{id}/passkeys`
    ListPasskeys,
    /// `DELETE /admin/users/{id}/passkeys/{pid}`
    DeletePasskey,
}

/// Each endpoint Gatehouse answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /.well-known/jwks.json`
    Jwks,
    /// `GET /auth/me`
    Me,
    /// `GET /auth/session`
    SessionCsrf,
    /// `GET /client/gatehouse.js`, `/client/gatehouse.d.ts` and `/openapi.json`
    ClientAsset,
    /// `POST /auth/register`
    Register,
    /// `POST /auth/login`
    Login,
    /// `POST /auth/refresh`
    Refresh,
    /// `POST /auth/logout`
    Logout,
    /// `POST /auth/password`
    ChangePassword,
    /// `GET /auth/sessions`
    ListOwnSessions,
    /// `DELETE /auth/sessions/{id}`
    RevokeOwnSession,
    /// `GET /auth/whoami`
    Whoami,
    /// `POST /auth/token`
    MintToken,
    /// `GET /auth/mfa`
    MfaStatus,
    /// `POST /auth/mfa/totp/start`
    TotpStart,
    /// `POST /auth/mfa/totp/confirm`
    TotpConfirm,
    /// `DELETE /auth/mfa/totp`
    TotpRemove,
    /// `POST /auth/mfa/recovery-codes`
    RecoveryCodes,
    /// `POST /auth/webauthn/register/options`
    PasskeyRegisterOptions,
    /// `POST /auth/webauthn/register/verify`
    PasskeyRegisterVerify,
    /// `POST /auth/webauthn/login/options`
    PasskeyLoginOptions,
    /// `POST /auth/webauthn/login/verify`
    PasskeyLoginVerify,
    /// `GET /auth/passkeys`
    ListOwnPasskeys,
    /// `DELETE /auth/passkeys/{id}`
    DeleteOwnPasskey,
    /// `GET /admin/console/` and its script and style sheet
    ConsoleAsset,
    /// `GET /admin/console` (redirects to `/admin/console/`)
    ConsoleRedirect,
    /// `POST /admin/session`
    ConsoleSignIn,
    /// `GET /admin/session`
    ConsoleSession,
    /// `DELETE /admin/session`
    ConsoleSignOut,
    /// `/admin/…`
    Admin(AdminOp),
}

/// The table, in the order `Allow` lists methods.
#[rustfmt::skip]
const TABLE: &[(&str, &str, Endpoint)] = &[
    ("GET",    "/healthz",                     Endpoint::Healthz),
    ("GET",    "/readyz",                      Endpoint::Readyz),
    ("GET",    "/.well-known/jwks.json",       Endpoint::Jwks),
    ("GET",    "/auth/me",                     Endpoint::Me),
    ("GET",    "/auth/session",                Endpoint::SessionCsrf),
    ("GET",    "/auth/whoami",                 Endpoint::Whoami),
    ("GET",    assets::MODULE_PATH,            Endpoint::ClientAsset),
    ("GET",    assets::TYPES_PATH,             Endpoint::ClientAsset),
    ("GET",    assets::OPENAPI_PATH,           Endpoint::ClientAsset),
    ("POST",   "/auth/register",               Endpoint::Register),
    ("POST",   "/auth/login",                  Endpoint::Login),
    ("POST",   "/auth/refresh",                Endpoint::Refresh),
    ("POST",   "/auth/logout",                 Endpoint::Logout),
    ("POST",   "/auth/password",               Endpoint::ChangePassword),
    ("POST",   "/auth/token",                  Endpoint::MintToken),
    ("GET",    "/auth/sessions",               Endpoint::ListOwnSessions),
    ("DELETE", "/auth/sessions/{}",            Endpoint::RevokeOwnSession),
    ("GET",    "/auth/mfa",                    Endpoint::MfaStatus),
    ("POST",   "/auth/mfa/totp/start",         Endpoint::TotpStart),
    ("POST",   "/auth/mfa/totp/confirm",       Endpoint::TotpConfirm),
    ("DELETE", "/auth/mfa/totp",               Endpoint::TotpRemove),
    ("POST",   "/auth/mfa/recovery-codes",     Endpoint::RecoveryCodes),
    ("POST",   "/auth/webauthn/register/options", Endpoint::PasskeyRegisterOptions),
    ("POST",   "/auth/webauthn/register/verify",  Endpoint::PasskeyRegisterVerify),
    ("POST",   "/auth/webauthn/login/options",    Endpoint::PasskeyLoginOptions),
    ("POST",   "/auth/webauthn/login/verify",     Endpoint::PasskeyLoginVerify),
    ("GET",    "/auth/passkeys",               Endpoint::ListOwnPasskeys),
    ("DELETE", "/auth/passkeys/{}",            Endpoint::DeleteOwnPasskey),
    ("GET",    "/admin/users",                 Endpoint::Admin(AdminOp::ListUsers)),
    ("POST",   "/admin/users",                 Endpoint::Admin(AdminOp::CreateUser)),
    ("GET",    "/admin/users/{}",              Endpoint::Admin(AdminOp::ShowUser)),
    ("POST",   "/admin/users/{}/disable",      Endpoint::Admin(AdminOp::Disable)),
    ("POST",   "/admin/users/{}/enable",       Endpoint::Admin(AdminOp::Enable)),
    ("PUT",    "/admin/users/{}/roles",        Endpoint::Admin(AdminOp::SetRoles)),
    ("POST",   "/admin/users/{}/password",     Endpoint::Admin(AdminOp::ResetPassword)),
    ("GET",    "/admin/users/{}/sessions",     Endpoint::Admin(AdminOp::ListSessions)),
    ("DELETE", "/admin/users/{}/sessions",     Endpoint::Admin(AdminOp::RevokeAllSessions)),
    ("DELETE", "/admin/users/{}/sessions/{}",  Endpoint::Admin(AdminOp::RevokeSession)),
    ("DELETE", "/admin/users/{}/mfa",          Endpoint::Admin(AdminOp::ResetMfa)),
    ("GET",    "/admin/users/{}/passkeys",     Endpoint::Admin(AdminOp::ListPasskeys)),
    ("DELETE", "/admin/users/{}/passkeys/{}",  Endpoint::Admin(AdminOp::DeletePasskey)),
    ("GET",    "/admin/api-keys",              Endpoint::Admin(AdminOp::ListKeys)),
    ("POST",   "/admin/api-keys",              Endpoint::Admin(AdminOp::MintKey)),
    ("DELETE", "/admin/api-keys/{}",           Endpoint::Admin(AdminOp::RevokeKey)),
    ("GET",    "/admin/audit",                 Endpoint::Admin(AdminOp::Audit)),
    ("GET",    "/admin/config",                Endpoint::Admin(AdminOp::Config)),
    ("GET",    "/admin/rate-limits",           Endpoint::Admin(AdminOp::RateLimits)),
    ("POST",   "/admin/session",               Endpoint::ConsoleSignIn),
    ("GET",    "/admin/session",               Endpoint::ConsoleSession),
    ("DELETE", "/admin/session",               Endpoint::ConsoleSignOut),
    ("GET",    console::BARE_PATH,             Endpoint::ConsoleRedirect),
    ("GET",    console::PAGE_PATH,             Endpoint::ConsoleAsset),
    ("GET",    console::SCRIPT_PATH,           Endpoint::ConsoleAsset),
    ("GET",    console::STYLE_PATH,            Endpoint::ConsoleAsset),
];

/// Every row of the table as `(method, path pattern)`, `{}` standing for a segment (`GET` rows
/// answer `HEAD` too); `tests/openapi.rs` holds docs/openapi.yaml to them.
pub fn rows() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE.iter().map(|(method, pattern, _)| (*method, *pattern))
}

/// The `{}` segments of `path` when it matches `pattern`.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<Vec<&'p str>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some("{}"), Some(segment)) if !segment.is_empty() => params.push(segment),
            (Some(literal), Some(segment)) if literal != "{}" && literal == segment => {}
            _ => return None,
        }
    }
}

/// The endpoint for `method` on `path`, with the path's `{}` segments.
pub fn find<'p>(method: &str, path: &'p str) -> Result<(Endpoint, Vec<&'p str>), Error> {
    let mut allow: Vec<&'static str> = Vec::new();
    for (row_method, pattern, endpoint) in TABLE {
        let Some(params) = matches(pattern, path) else {
            continue;
        };
        let methods: &[&'static str] = if *row_method == "GET" {
            &["GET", "HEAD"]
        } else {
            std::slice::from_ref(row_method)
        };
        if methods.contains(&method) {
            return Ok((*endpoint, params));
        }
        for m in methods {
            if !allow.contains(m) {
                allow.push(m);
            }
        }
    }
    if allow.is_empty() {
        Err(Error::NotFound)
    } else {
        Err(Error::MethodNotAllowed(Cow::Owned(allow.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_their_segments() {
        assert_eq!(find("GET", "/healthz"), Ok((Endpoint::Healthz, vec![])));
        assert_eq!(find("HEAD", "/auth/me"), Ok((Endpoint::Me, vec![])));
        assert_eq!(
            find("DELETE", "/admin/users/usr_1/sessions/fam_2"),
            Ok((
                Endpoint::Admin(AdminOp::RevokeSession),
                vec!["usr_1", "fam_2"]
            ))
        );
        assert_eq!(
            find("DELETE", "/auth/sessions/fam_1"),
            Ok((Endpoint::RevokeOwnSession, vec!["fam_1"]))
        );
    }

    #[test]
    fn allow_lists_the_methods_of_every_matching_row() {
        let allow = |method, path| match find(method, path) {
            Err(Error::MethodNotAllowed(allow)) => allow.into_owned(),
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(allow("POST", "/healthz"), "GET, HEAD");
        assert_eq!(allow("GET", "/auth/login"), "POST");
        assert_eq!(allow("DELETE", "/admin/users"), "GET, HEAD, POST");
        assert_eq!(
            allow("POST", "/admin/users/u/sessions"),
            "GET, HEAD, DELETE"
        );
        assert_eq!(allow("GET", "/admin/api-keys/k"), "DELETE");
        assert_eq!(allow("POST", "/auth/sessions"), "GET, HEAD");
        assert_eq!(allow("GET", "/auth/token"), "POST");
        assert_eq!(allow("PUT", "/admin/session"), "POST, GET, HEAD, DELETE");
        assert_eq!(allow("POST", "/admin/console/"), "GET, HEAD");
    }

    #[test]
    fn empty_segments_and_unknown_paths_are_not_found() {
        for path in [
            "/nope",
            "/auth/sessions/",
            "/auth/sessions/a/b",
            "/auth/sessionsx",
            "/admin/",
            "/admin/users/",
            "/admin/users//disable",
            "/admin/users/u/sessions/",
            "/healthz/",
            "/admin/console/x",
            "/admin/console//",
        ] {
            assert_eq!(find("GET", path), Err(Error::NotFound), "{path}");
        }
    }
}
