//! Typed configuration, parsed once from Worker vars and secrets and validated up front.
//!
//! Every error names the variable it is about. Values of secret variables never appear in an
//! error, a log line or `Debug` output.

use crate::domain::liveness::LivenessCache;
use crate::domain::proxy::Routes;
use crate::domain::token::{decode_key32, KeySet, VerifyCache};
use crate::domain::vars::{get, int_in, valid_role, Lookup};
use crate::primitives::cookies::SameSite;
use crate::primitives::cors::AllowedOrigins;
use crate::primitives::error::ConfigError;
use crate::primitives::secrets::{Pepper, Secret};

/// Most PBKDF2 iterations Workers' WebCrypto accepts in production (local workerd accepts
/// more, so this limit is enforced here rather than discovered after deploying).
pub const MAX_PBKDF2_ITERATIONS: u32 = 100_000;
/// Fewest PBKDF2 iterations accepted.
pub const MIN_PBKDF2_ITERATIONS: u32 = 10_000;

/// Longest `REVOCATION_DELAY_SECONDS` accepted.
pub const MAX_REVOCATION_DELAY_SECONDS: i64 = 300;

/// Whether anyone may create an account through `POST /auth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Accounts are created by operators only (the default).
    Closed,
}

/// What `POST /auth/register` tells about an email that already has an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationEnumeration {
    /// `409 email_taken` (the default): clear to users, and tells anyone who has an account.
    Reveal,
    /// The same `202` for a new and a taken email, no session either way: the new user logs in
    /// next. Nobody learns from registration whether an account exists.
    Hide,
}

/// The whole, validated configuration, by section.
#[derive(Debug)]
pub struct Config {
    /// Access tokens, refresh families and the keys that sign them.
    pub tokens: Tokens,
    /// Accounts: registration, roles, passwords, API keys.
    pub accounts: Accounts,
    /// Browser mode: the refresh cookie, CORS and CSRF.
    pub browser: Browser,
    /// The CMS proxy.
    pub proxy: Proxy,
    /// Sizes, rate limits and retention.
    pub limits: Limits,
    /// Trusted external issuers (`TRUSTED_ISSUERS`, default none).
    pub issuers: crate::domain::issuers::TrustedIssuers,
    /// Passkeys (`WEBAUTHN_*`); `None`: off, the passkey endpoints answer 404
    /// `passkeys_disabled`.
    pub webauthn: Option<crate::domain::webauthn::RelyingParty>,
}

/// Access tokens, refresh families and the keys that sign them.
#[derive(Debug)]
pub struct Tokens {
    /// `iss` of access tokens (`JWT_ISSUER`, default `gatehouse`).
    pub issuer: String,
    /// `aud` of access tokens (`JWT_AUDIENCE`, default: the issuer).
    pub audience: String,
    /// Access-token lifetime in seconds (`ACCESS_TOKEN_TTL`, default 900).
    pub access_ttl_secs: i64,
    /// Absolute lifetime of a refresh family in seconds (`REFRESH_TOKEN_TTL`, default 30 days).
    pub refresh_ttl_secs: i64,
    /// Idle timeout of a refresh family in seconds (`REFRESH_IDLE_TIMEOUT`, default 7 days).
    pub refresh_idle_secs: i64,
    /// Grace window for replays of a just-rotated refresh token (`REFRESH_GRACE_SECONDS`,
    /// default 10, at least 1).
    pub refresh_grace_secs: i64,
    /// Allowed clock skew when checking `exp`/`iat` (`CLOCK_LEEWAY_SECONDS`, default 30).
    pub clock_leeway_secs: i64,
    /// Signing key (`JWT_SIGNING_KEY`, secret) and previous public keys
    /// (`JWT_PREVIOUS_PUBLIC_KEYS`).
    pub keys: KeySet,
    /// Access tokens verified by this isolate (lives as long as the keys).
    pub verify_cache: VerifyCache,
    /// How long this isolate may answer from what it read of a session, user or API key
    /// before reading it again, in seconds (`REVOCATION_DELAY_SECONDS`, default 10, 0: read
    /// on every request, at most 300): the longest a revocation, a disable or a role change
    /// takes to reach every request.
    pub revocation_delay_secs: i64,
    /// Liveness of sessions, users and API keys read by this isolate (see
    /// [`crate::domain::liveness`]).
    pub liveness_cache: LivenessCache,
    /// What `POST /auth/token` may mint (`SCOPED_TOKEN_*`).
    pub scoped: ScopedTokens,
}

