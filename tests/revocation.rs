//! Revocation that reaches the proxy: every way a credential ends (logout, session revocation by
//! its user or an admin, password change, role removal, account disable, API-key revocation, a
//! key owner disabled or losing the key's role) takes effect on proxied routes and on
//! `/auth/me` within `REVOCATION_DELAY_SECONDS`, not before the cached answer is that old, and
//! at once with a delay of 0; a caller seen again within the delay costs no storage call.
//! Natively, through `serve` and `handle`, over a counting in-memory store and a clock moved by
//! hand.

mod common;

use std::cell::{Cell, RefCell};

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::domain::config::Config;
use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::domain::store::{
    ApiKey, AuditEvent, AuditQuery, Challenge, Family, KeyHash, KeyLookup, LoginLookup, LoginRead,
    NewFamily, Passkey, PasskeyUse, PasswordPhc, PruneCounts, PruneCutoffs, RateCounter, RateHit,
    RecoveryCodeHash, RevokeReason, Rotation, RotationOutcome, SessionLiveness, Store, StoredEvent,
    TokenHash, TokenState, TotpConfirmation, TotpRecord, User, UserQuery,
};
use gatehouse::domain::token::AccessClaims;
use gatehouse::primitives::encoding::b64url_decode;
use gatehouse::primitives::error::Error;
use gatehouse::primitives::http::{Request, Response};
use gatehouse::primitives::platform::RustPbkdf2;
use gatehouse::routes::{handle, serve, Outcome};
use gatehouse::services::Services;

use common::{error_code, expect_status, OkCms, TestClock, PASSWORD, SECOND, T0};

const PEPPER: &str = "pepper-pepper-pepper-pepper-pepper-42";
const SECRET: &str = "an upstream signing secret of 32+ chars";
const DELAY: i64 = 10 * SECOND;

/// The in-memory store, counting every call made to it.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    calls: RefCell<Vec<&'static str>>,
}

impl Counting {
    fn count(&self, method: &'static str) {
        self.calls.borrow_mut().push(method);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
}

impl Store for Counting {
    async fn ping(&self) -> Result<(), Error> {
        self.count("ping");
        self.inner.ping().await
    }