/// Limits of scoped tokens (`POST /auth/token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedTokens {
    /// Longest lifetime of a scoped token, seconds (`SCOPED_TOKEN_MAX_TTL_SECONDS`, default
    /// 300, 1 – 86,400); a token never outlives the credential it was minted from either.
    pub max_ttl_secs: i64,
    /// The other services a scoped token may be minted for (`aud`), besides Gatehouse itself
    /// (`SCOPED_TOKEN_AUDIENCES`, comma-separated, default none). Gatehouse accepts only
    /// tokens of its own `JWT_AUDIENCE`, so a token for one of these is refused by Gatehouse.
    pub audiences: Vec<String>,
}

/// Most entries of `SCOPED_TOKEN_AUDIENCES`.
pub const MAX_SCOPED_AUDIENCES: usize = 32;

/// Accounts: registration, roles, passwords, API keys.
#[derive(Debug)]
pub struct Accounts {
    /// `REGISTRATION`: `open` or `closed` (default).
    pub registration: Registration,
    /// `REGISTRATION_ENUMERATION`: `reveal` (default) or `hide`.
    pub registration_enumeration: RegistrationEnumeration,
    /// Roles of self-registered users (`DEFAULT_ROLES`, comma-separated, default `user`).
    pub default_roles: Vec<String>,
    /// PBKDF2 iterations for new hashes (`PBKDF2_ITERATIONS`, default and maximum 100,000).
    pub pbkdf2_iterations: u32,
    /// `API_KEY_PEPPER` (secret, at least 32 characters); `None`: API keys are switched off.
    pub api_key_pepper: Option<Pepper>,
    /// The key of the hashes that name emails and clients in counters and logs.
    pub subject_key: crate::domain::subject::SubjectKey,
    /// `MFA_ENCRYPTION_KEY` (secret, 32 bytes base64url): seals TOTP secrets and keys the
    /// recovery-code hashes. `None`: the TOTP endpoints answer 403 `mfa_unavailable`.
    pub mfa_key: Option<crate::domain::mfa::MfaKey>,
    /// `TOTP_ISSUER` (default `Gatehouse`): the name authenticator apps show for the account.
    pub totp_issuer: String,
}

/// Browser mode: the refresh cookie, CORS and CSRF.
#[derive(Debug)]
pub struct Browser {
    /// `SameSite` of the refresh cookie (`COOKIE_SAMESITE`, default `Lax`).
    pub cookie_same_site: SameSite,
    /// Origins of the pages that may call Gatehouse from a browser with credentials
    /// (`ALLOWED_ORIGINS`, comma-separated `scheme://host[:port]`, default none).
    pub allowed_origins: AllowedOrigins,
    /// Key of the session-bound CSRF tokens, derived from the signing key.
    pub csrf_key: crate::domain::csrf::CsrfKey,
    /// Key of the device cookies, derived from the signing key.
    pub device_key: crate::domain::device::DeviceKey,
}

/// The CMS proxy.
#[derive(Debug)]
pub struct Proxy {
    /// Proxied routes (`ROUTES`, default none).
    pub routes: Routes,
    /// HMAC key of the identity signature on proxied requests (`UPSTREAM_SIGNING_SECRET`,
    /// secret; required when `ROUTES` is set).
    pub upstream_signing_secret: Option<Secret>,
}

/// Sizes, rate limits and retention.
#[derive(Debug)]
pub struct Limits {
    /// Largest accepted request body in bytes (`MAX_BODY_BYTES`, default 65,536).
    pub max_body_bytes: usize,
    /// Rate limits (`RATE_LIMIT_*`).
    pub rate: RateLimits,
    /// Audit events older than this many days are pruned (`AUDIT_RETENTION_DAYS`, default 90).
    pub audit_retention_days: i64,
    /// Ended sessions are kept this many days before pruning (`SESSION_RETENTION_DAYS`,
    /// default 7), so a late replay still reads as reuse and operators can see them.
    pub session_retention_days: i64,
}

/// Attempts allowed per fixed window; 0 switches a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Window length in seconds (`RATE_LIMIT_WINDOW_SECONDS`, default 900).
    pub window_secs: i64,
    /// Logins per account (email) and client network per window
    /// (`RATE_LIMIT_LOGIN_PER_ACCOUNT`, default 10).
    pub login_per_account: i64,
    /// Logins per account from all networks together per window, except from a browser with
    /// the account's device cookie (`RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL`, default 50).
    pub login_per_account_total: i64,
    /// Logins per client IP per window (`RATE_LIMIT_LOGIN_PER_IP`, default 50).
    pub login_per_ip: i64,
    /// Registrations per client IP per window (`RATE_LIMIT_REGISTER_PER_IP`, default 10).
    pub register_per_ip: i64,
    /// Refreshes per session family per window (`RATE_LIMIT_REFRESH_PER_FAMILY`, default 60).
    pub refresh_per_family: i64,
    /// Scoped tokens minted per credential (session, API key, or user) per window
    /// (`RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL`, default 60).
    pub token_mint_per_credential: i64,
}

impl Config {
    /// The body limit of a request on `route` (found once, by the adapter): the route's, or
    /// `MAX_BODY_BYTES`.
    pub fn body_limit(&self, route: Option<&crate::domain::proxy::Route>) -> usize {
        route.map_or(self.limits.max_body_bytes, |r| r.max_body_bytes)
    }

    /// Parses and validates every variable. `lookup` answers vars and secrets alike. Sections
    /// are read in a fixed order, so the first invalid variable is the one reported.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let (seed, tokens) = Tokens::parse(lookup)?;
        let accounts = Accounts::parse(lookup, &seed)?;
        let limits = Limits::parse(lookup)?;
        let browser = Browser {
            cookie_same_site: cookie_same_site(lookup)?,
            allowed_origins: AllowedOrigins::parse(get(lookup, "ALLOWED_ORIGINS").as_deref())?,
            csrf_key: crate::domain::csrf::CsrfKey::derive(&seed),
            device_key: crate::domain::device::DeviceKey::derive(&seed),
        };
        let routes = match get(lookup, "ROUTES") {
            Some(raw) => Routes::parse(&raw, lookup, limits.max_body_bytes)?,
            None => Routes::default(),
        };
        let proxy = Proxy {
            upstream_signing_secret: upstream_signing_secret(lookup, &routes)?,
            routes,
        };
        let issuers = crate::domain::issuers::TrustedIssuers::parse(lookup, &tokens.issuer)?;
        let webauthn = crate::domain::webauthn::RelyingParty::parse(lookup)?;
        Ok(Self {
            tokens,
            accounts,
            browser,
            proxy,
            limits,
            issuers,
            webauthn,
        })
    }

    /// `REVOCATION_DELAY_SECONDS` in milliseconds.
    pub fn revocation_delay_ms(&self) -> i64 {
        self.tokens.revocation_delay_secs * 1000
    }

    /// Whether `origin` (an `Origin` header's value) is listed in `ALLOWED_ORIGINS`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.browser.allowed_origins.allows(origin)
    }

    /// A configuration for tests: the given vars over a fixed signing key.
    #[cfg(any(test, feature = "selftest"))]
    pub fn for_tests(vars: &[(&str, &str)]) -> Self {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    (name == "JWT_SIGNING_KEY")
                        .then(|| crate::primitives::encoding::b64url(&[42u8; 32]))
                })
        };
        Self::from_lookup(&lookup).expect("test configuration is valid")
    }
}

/// `JWT_ISSUER` and `JWT_AUDIENCE` (default: the issuer).
fn token_names(lookup: Lookup<'_>) -> Result<(String, String), ConfigError> {
    let issuer = get(lookup, "JWT_ISSUER").unwrap_or_else(|| "gatehouse".into());
    if issuer.len() > 256 {
        return Err(ConfigError::new("JWT_ISSUER", "longer than 256 characters"));
    }
    let audience = get(lookup, "JWT_AUDIENCE").unwrap_or_else(|| issuer.clone());
    if audience.len() > 256 {
        return Err(ConfigError::new(
            "JWT_AUDIENCE",
            "longer than 256 characters",
        ));
    }
    Ok((issuer, audience))
}

impl Tokens {
    /// `JWT_*`, the lifetimes and the signing keys; also the signing seed, from which the
    /// other keys are derived.
    fn parse(lookup: Lookup<'_>) -> Result<([u8; 32], Self), ConfigError> {
        let (issuer, audience) = token_names(lookup)?;
        let access_ttl_secs = int_in(lookup, "ACCESS_TOKEN_TTL", 900, 60, 86_400)?;
        let refresh_ttl_secs = int_in(
            lookup,
            "REFRESH_TOKEN_TTL",
            30 * 86_400,
            3_600,
            400 * 86_400,
        )?;
        let refresh_idle_secs = int_in(
            lookup,
            "REFRESH_IDLE_TIMEOUT",
            7 * 86_400,
            300,
            400 * 86_400,
        )?;
        if refresh_idle_secs > refresh_ttl_secs {
            return Err(ConfigError::new(
                "REFRESH_IDLE_TIMEOUT",
                format!("must not exceed REFRESH_TOKEN_TTL ({refresh_ttl_secs})"),
            ));
        }
        let refresh_grace_secs = int_in(lookup, "REFRESH_GRACE_SECONDS", 10, 1, 120)?;
        let clock_leeway_secs = int_in(lookup, "CLOCK_LEEWAY_SECONDS", 30, 0, 300)?;
        let (seed, keys) = signing_keys(lookup)?;
        let revocation_delay_secs = int_in(
            lookup,
            "REVOCATION_DELAY_SECONDS",
            10,
            0,
            MAX_REVOCATION_DELAY_SECONDS,
        )?;
        let scoped = ScopedTokens {
            max_ttl_secs: int_in(lookup, "SCOPED_TOKEN_MAX_TTL_SECONDS", 300, 1, 86_400)?,
            audiences: scoped_audiences(lookup, &audience)?,
        };
        let tokens = Self {
            scoped,
            issuer,
            audience,
            access_ttl_secs,
            refresh_ttl_secs,
            refresh_idle_secs,
            refresh_grace_secs,
            clock_leeway_secs,
            keys,
            verify_cache: VerifyCache::default(),
            revocation_delay_secs,
            liveness_cache: LivenessCache::default(),
        };
        Ok((seed, tokens))
    }
}