    async fn create_user(
        &self,
        user: &User,
        family: Option<&NewFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        self.count("create_user");
        self.inner.create_user(user, family, event).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        self.count("user_by_email");
        self.inner.user_by_email(email).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, Error> {
        self.count("user_by_id");
        self.inner.user_by_id(id).await
    }

    async fn upgrade_password_hash(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        now: i64,
    ) -> Result<(), Error> {
        self.count("upgrade_password_hash");
        self.inner.upgrade_password_hash(user_id, phc, now).await
    }

    async fn change_password(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        keep: Option<&str>,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error> {
        self.count("change_password");
        self.inner
            .change_password(user_id, phc, keep, now, event)
            .await
    }

    async fn create_family(
        &self,
        family: &NewFamily,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error> {
        self.count("create_family");
        self.inner.create_family(family, event).await
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, Error> {
        self.count("rotate_refresh");
        self.inner.rotate_refresh(rotation).await
    }

    async fn token_state(&self, token_hash: &TokenHash) -> Result<Option<TokenState>, Error> {
        self.count("token_state");
        self.inner.token_state(token_hash).await
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        reason: RevokeReason,
        now: i64,
        event: Option<&AuditEvent>,
    ) -> Result<bool, Error> {
        self.count("revoke_family");
        self.inner
            .revoke_family(family_id, reason, now, event)
            .await
    }

    async fn family(&self, family_id: &str) -> Result<Option<Family>, Error> {
        self.count("family");
        self.inner.family(family_id).await
    }

    async fn session_liveness(&self, family_id: &str) -> Result<Option<SessionLiveness>, Error> {
        self.count("session_liveness");
        self.inner.session_liveness(family_id).await
    }

    async fn live_tokens(&self, family_id: &str) -> Result<u64, Error> {
        self.count("live_tokens");
        self.inner.live_tokens(family_id).await
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), Error> {
        self.count("record_event");
        self.inner.record_event(event).await
    }

    async fn audit_events(
        &self,
        subject_user_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        self.count("audit_events");
        self.inner.audit_events(subject_user_id, limit).await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, Error> {
        self.count("list_users");
        self.inner.list_users(query).await
    }

    async fn set_roles(
        &self,
        user_id: &str,
        roles: &[String],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        self.count("set_roles");
        self.inner.set_roles(user_id, roles, now, event).await
    }

    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
        event: &AuditEvent,
    ) -> Result<Option<u64>, Error> {
        self.count("set_disabled");
        self.inner.set_disabled(user_id, disabled, now, event).await
    }

    async fn user_families(&self, user_id: &str) -> Result<Vec<Family>, Error> {
        self.count("user_families");
        self.inner.user_families(user_id).await
    }

    async fn revoke_user_families(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error> {
        self.count("revoke_user_families");
        self.inner
            .revoke_user_families(user_id, reason, now, event)
            .await
    }

    async fn create_api_key(&self, key: &ApiKey, event: &AuditEvent) -> Result<(), Error> {
        self.count("create_api_key");
        self.inner.create_api_key(key, event).await
    }

    async fn api_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, Error> {
        self.count("api_key_by_hash");
        self.inner.api_key_by_hash(key_hash).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, Error> {
        self.count("api_key");
        self.inner.api_key(id).await
    }

    async fn api_key_lookup(&self, id: &str) -> Result<Option<KeyLookup>, Error> {
        self.count("api_key_lookup");
        self.inner.api_key_lookup(id).await
    }

    async fn list_api_keys(&self, owner_user_id: Option<&str>) -> Result<Vec<ApiKey>, Error> {
        self.count("list_api_keys");
        self.inner.list_api_keys(owner_user_id).await
    }

    async fn revoke_api_key(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error> {
        self.count("revoke_api_key");
        self.inner.revoke_api_key(id, now, event).await
    }

    async fn touch_api_key(&self, id: &str, now: i64, min_interval_ms: i64) -> Result<bool, Error> {
        self.count("touch_api_key");
        self.inner.touch_api_key(id, now, min_interval_ms).await
    }

    async fn login_lookup(&self, lookup: &LoginLookup<'_>) -> Result<LoginRead, Error> {
        self.count("login_lookup");
        self.inner.login_lookup(lookup).await
    }

    async fn hit_rate_limit(&self, key: &str, window_ms: i64, now: i64) -> Result<RateHit, Error> {
        self.count("hit_rate_limit");
        self.inner.hit_rate_limit(key, window_ms, now).await
    }

    async fn busy_rate_limits(
        &self,
        now: i64,
        min_count: i64,
        limit: u32,
    ) -> Result<Vec<RateCounter>, Error> {
        self.count("busy_rate_limits");
        self.inner.busy_rate_limits(now, min_count, limit).await
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>, Error> {
        self.count("query_audit");
        self.inner.query_audit(query).await
    }

    async fn prune(&self, cutoffs: &PruneCutoffs) -> Result<PruneCounts, Error> {
        self.count("prune");
        self.inner.prune(cutoffs).await
    }

    async fn totp(&self, user_id: &str) -> Result<Option<TotpRecord>, Error> {
        self.count("totp");
        self.inner.totp(user_id).await
    }

    async fn start_totp(
        &self,
        user_id: &str,
        pending_sealed: &str,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        self.count("start_totp");
        self.inner
            .start_totp(user_id, pending_sealed, now, event)
            .await
    }

    async fn confirm_totp(&self, c: &TotpConfirmation, event: &AuditEvent) -> Result<bool, Error> {
        self.count("confirm_totp");
        self.inner.confirm_totp(c, event).await
    }

    async fn use_totp_step(&self, user_id: &str, sealed: &str, step: i64) -> Result<bool, Error> {
        self.count("use_totp_step");
        self.inner.use_totp_step(user_id, sealed, step).await
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &RecoveryCodeHash,
    ) -> Result<bool, Error> {
        self.count("use_recovery_code");
        self.inner.use_recovery_code(user_id, code).await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        codes: &[RecoveryCodeHash],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        self.count("replace_recovery_codes");
        self.inner
            .replace_recovery_codes(user_id, codes, now, event)
            .await
    }

    async fn remove_totp(&self, user_id: &str, event: &AuditEvent) -> Result<bool, Error> {
        self.count("remove_totp");
        self.inner.remove_totp(user_id, event).await
    }

    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), Error> {
        self.count("create_challenge");
        self.inner.create_challenge(challenge).await
    }

    async fn take_challenge(
        &self,
        challenge_hash: &str,
        ceremony: &str,
    ) -> Result<Option<Challenge>, Error> {
        self.count("take_challenge");
        self.inner.take_challenge(challenge_hash, ceremony).await
    }

    async fn create_passkey(&self, passkey: &Passkey, event: &AuditEvent) -> Result<bool, Error> {
        self.count("create_passkey");
        self.inner.create_passkey(passkey, event).await
    }

    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<Passkey>, Error> {
        self.count("passkey_by_credential");
        self.inner.passkey_by_credential(credential_id).await
    }

    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<Passkey>, Error> {
        self.count("user_passkeys");
        self.inner.user_passkeys(user_id).await
    }

    async fn use_passkey(&self, used: &PasskeyUse) -> Result<bool, Error> {
        self.count("use_passkey");
        self.inner.use_passkey(used).await
    }

    async fn flag_passkey(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error> {
        self.count("flag_passkey");
        self.inner.flag_passkey(id, now, event).await
    }

    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        self.count("delete_passkey");
        self.inner.delete_passkey(user_id, id, event).await
    }
}

/// `/cms/` reads need the role `user`, writes `editor`.
fn routes() -> String {
    json!({ "cms": common::forward_all_route("cms", Some("editor")) }).to_string()
}

struct Gate {
    config: Config,
    store: Counting,
    clock: TestClock,
    cms: OkCms,
}

/// A signed-in user: id, access token, refresh token and session id.
struct Login {
    id: String,
    access: String,
    refresh: String,
    sid: String,
}

impl Gate {
    fn new(delay_secs: &str) -> Self {
        let routes = routes();
        Self {
            config: common::config(
                &[("REVOCATION_DELAY_SECONDS", delay_secs)],
                &[
                    ("REGISTRATION", "open"),
                    ("PBKDF2_ITERATIONS", "10000"),
                    ("API_KEY_PEPPER", PEPPER),
                    ("ROUTES", &routes),
                    ("UPSTREAM_SIGNING_SECRET", SECRET),
                    ("CMS_KEY", "cms-key-value"),
                ],
            ),
            store: Counting::default(),
            clock: TestClock(Cell::new(T0)),
            cms: OkCms::default(),
        }
    }

    fn svc(&self) -> Services<'_, Counting, RustPbkdf2> {
        Services {
            config: &self.config,
            store: &self.store,
            hasher: &RustPbkdf2,
            clock: &self.clock,
            rng: &gatehouse::primitives::platform::SystemRng,
            aead: &gatehouse::primitives::platform::RustAesGcm,
            verifier: &gatehouse::primitives::jws::RustVerifier,
            fetcher: &gatehouse::primitives::platform::NoFetcher,
            documents: &gatehouse::primitives::platform::NoDocumentCache,
        }
    }

    fn now(&self) -> i64 {
        self.clock.0.get()
    }

    fn at(&self, ms: i64) {
        self.clock.0.set(ms);
    }

    fn send(&self, req: &Request) -> Response {
        block_on(handle(&self.svc(), req))
    }

    fn call(&self, method: &str, path: &str, bearer: &str, body: Option<Value>) -> Response {
        let mut req =
            Request::new(method, path).with_header("authorization", &format!("Bearer {bearer}"));
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.send(&req)
    }

    /// A proxied request with `bearer`: its status and error code (`None` when proxied).
    fn proxy(&self, method: &str, bearer: &str) -> (u16, Option<String>) {
        let mut req = Request::new(method, "/cms/items/posts")
            .with_header("authorization", &format!("Bearer {bearer}"));
        if method != "GET" {
            req = req.with_json(&json!({ "title": "t" }));
        }
        match block_on(serve(&self.svc(), &self.cms, req)) {
            Outcome::Proxied(answer) => (answer.status, None),
            Outcome::Local(res) => (res.status, error_code(&res)),
        }
    }

    fn me(&self, access: &str) -> (u16, Option<String>) {
        let res = self.call("GET", "/auth/me", access, None);
        (res.status, error_code(&res))
    }

    fn login(&self, email: &str, password: &str) -> Login {
        let res = self.send(&Request::new("POST", "/auth/login").with_json(
            &json!({ "email": email, "password": password, "refresh_token_in_body": true }),
        ));
        let body = expect_status(&res, 200);
        let access = body["access_token"].as_str().unwrap().to_string();
        Login {
            id: body["user"]["id"].as_str().unwrap().into(),
            sid: sid_of(&access),
            refresh: body["refresh_token"].as_str().unwrap().into(),
            access,
        }
    }

    /// Registers `email` with `roles` (written to storage) and logs in.
    fn user(&self, email: &str, roles: &[&str]) -> Login {
        let res = self.send(&Request::new("POST", "/auth/register").with_json(
            &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        ));
        let id = expect_status(&res, 201)["user"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        assert!(block_on(self.store.set_roles(&id, &roles, self.now(), &event(&id))).unwrap());
        self.login(email, PASSWORD)
    }

    /// A scoped token minted with `bearer` (`POST /auth/token`) for the `cms` route, with
    /// `roles`, for 300 s.
    fn scoped(&self, bearer: &str, roles: &[&str]) -> String {
        let res = self.call(
            "POST",
            "/auth/token",
            bearer,
            Some(json!({ "roles": roles, "routes": ["cms"], "ttl": 300 })),
        );
        expect_status(&res, 200)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Mints a key for `owner` carrying `role`, scoped to the `cms` route.
    fn mint(&self, admin: &str, owner: &str, role: &str) -> (String, String) {
        let res = self.call(
            "POST",
            "/admin/api-keys",
            admin,
            Some(json!({ "owner_user_id": owner, "label": "ci", "role": role, "scopes": ["cms"] })),
        );
        let body = expect_status(&res, 201);
        (
            body["key"].as_str().unwrap().to_string(),
            body["api_key"]["id"].as_str().unwrap().to_string(),
        )
    }
}

fn event(user_id: &str) -> AuditEvent {
    AuditEvent {
        at: T0,
        kind: "role_changed".into(),
        actor_user_id: None,
        subject_user_id: Some(user_id.into()),
        family_id: None,
        ip: None,
        user_agent: None,
        detail: None,
    }
}

/// The `sid` claim of an access token (read without verifying: the test made the token).
fn sid_of(access: &str) -> String {
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&b64url_decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_string()
}

/// Every way a credential ends.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Logout,
    OwnSessionRevoked,
    AdminSessionRevoked,
    AdminAllSessionsRevoked,
    PasswordChanged,
    AdminPasswordReset,
    RoleRemoved,
    Disabled,
    KeyRevoked,
    KeyOwnerDisabled,
    KeyOwnerRoleRemoved,
}

const KINDS: [Kind; 11] = [
    Kind::Logout,
    Kind::OwnSessionRevoked,
    Kind::AdminSessionRevoked,
    Kind::AdminAllSessionsRevoked,
    Kind::PasswordChanged,
    Kind::AdminPasswordReset,
    Kind::RoleRemoved,
    Kind::Disabled,
    Kind::KeyRevoked,
    Kind::KeyOwnerDisabled,
    Kind::KeyOwnerRoleRemoved,
];

/// A credential about to end in one of the ways of [`Kind`].
struct Case {
    kind: Kind,
    /// The bearer under test.
    bearer: String,
    /// Whether it is an access token (then `/auth/me` is checked too).
    access_token: bool,
    /// The error a proxied request gets once it ended.
    refusal: (u16, &'static str),
}

/// Sets up a user (and an admin) for `kind`; returns the case and the admin's token.
fn prepare(gate: &Gate, kind: Kind) -> (Case, Login, Login) {
    let admin = gate.user("root@example.com", &["admin", "user", "editor"]);
    let ada = gate.user("ada@example.com", &["user", "editor"]);
    let key = || gate.mint(&admin.access, &ada.id, "editor").0;
    let (bearer, access_token, refusal) = match kind {
        Kind::RoleRemoved => (ada.access.clone(), true, (403, "insufficient_role")),
        Kind::KeyRevoked | Kind::KeyOwnerDisabled => (key(), false, (401, "invalid_api_key")),
        Kind::KeyOwnerRoleRemoved => (key(), false, (403, "insufficient_role")),
        _ => (ada.access.clone(), true, (401, "invalid_token")),
    };
    let case = Case {
        kind,
        bearer,
        access_token,
        refusal,
    };
    (case, admin, ada)
}

/// Ends `case`'s credential the way its kind says.
fn end(gate: &Gate, case: &Case, admin: &Login, ada: &Login) {
    let status = |res: Response| res.status;
    let got = match case.kind {
        Kind::Logout => status(
            gate.send(
                &Request::new("POST", "/auth/logout")
                    .with_json(&json!({ "refresh_token": ada.refresh })),
            ),
        ),
        Kind::OwnSessionRevoked => {
            let other = gate.login("ada@example.com", PASSWORD);
            status(gate.call(
                "DELETE",
                &format!("/auth/sessions/{}", ada.sid),
                &other.access,
                None,
            ))
        }
        Kind::AdminSessionRevoked => status(gate.call(
            "DELETE",
            &format!("/admin/users/{}/sessions/{}", ada.id, ada.sid),
            &admin.access,
            None,
        )),
        Kind::AdminAllSessionsRevoked => status(gate.call(
            "DELETE",
            &format!("/admin/users/{}/sessions", ada.id),
            &admin.access,
            None,
        )),
        Kind::PasswordChanged => {
            let other = gate.login("ada@example.com", PASSWORD);
            status(gate.call(
                "POST",
                "/auth/password",
                &other.access,
                Some(json!({ "current_password": PASSWORD, "new_password": "another long password" })),
            ))
        }
        Kind::AdminPasswordReset => status(gate.call(
            "POST",
            &format!("/admin/users/{}/password", ada.id),
            &admin.access,
            Some(json!({ "new_password": "another long password" })),
        )),
        Kind::RoleRemoved | Kind::KeyOwnerRoleRemoved => status(gate.call(
            "PUT",
            &format!("/admin/users/{}/roles", ada.id),
            &admin.access,
            Some(json!({ "roles": ["user"] })),
        )),
        Kind::Disabled | Kind::KeyOwnerDisabled => status(gate.call(
            "POST",
            &format!("/admin/users/{}/disable", ada.id),
            &admin.access,
            None,
        )),
        Kind::KeyRevoked => {
            let keys = gate.call("GET", "/admin/api-keys", &admin.access, None);
            let id = expect_status(&keys, 200)["api_keys"][0]["id"]
                .as_str()
                .unwrap()
                .to_string();
            status(gate.call(
                "DELETE",
                &format!("/admin/api-keys/{id}"),
                &admin.access,
                None,
            ))
        }
    };
    assert!(
        (200..300).contains(&got),
        "{:?}: ending it answered {got}",
        case.kind
    );
}

/// `POST /cms/…` (role `editor`) for every kind, so a removed role shows.
fn write(gate: &Gate, case: &Case) -> (u16, Option<String>) {
    gate.proxy("POST", &case.bearer)
}

/// A scoped token minted from `case`'s credential now (`editor` on `cms`), and the error it
/// gets once that credential ended: as its parent's, except that a token is refused as
/// `invalid_token` where its key would be `invalid_api_key`.
fn scoped_of(gate: &Gate, case: &Case) -> (String, (u16, &'static str)) {
    let token = gate.scoped(&case.bearer, &["editor"]);
    let refusal = match case.refusal {
        (401, "invalid_api_key") => (401, "invalid_token"),
        other => other,
    };
    (token, refusal)
}

#[test]
fn each_revocation_reaches_the_proxy_and_me_exactly_when_the_delay_has_passed() {
    for kind in KINDS {
        let gate = Gate::new("10");
        let (case, admin, ada) = prepare(&gate, kind);
        let start = gate.now() + SECOND;
        gate.at(start);
        // The first uses read storage and fill the cache; a scoped token minted from the
        // credential ends with it.
        let (scoped, scoped_refusal) = scoped_of(&gate, &case);
        assert_eq!(write(&gate, &case), (200, None), "{kind:?}: before");
        assert_eq!(gate.proxy("POST", &scoped), (200, None), "{kind:?}: scoped");
        end(&gate, &case, &admin, &ada);
        // Still admitted from the cache just before the delay has passed...
        gate.at(start + DELAY - 1);
        assert_eq!(
            write(&gate, &case),
            (200, None),
            "{kind:?}: within the delay"
        );
        assert_eq!(
            gate.proxy("POST", &scoped),
            (200, None),
            "{kind:?}: scoped, within the delay"
        );
        // ...and refused from the instant it has.
        gate.at(start + DELAY);
        let (status, code) = case.refusal;
        assert_eq!(
            write(&gate, &case),
            (status, Some(code.to_string())),
            "{kind:?}: after the delay"
        );
        assert_eq!(
            gate.proxy("POST", &scoped),
            (scoped_refusal.0, Some(scoped_refusal.1.to_string())),
            "{kind:?}: scoped, after the delay"
        );
        assert_eq!(
            gate.proxy("GET", &case.bearer).0,
            if kind_keeps_reads(kind) { 200 } else { status },
            "{kind:?}: a read after the delay"
        );
        if case.access_token && !kind_keeps_reads(kind) {
            assert_eq!(
                gate.me(&case.bearer),
                (401, Some("invalid_token".into())),
                "{kind:?}: /auth/me after the delay"
            );
        }
    }
}

/// Kinds that take `editor` away but leave the access token `user`, which reads need (a key
/// carries one role, `editor` here, so it loses everything).
fn kind_keeps_reads(kind: Kind) -> bool {
    matches!(kind, Kind::RoleRemoved)
}

#[test]
fn me_answers_from_the_same_cache_within_the_delay() {
    let gate = Gate::new("10");
    let (case, _, ada) = prepare(&gate, Kind::Logout);
    let start = gate.now();
    assert_eq!(gate.me(&case.bearer), (200, None));
    gate.send(
        &Request::new("POST", "/auth/logout").with_json(&json!({ "refresh_token": ada.refresh })),
    );
    gate.at(start + DELAY - 1);
    assert_eq!(gate.me(&case.bearer), (200, None));
    gate.at(start + DELAY);
    assert_eq!(gate.me(&case.bearer), (401, Some("invalid_token".into())));
}

#[test]
fn with_a_delay_of_zero_every_revocation_is_refused_at_once() {
    for kind in KINDS {
        let gate = Gate::new("0");
        let (case, admin, ada) = prepare(&gate, kind);
        let (scoped, scoped_refusal) = scoped_of(&gate, &case);
        assert_eq!(write(&gate, &case), (200, None), "{kind:?}: before");
        assert_eq!(gate.proxy("POST", &scoped), (200, None), "{kind:?}: scoped");
        end(&gate, &case, &admin, &ada);
        let (status, code) = case.refusal;
        assert_eq!(
            write(&gate, &case),
            (status, Some(code.to_string())),
            "{kind:?}: right after"
        );
        assert_eq!(
            gate.proxy("POST", &scoped),
            (scoped_refusal.0, Some(scoped_refusal.1.to_string())),
            "{kind:?}: scoped, right after"
        );
        if case.access_token && !kind_keeps_reads(kind) {
            assert_eq!(gate.me(&case.bearer).0, 401, "{kind:?}: /auth/me");
        }
        assert!(
            gate.config.tokens.liveness_cache.is_empty(),
            "nothing is kept"
        );
    }
}

#[test]
fn a_cached_caller_costs_no_storage_call() {
    let gate = Gate::new("10");
    let admin = gate.user("root@example.com", &["admin", "user"]);
    let ada = gate.user("ada@example.com", &["user"]);
    let (key, _) = gate.mint(&admin.access, &ada.id, "user");
    gate.store.take();
    let start = gate.now();

    // An access token: one indexed read, then nothing until the delay has passed.
    assert_eq!(gate.proxy("GET", &ada.access), (200, None));
    assert_eq!(gate.store.take(), ["session_liveness"]);
    for ms in [0, 1, DELAY / 2, DELAY - 1] {
        gate.at(start + ms);
        assert_eq!(gate.proxy("GET", &ada.access), (200, None));
        assert_eq!(gate.proxy("POST", &ada.access).0, 403, "no editor role");
        assert_eq!(gate.store.take(), Vec::<&str>::new(), "at +{ms} ms");
    }
    gate.at(start + DELAY);
    assert_eq!(gate.proxy("GET", &ada.access), (200, None));
    assert_eq!(gate.store.take(), ["session_liveness"]);
    // `/auth/me` shows the stored user, which it reads; the session comes from the cache.
    assert_eq!(gate.me(&ada.access), (200, None));
    assert_eq!(gate.store.take(), ["user_by_id"]);

    // An API key: its row (and the first `last_used_at`), then nothing.
    gate.at(start);
    assert_eq!(gate.proxy("GET", &key), (200, None));
    assert_eq!(gate.store.take(), ["api_key_by_hash", "touch_api_key"]);
    gate.at(start + DELAY - 1);
    assert_eq!(gate.proxy("GET", &key), (200, None));
    assert_eq!(gate.store.take(), Vec::<&str>::new());
    gate.at(start + DELAY);
    assert_eq!(gate.proxy("GET", &key), (200, None));
    assert_eq!(
        gate.store.take(),
        ["api_key_by_hash"],
        "touched at most once a minute"
    );
    gate.at(start + 60 * SECOND);
    assert_eq!(gate.proxy("GET", &key), (200, None));
    assert_eq!(gate.store.take(), ["api_key_by_hash", "touch_api_key"]);

    // Scoped tokens: one minted from the session shares its cached liveness (no read); one
    // minted from the key reads the key by id once per delay, then nothing.
    gate.at(start);
    let from_session = gate.scoped(&ada.access, &["user"]);
    let from_key = gate.scoped(&key, &["user"]);
    gate.store.take();
    assert_eq!(gate.proxy("GET", &from_session), (200, None));
    assert_eq!(gate.store.take(), Vec::<&str>::new(), "the session's entry");
    assert_eq!(gate.proxy("GET", &from_key), (200, None));
    assert_eq!(gate.store.take(), ["api_key_lookup"]);
    gate.at(start + DELAY - 1);
    for token in [&from_session, &from_key] {
        assert_eq!(gate.proxy("GET", token), (200, None));
        assert_eq!(gate.proxy("POST", token).0, 403, "no editor role");
    }
    assert_eq!(gate.store.take(), Vec::<&str>::new());

    // A made-up key is never kept: each one is read, and none fills the cache.
    let before = gate.config.tokens.liveness_cache.len();
    let unknown = format!("gk_{}", "a".repeat(52));
    for _ in 0..3 {
        assert_eq!(gate.proxy("GET", &unknown).0, 401);
    }
    assert_eq!(gate.store.take(), ["api_key_by_hash"; 3]);
    assert_eq!(gate.config.tokens.liveness_cache.len(), before);

    // With a delay of 0, every request reads.
    let strict = Gate::new("0");
    let bob = strict.user("bob@example.com", &["user"]);
    strict.store.take();
    for _ in 0..3 {
        assert_eq!(strict.proxy("GET", &bob.access), (200, None));
    }
    assert_eq!(strict.store.take(), ["session_liveness"; 3]);
}

#[test]
fn roles_are_the_tokens_that_the_user_still_holds() {
    let gate = Gate::new("10");
    let admin = gate.user("root@example.com", &["admin", "user"]);
    let ada = gate.user("ada@example.com", &["user"]);
    assert_eq!(
        gate.proxy("GET", &ada.access),
        (200, None),
        "fills the cache"
    );
    // A role given after the token was issued does not count in that token...
    let res = gate.call(
        "PUT",
        &format!("/admin/users/{}/roles", ada.id),
        &admin.access,
        Some(json!({ "roles": ["user", "editor"] })),
    );
    expect_status(&res, 200);
    assert_eq!(gate.proxy("POST", &ada.access).0, 403);
    // ...but in the next one, once the cached roles are older than the delay.
    let fresh = gate.login("ada@example.com", PASSWORD);
    assert_eq!(
        gate.proxy("POST", &fresh.access),
        (200, None),
        "a new session is read"
    );
    let refreshed = expect_status(
        &gate.send(
            &Request::new("POST", "/auth/refresh")
                .with_json(&json!({ "refresh_token": ada.refresh })),
        ),
        200,
    )["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sid_of(&refreshed), ada.sid);
    assert_eq!(
        gate.proxy("POST", &refreshed).0,
        403,
        "cached roles of the session"
    );
    gate.at(gate.now() + DELAY);
    assert_eq!(gate.proxy("POST", &refreshed), (200, None));
}

#[test]
fn a_re_enabled_user_is_admitted_again_within_the_delay() {
    let gate = Gate::new("10");
    let admin = gate.user("root@example.com", &["admin", "user"]);
    let ada = gate.user("ada@example.com", &["user"]);
    let (key, _) = gate.mint(&admin.access, &ada.id, "user");
    let path = |op: &str| format!("/admin/users/{}/{op}", ada.id);
    expect_status(
        &gate.call("POST", &path("disable"), &admin.access, None),
        200,
    );
    assert_eq!(gate.proxy("GET", &key).0, 401);
    expect_status(
        &gate.call("POST", &path("enable"), &admin.access, None),
        200,
    );
    let start = gate.now();
    gate.at(start + DELAY - 1);
    assert_eq!(gate.proxy("GET", &key).0, 401, "the cached disable");
    gate.at(start + DELAY);
    assert_eq!(gate.proxy("GET", &key), (200, None));
    // Disabling revoked the sessions for good.
    assert_eq!(gate.proxy("GET", &ada.access).0, 401);
}

#[test]
fn a_token_without_a_session_is_checked_against_its_user() {
    let gate = Gate::new("10");
    let admin = gate.user("root@example.com", &["admin", "user"]);
    let ada = gate.user("ada@example.com", &["user", "editor"]);
    let token = |sub: &str| {
        let claims = AccessClaims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: sub.into(),
            jti: "j1".into(),
            roles: vec!["user".into(), "editor".into()],
            sid: None,
            act: None,
            scope: None,
            routes: None,
        };
        gate.config
            .tokens
            .keys
            .sign(claims, gate.now(), 900)
            .unwrap()
    };
    let bare = token(&ada.id);
    gate.store.take();
    assert_eq!(gate.proxy("POST", &bare), (200, None));
    assert_eq!(gate.store.take(), ["user_by_id"]);
    assert_eq!(gate.proxy("POST", &bare), (200, None));
    assert_eq!(gate.store.take(), Vec::<&str>::new());
    let res = gate.call(
        "PUT",
        &format!("/admin/users/{}/roles", ada.id),
        &admin.access,
        Some(json!({ "roles": ["user"] })),
    );
    expect_status(&res, 200);
    gate.at(gate.now() + DELAY);
    assert_eq!(gate.proxy("POST", &bare).0, 403);
    assert_eq!(
        gate.proxy("GET", &token("usr_nobody")),
        (401, Some("invalid_token".into()))
    );
}

#[test]
fn the_admin_api_and_session_endpoints_do_not_wait_for_the_delay() {
    let gate = Gate::new("10");
    let admin = gate.user("root@example.com", &["admin", "user"]);
    let other = gate.login("root@example.com", PASSWORD);
    let (key, key_id) = gate.mint(&admin.access, &admin.id, "admin");
    for bearer in [&admin.access, &key] {
        expect_status(&gate.call("GET", "/admin/users", bearer, None), 200);
    }
    expect_status(
        &gate.call("GET", "/auth/sessions", &admin.access, None),
        200,
    );
    // Both cached now; revoked, they stop on the admin API and /auth/sessions at once.
    let res = gate.call(
        "DELETE",
        &format!("/admin/api-keys/{key_id}"),
        &other.access,
        None,
    );
    expect_status(&res, 204);
    let res = gate.call(
        "DELETE",
        &format!("/auth/sessions/{}", admin.sid),
        &other.access,
        None,
    );
    assert_eq!(res.status, 204);
    let refused = |bearer: &str, path: &str| {
        let res = gate.call("GET", path, bearer, None);
        (res.status, error_code(&res))
    };
    assert_eq!(
        refused(&key, "/admin/users"),
        (401, Some("invalid_api_key".into()))
    );
    for path in ["/admin/users", "/auth/sessions"] {
        assert_eq!(
            refused(&admin.access, path),
            (401, Some("invalid_token".into())),
            "{path}"
        );
    }
    // The proxy answers from the cache until the delay has passed (the key authenticates, but
    // its one role, `admin`, does not read `/cms/`).
    assert_eq!(
        gate.proxy("GET", &key),
        (403, Some("insufficient_role".into()))
    );
    assert_eq!(gate.proxy("GET", &admin.access), (200, None));
    gate.at(gate.now() + DELAY);
    assert_eq!(
        gate.proxy("GET", &key),
        (401, Some("invalid_api_key".into()))
    );
    assert_eq!(
        gate.proxy("GET", &admin.access),
        (401, Some("invalid_token".into()))
    );
}

/// A refresh is one storage call, one round trip on D1: the family's counter, the rotation, the
/// token's state and the user in one batch, by body and by cookie (the CSRF token names the
/// session, so nothing is read before). A replay after the grace window adds the revocation.
#[test]
fn a_refresh_is_one_storage_call() {
    let gate = Gate::new("10");
    assert!(gate.config.limits.rate.refresh_per_family > 0, "counted");
    let ada = gate.user("ada@example.com", &["user"]);
    gate.store.take();

    let by_body = |token: &str| {
        gate.send(
            &Request::new("POST", "/auth/refresh")
                .with_json(&json!({ "refresh_token": token, "refresh_token_in_body": true })),
        )
    };
    let res = by_body(&ada.refresh);
    let body = expect_status(&res, 200);
    assert_eq!(gate.store.take(), ["rotate_refresh"], "by body");
    let second = body["refresh_token"].as_str().unwrap().to_string();

    let by_cookie = |token: &str, csrf: &str| {
        gate.send(
            &Request::new("POST", "/auth/refresh")
                .with_header("cookie", &format!("gatehouse_refresh={token}"))
                .with_header("sec-fetch-site", "same-origin")
                .with_header("content-type", "application/json")
                .with_header("x-csrf-token", csrf),
        )
    };
    let csrf = gate.config.browser.csrf_key.token(&ada.sid);
    let res = by_cookie(&second, &csrf);
    expect_status(&res, 200);
    assert_eq!(gate.store.take(), ["rotate_refresh"], "by cookie");

    // Another session's CSRF token: refused, and nothing was rotated or counted.
    let other = gate.login("ada@example.com", PASSWORD);
    gate.store.take();
    let third = res
        .headers
        .iter()
        .find(|(name, value)| name == "set-cookie" && value.starts_with("gatehouse_refresh="))
        .and_then(|(_, value)| value["gatehouse_refresh=".len()..].split(';').next())
        .unwrap()
        .to_string();
    let wrong = gate.config.browser.csrf_key.token(&other.sid);
    let res = by_cookie(&third, &wrong);
    assert_eq!(error_code(&res).as_deref(), Some("csrf_validation_failed"));
    assert_eq!(gate.store.take(), ["rotate_refresh"]);
    let res = by_cookie(&third, &csrf);
    expect_status(&res, 200);
    gate.store.take();

    // The first token again, long after the grace window: reuse, the family revoked.
    gate.at(gate.now() + 60 * SECOND);
    let res = by_body(&ada.refresh);
    assert_eq!(error_code(&res).as_deref(), Some("refresh_token_reused"));
    assert_eq!(gate.store.take(), ["rotate_refresh", "revoke_family"]);
}