impl Accounts {
    /// `REGISTRATION`, `DEFAULT_ROLES`, `PBKDF2_ITERATIONS`, `API_KEY_PEPPER`.
    fn parse(lookup: Lookup<'_>, seed: &[u8; 32]) -> Result<Self, ConfigError> {
        Ok(Self {
            registration: registration(lookup)?,
            registration_enumeration: registration_enumeration(lookup)?,
            default_roles: default_roles(lookup)?,
            pbkdf2_iterations: int_in(
                lookup,
                "PBKDF2_ITERATIONS",
                MAX_PBKDF2_ITERATIONS,
                MIN_PBKDF2_ITERATIONS,
                MAX_PBKDF2_ITERATIONS,
            )?,
            api_key_pepper: api_key_pepper(lookup)?,
            subject_key: crate::domain::subject::SubjectKey::derive(seed),
            mfa_key: mfa_key(lookup)?,
            totp_issuer: totp_issuer(lookup)?,
        })
    }
}

impl Limits {
    /// `MAX_BODY_BYTES`, `RATE_LIMIT_*`, `*_RETENTION_DAYS`.
    fn parse(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            max_body_bytes: int_in(lookup, "MAX_BODY_BYTES", 65_536, 1_024, 1_048_576)?,
            rate: RateLimits::parse(lookup)?,
            audit_retention_days: int_in(lookup, "AUDIT_RETENTION_DAYS", 90, 1, 3_650)?,
            session_retention_days: int_in(lookup, "SESSION_RETENTION_DAYS", 7, 0, 365)?,
        })
    }
}

/// `SCOPED_TOKEN_AUDIENCES`: comma-separated audiences of other services, without repeats;
/// none may be Gatehouse's own (`own`, `JWT_AUDIENCE`): a token without `aud` is for Gatehouse.
fn scoped_audiences(lookup: Lookup<'_>, own: &str) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "SCOPED_TOKEN_AUDIENCES";
    let Some(raw) = get(lookup, VAR) else {
        return Ok(Vec::new());
    };
    let mut audiences: Vec<String> = Vec::new();
    for (i, item) in raw.split(',').map(str::trim).enumerate() {
        let position = i + 1;
        if item.is_empty() {
            return Err(ConfigError::new(VAR, format!("item {position} is empty")));
        }
        if item.len() > 256 || !item.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                VAR,
                format!("item {position} must be 1-256 printable ASCII characters without spaces"),
            ));
        }
        if item == own {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "item {position} is JWT_AUDIENCE, Gatehouse's own audience; list other services only"
                ),
            ));
        }
        if !audiences.iter().any(|a| a == item) {
            audiences.push(item.to_string());
        }
    }
    if audiences.len() > MAX_SCOPED_AUDIENCES {
        return Err(ConfigError::new(
            VAR,
            format!("at most {MAX_SCOPED_AUDIENCES} audiences"),
        ));
    }
    Ok(audiences)
}

/// `REGISTRATION`: `open` or `closed` (default).
fn registration(lookup: Lookup<'_>) -> Result<Registration, ConfigError> {
    match get(lookup, "REGISTRATION")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("closed") => Ok(Registration::Closed),
        Some("open") => Ok(Registration::Open),
        Some(other) => Err(ConfigError::new(
            "REGISTRATION",
            format!("expected open or closed, got {other:?}"),
        )),
    }
}

/// `REGISTRATION_ENUMERATION`: `reveal` (default) or `hide`.
fn registration_enumeration(lookup: Lookup<'_>) -> Result<RegistrationEnumeration, ConfigError> {
    match get(lookup, "REGISTRATION_ENUMERATION")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("reveal") => Ok(RegistrationEnumeration::Reveal),
        Some("hide") => Ok(RegistrationEnumeration::Hide),
        Some(other) => Err(ConfigError::new(
            "REGISTRATION_ENUMERATION",
            format!("expected reveal or hide, got {other:?}"),
        )),
    }
}

/// `DEFAULT_ROLES`: comma-separated role names, without repeats (default `user`).
fn default_roles(lookup: Lookup<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = get(lookup, "DEFAULT_ROLES") else {
        return Ok(vec!["user".to_string()]);
    };
    let mut roles = Vec::new();
    for role in raw.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !valid_role(role) || role == "anonymous" {
            return Err(ConfigError::new(
                "DEFAULT_ROLES",
                format!("{role:?} is not a valid role name (a-z, 0-9, _ - ., not \"anonymous\")"),
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_string());
        }
    }
    Ok(roles)
}

/// `COOKIE_SAMESITE`: `Lax` (default), `Strict` or `None`.
fn cookie_same_site(lookup: Lookup<'_>) -> Result<SameSite, ConfigError> {
    match get(lookup, "COOKIE_SAMESITE")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("lax") => Ok(SameSite::Lax),
        Some("strict") => Ok(SameSite::Strict),
        Some("none") => Ok(SameSite::None),
        Some(other) => Err(ConfigError::new(
            "COOKIE_SAMESITE",
            format!("expected Lax, Strict or None, got {other:?}"),
        )),
    }
}

/// `JWT_SIGNING_KEY` (secret: its value never reaches an error) and `JWT_PREVIOUS_PUBLIC_KEYS`:
/// the seed and the key set.
fn signing_keys(lookup: Lookup<'_>) -> Result<([u8; 32], KeySet), ConfigError> {
    let seed = match get(lookup, "JWT_SIGNING_KEY") {
        None => {
            return Err(ConfigError::new(
                "JWT_SIGNING_KEY",
                "missing: set it with `wrangler secret put JWT_SIGNING_KEY` (value from `gatehouse keygen`)",
            ))
        }
        Some(raw) => decode_key32(&raw).ok_or_else(|| {
            ConfigError::new(
                "JWT_SIGNING_KEY",
                "not a base64url-encoded 32-byte Ed25519 seed (make one with `gatehouse keygen`)",
            )
        })?,
    };
    // The next key first (published ahead of its use), then the previous ones.
    let mut published = Vec::new();
    if let Some(next) = get(lookup, "JWT_NEXT_PUBLIC_KEY") {
        let next = decode_key32(&next).ok_or_else(|| {
            ConfigError::new(
                "JWT_NEXT_PUBLIC_KEY",
                "not a base64url-encoded 32-byte public key (the x that `gatehouse rotate-key prepare` prints)",
            )
        })?;
        if next == seed {
            return Err(ConfigError::new(
                "JWT_NEXT_PUBLIC_KEY",
                "is the signing key's private seed; set the next key's public x only",
            ));
        }
        published.push(next);
    }
    let previous = previous_public_keys(lookup)?;
    if previous.contains(&seed) {
        // A private seed pasted where public keys belong would be published in the JWKS.
        return Err(ConfigError::new(
            "JWT_PREVIOUS_PUBLIC_KEYS",
            "contains the signing key's private seed; list public keys (x) only",
        ));
    }
    published.extend(previous);
    // Every 32-byte value is accepted as an Ed25519 public key, so this cannot fail on input
    // that decoded; the error names both variables in case it ever does.
    let keys = KeySet::new(&seed, &published)
        .map_err(|why| ConfigError::new("JWT_NEXT_PUBLIC_KEY / JWT_PREVIOUS_PUBLIC_KEYS", why))?;
    Ok((seed, keys))
}

/// `JWT_PREVIOUS_PUBLIC_KEYS`: comma-separated public keys; an error names the bad item by
/// position, never its value.
fn previous_public_keys(lookup: Lookup<'_>) -> Result<Vec<[u8; 32]>, ConfigError> {
    let Some(raw) = get(lookup, "JWT_PREVIOUS_PUBLIC_KEYS") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, item)| {
            decode_key32(item).ok_or_else(|| {
                ConfigError::new(
                    "JWT_PREVIOUS_PUBLIC_KEYS",
                    format!(
                        "item {} is not a base64url-encoded 32-byte public key",
                        i + 1
                    ),
                )
            })
        })
        .collect()
}

/// `UPSTREAM_SIGNING_SECRET` (secret, at least 32 characters; required with `ROUTES`).
fn upstream_signing_secret(
    lookup: Lookup<'_>,
    routes: &Routes,
) -> Result<Option<Secret>, ConfigError> {
    match lookup("UPSTREAM_SIGNING_SECRET") {
        Some(secret) if secret.len() < 32 => Err(ConfigError::new(
            "UPSTREAM_SIGNING_SECRET",
            "must be at least 32 characters (e.g. `gatehouse keygen` output)",
        )),
        Some(secret) => Ok(Some(Secret::new(secret))),
        None if !routes.is_empty() => Err(ConfigError::new(
            "UPSTREAM_SIGNING_SECRET",
            "required when ROUTES is set: it signs the identity sent upstream",
        )),
        None => Ok(None),
    }
}

/// `API_KEY_PEPPER` (secret, at least 32 characters); unset: API keys are off. The CLI reads
/// the pepper with it too.
pub fn api_key_pepper(lookup: Lookup<'_>) -> Result<Option<Pepper>, ConfigError> {
    match get(lookup, "API_KEY_PEPPER") {
        None => Ok(None),
        Some(raw) if raw.len() >= 32 => Ok(Some(Pepper::new(raw.into_bytes()))),
        Some(_) => Err(ConfigError::new(
            "API_KEY_PEPPER",
            "shorter than 32 characters (make one with `gatehouse keygen --pepper`)",
        )),
    }
}

/// `MFA_ENCRYPTION_KEY` (secret): 32 bytes, base64url (`gatehouse keygen --mfa-key`); unset:
/// TOTP is off. The error never shows the value.
fn mfa_key(lookup: Lookup<'_>) -> Result<Option<crate::domain::mfa::MfaKey>, ConfigError> {
    match get(lookup, "MFA_ENCRYPTION_KEY") {
        None => Ok(None),
        Some(raw) => decode_key32(&raw)
            .map(|bytes| Some(crate::domain::mfa::MfaKey::new(bytes)))
            .ok_or_else(|| {
                ConfigError::new(
                    "MFA_ENCRYPTION_KEY",
                    "not 32 bytes in base64url (make one with `gatehouse keygen --mfa-key`)",
                )
            }),
    }
}

/// `TOTP_ISSUER`: 1-64 characters, no `:` (authenticator apps split the label there) and no
/// control characters; default `Gatehouse`.
fn totp_issuer(lookup: Lookup<'_>) -> Result<String, ConfigError> {
    let Some(raw) = get(lookup, "TOTP_ISSUER") else {
        return Ok("Gatehouse".into());
    };
    let issuer = raw.trim();
    if issuer.is_empty()
        || issuer.chars().count() > 64
        || issuer.contains(':')
        || issuer.chars().any(char::is_control)
    {
        return Err(ConfigError::new(
            "TOTP_ISSUER",
            "expected 1-64 characters without ':' or control characters",
        ));
    }
    Ok(issuer.to_string())
}

impl RateLimits {
    /// `RATE_LIMIT_*`.
    fn parse(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            window_secs: int_in(lookup, "RATE_LIMIT_WINDOW_SECONDS", 900, 1, 86_400)?,
            login_per_account: int_in(lookup, "RATE_LIMIT_LOGIN_PER_ACCOUNT", 10, 0, 1_000_000)?,
            login_per_account_total: int_in(
                lookup,
                "RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL",
                50,
                0,
                1_000_000,
            )?,
            login_per_ip: int_in(lookup, "RATE_LIMIT_LOGIN_PER_IP", 50, 0, 1_000_000)?,
            register_per_ip: int_in(lookup, "RATE_LIMIT_REGISTER_PER_IP", 10, 0, 1_000_000)?,
            refresh_per_family: int_in(lookup, "RATE_LIMIT_REFRESH_PER_FAMILY", 60, 0, 1_000_000)?,
            token_mint_per_credential: int_in(
                lookup,
                "RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL",
                60,
                0,
                1_000_000,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::encoding::b64url;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let owned: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn key() -> String {
        b64url(&[3u8; 32])
    }

    #[test]
    fn mfa_key_and_totp_issuer() {
        let k = key();
        let off = parse(&[("JWT_SIGNING_KEY", &k)]).unwrap();
        assert!(off.accounts.mfa_key.is_none());
        assert_eq!(off.accounts.totp_issuer, "Gatehouse");
        let secret = b64url(&[9u8; 32]);
        let on = parse(&[
            ("JWT_SIGNING_KEY", &k),
            ("MFA_ENCRYPTION_KEY", &secret),
            ("TOTP_ISSUER", " Example Site "),
        ])
        .unwrap();
        assert!(on.accounts.mfa_key.is_some());
        assert_eq!(on.accounts.totp_issuer, "Example Site");
        assert!(!format!("{:?}", on.accounts).contains(&secret));
        for bad in ["short", &b64url(&[9u8; 31]), &b64url(&[9u8; 33]), "!!!!"] {
            let err = parse(&[("JWT_SIGNING_KEY", &k), ("MFA_ENCRYPTION_KEY", bad)]).unwrap_err();
            assert_eq!(err.var, "MFA_ENCRYPTION_KEY");
            assert!(!err.to_string().contains(bad), "the value leaked: {err}");
        }
        for bad in ["a:b", &"x".repeat(65), "tab\there"] {
            let err = parse(&[("JWT_SIGNING_KEY", &k), ("TOTP_ISSUER", bad)]).unwrap_err();
            assert_eq!(err.var, "TOTP_ISSUER", "{bad:?}");
        }
    }

    #[test]
    fn defaults() {
        let k = key();
        let config = parse(&[("JWT_SIGNING_KEY", &k)]).unwrap();
        assert_eq!(config.tokens.issuer, "gatehouse");
        assert_eq!(config.tokens.audience, "gatehouse");
        assert_eq!(config.tokens.access_ttl_secs, 900);
        assert_eq!(config.tokens.refresh_ttl_secs, 30 * 86_400);
        assert_eq!(config.tokens.refresh_idle_secs, 7 * 86_400);
        assert_eq!(config.tokens.refresh_grace_secs, 10);
        assert_eq!(config.accounts.registration, Registration::Closed);
        assert_eq!(
            config.accounts.registration_enumeration,
            RegistrationEnumeration::Reveal
        );
        assert_eq!(config.limits.rate.login_per_account, 10);
        assert_eq!(config.limits.rate.login_per_account_total, 50);
        assert_eq!(config.accounts.default_roles, vec!["user"]);
        assert_eq!(config.accounts.pbkdf2_iterations, 100_000);
        assert_eq!(config.limits.max_body_bytes, 65_536);
        assert_eq!(config.browser.cookie_same_site, SameSite::Lax);
        assert_eq!(config.tokens.revocation_delay_secs, 10);
        assert_eq!(config.tokens.scoped.max_ttl_secs, 300);
        assert!(config.tokens.scoped.audiences.is_empty());
        assert_eq!(config.limits.rate.token_mint_per_credential, 60);
    }

    #[test]
    fn scoped_token_audiences_are_listed_once_and_never_gatehouses_own() {
        let k = key();
        let config = parse(&[
            ("JWT_SIGNING_KEY", &k),
            ("SCOPED_TOKEN_AUDIENCES", " billing, search ,billing"),
            ("SCOPED_TOKEN_MAX_TTL_SECONDS", "86400"),
        ])
        .unwrap();
        assert_eq!(config.tokens.scoped.audiences, vec!["billing", "search"]);
        assert_eq!(config.tokens.scoped.max_ttl_secs, 86_400);
        // The own audience is JWT_AUDIENCE when set, so the issuer's name is then a fine
        // other service.
        let config = parse(&[
            ("JWT_SIGNING_KEY", &k),
            ("JWT_AUDIENCE", "site"),
            ("SCOPED_TOKEN_AUDIENCES", "gatehouse"),
        ])
        .unwrap();
        assert_eq!(config.tokens.scoped.audiences, vec!["gatehouse"]);
        let err = parse(&[
            ("JWT_SIGNING_KEY", &k),
            ("JWT_AUDIENCE", "site"),
            ("SCOPED_TOKEN_AUDIENCES", "a,site"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "SCOPED_TOKEN_AUDIENCES");
        assert!(err.reason.contains("item 2"), "{err}");
        let many = (0..=MAX_SCOPED_AUDIENCES)
            .map(|i| format!("svc{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let err = parse(&[("JWT_SIGNING_KEY", &k), ("SCOPED_TOKEN_AUDIENCES", &many)]).unwrap_err();
        assert_eq!(err.var, "SCOPED_TOKEN_AUDIENCES");
    }

    #[test]
    fn errors_name_the_variable() {
        let k = key();
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ACCESS_TOKEN_TTL", "abc")], "ACCESS_TOKEN_TTL"),
            (&[("ACCESS_TOKEN_TTL", "5")], "ACCESS_TOKEN_TTL"),
            (&[("PBKDF2_ITERATIONS", "100001")], "PBKDF2_ITERATIONS"),
            (&[("PBKDF2_ITERATIONS", "600000")], "PBKDF2_ITERATIONS"),
            (&[("REFRESH_GRACE_SECONDS", "0")], "REFRESH_GRACE_SECONDS"),
            (
                &[("REFRESH_IDLE_TIMEOUT", "99999999")],
                "REFRESH_IDLE_TIMEOUT",
            ),
            (&[("REGISTRATION", "maybe")], "REGISTRATION"),
            (
                &[("REGISTRATION_ENUMERATION", "sometimes")],
                "REGISTRATION_ENUMERATION",
            ),
            (
                &[("RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL", "-1")],
                "RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL",
            ),
            (&[("DEFAULT_ROLES", "user,Admin")], "DEFAULT_ROLES"),
            (&[("DEFAULT_ROLES", "anonymous")], "DEFAULT_ROLES"),
            (&[("COOKIE_SAMESITE", "sometimes")], "COOKIE_SAMESITE"),
            (&[("ALLOWED_ORIGINS", "*")], "ALLOWED_ORIGINS"),
            (
                &[("ALLOWED_ORIGINS", "https://a.example/app")],
                "ALLOWED_ORIGINS",
            ),
            (&[("ALLOWED_ORIGINS", "a.example")], "ALLOWED_ORIGINS"),
            (
                &[("ALLOWED_ORIGINS", "http://localhost:99999")],
                "ALLOWED_ORIGINS",
            ),
            (&[("MAX_BODY_BYTES", "-1")], "MAX_BODY_BYTES"),
            (
                &[("REVOCATION_DELAY_SECONDS", "301")],
                "REVOCATION_DELAY_SECONDS",
            ),
            (
                &[("REVOCATION_DELAY_SECONDS", "-1")],
                "REVOCATION_DELAY_SECONDS",
            ),
            (
                &[("REVOCATION_DELAY_SECONDS", "1.5")],
                "REVOCATION_DELAY_SECONDS",
            ),
            (
                &[("JWT_PREVIOUS_PUBLIC_KEYS", "nope")],
                "JWT_PREVIOUS_PUBLIC_KEYS",
            ),
            (
                &[("SCOPED_TOKEN_MAX_TTL_SECONDS", "0")],
                "SCOPED_TOKEN_MAX_TTL_SECONDS",
            ),
            (
                &[("SCOPED_TOKEN_MAX_TTL_SECONDS", "86401")],
                "SCOPED_TOKEN_MAX_TTL_SECONDS",
            ),
            (
                &[("SCOPED_TOKEN_AUDIENCES", "billing,,search")],
                "SCOPED_TOKEN_AUDIENCES",
            ),
            (
                &[("SCOPED_TOKEN_AUDIENCES", "billing service")],
                "SCOPED_TOKEN_AUDIENCES",
            ),
            (
                &[("SCOPED_TOKEN_AUDIENCES", "billing,gatehouse")],
                "SCOPED_TOKEN_AUDIENCES",
            ),
            (
                &[("RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL", "-1")],
                "RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL",
            ),
        ];
        for (vars, var) in cases {
            let mut all = vars.to_vec();
            all.push(("JWT_SIGNING_KEY", &k));
            let err = parse(&all).unwrap_err();
            assert_eq!(err.var, *var, "{vars:?}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn the_signing_key_is_required_and_never_echoed() {
        assert_eq!(parse(&[]).unwrap_err().var, "JWT_SIGNING_KEY");
        let secret = "c2VjcmV0LXRoYXQtaXMtbm90LTMyLWJ5dGVz";
        let err = parse(&[("JWT_SIGNING_KEY", secret)]).unwrap_err();
        assert_eq!(err.var, "JWT_SIGNING_KEY");
        assert!(!err.to_string().contains(secret));
        assert!(!format!("{err:?}").contains(secret));
    }

    #[test]
    fn blank_key_is_missing_and_a_seed_is_never_published() {
        let err = parse(&[("JWT_SIGNING_KEY", "  ")]).unwrap_err();
        assert!(err.reason.starts_with("missing"), "{err}");
        let k = key();
        let err = parse(&[("JWT_SIGNING_KEY", &k), ("JWT_PREVIOUS_PUBLIC_KEYS", &k)]).unwrap_err();
        assert_eq!(err.var, "JWT_PREVIOUS_PUBLIC_KEYS");
        assert!(!err.to_string().contains(&k));
        let config = parse(&[
            ("JWT_SIGNING_KEY", &k),
            ("REGISTRATION", "Open"),
            ("REGISTRATION_ENUMERATION", "Hide"),
        ])
        .unwrap();
        assert_eq!(config.accounts.registration, Registration::Open);
        assert_eq!(
            config.accounts.registration_enumeration,
            RegistrationEnumeration::Hide
        );
    }

    #[test]
    fn debug_output_has_no_secret() {
        let k = key();
        let config = parse(&[("JWT_SIGNING_KEY", &k)]).unwrap();
        assert!(!format!("{config:?}").contains(&k));
    }

    #[test]
    fn roles_are_deduplicated_and_may_be_empty() {
        let k = key();
        let config = parse(&[("JWT_SIGNING_KEY", &k), ("DEFAULT_ROLES", "a, b,a,,")]).unwrap();
        assert_eq!(config.accounts.default_roles, vec!["a", "b"]);
        let config = parse(&[("JWT_SIGNING_KEY", &k), ("DEFAULT_ROLES", " , ")]).unwrap();
        assert!(config.accounts.default_roles.is_empty());
    }
}
