//! The native test harness shared by `core_http.rs`, `admin_http.rs` and `core_proxy.rs`: a
//! clock the test moves by hand, configurations over a fixed signing key, the services of one
//! request, and the response assertions.

// Each test file uses its own part of the harness.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};

use serde_json::{json, Value};

use futures::executor::block_on;
use gatehouse::domain::config::Config;
use gatehouse::domain::proxy::{Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse};
use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::error::ConfigError;

use gatehouse::primitives::http::{Request, Response};
use gatehouse::primitives::platform::{Clock, RustPbkdf2, SystemRng};
use gatehouse::routes::handle;
use gatehouse::services::Services;

/// The start of every test's clock: a whole second, so JWT `iat` equals it exactly.
pub const T0: i64 = 1_800_000_000_000;
pub const SECOND: i64 = 1_000;
/// The signing key's seed.
pub const SEED: [u8; 32] = [7; 32];
pub const PASSWORD: &str = "correct horse battery staple";

/// A clock that stands still until the test moves it.
pub struct TestClock(pub Cell<i64>);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

/// A configuration: `overrides`, then `defaults`, over the fixed signing key.
pub fn try_config(
    overrides: &[(&str, &str)],
    defaults: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    let seed = b64url(&SEED);
    let lookup = |name: &str| -> Option<String> {
        overrides
            .iter()
            .chain(defaults)
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_string())
            .or_else(|| (name == "JWT_SIGNING_KEY").then(|| seed.clone()))
    };
    Config::from_lookup(&lookup)
}

/// [`try_config`], which must succeed.
pub fn config(overrides: &[(&str, &str)], defaults: &[(&str, &str)]) -> Config {
    try_config(overrides, defaults).expect("test configuration is valid")
}

/// The services of one request over the in-memory store, RustCrypto PBKDF2 and the system
/// random source.
pub fn services<'a>(
    config: &'a Config,
    store: &'a MemoryStore,
    clock: &'a dyn Clock,
) -> Services<'a, MemoryStore, RustPbkdf2> {
    Services {
        config,
        store,
        hasher: &RustPbkdf2,
        clock,
        rng: &SystemRng,
        aead: &gatehouse::primitives::platform::RustAesGcm,
        verifier: &gatehouse::primitives::jws::RustVerifier,
        fetcher: &gatehouse::primitives::platform::NoFetcher,
        documents: &gatehouse::primitives::platform::NoDocumentCache,
    }
}

/// One Gatehouse: a configuration, an in-memory store and a clock that stands at [`T0`] until
/// the test moves it. The test files wrap it with helpers of their own.
pub struct Gate {
    pub config: Config,
    pub store: MemoryStore,
    pub clock: TestClock,
}

impl Gate {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            store: MemoryStore::new(),
            clock: TestClock(Cell::new(T0)),
        }
    }

    pub fn svc(&self) -> Services<'_, MemoryStore, RustPbkdf2> {
        services(&self.config, &self.store, &self.clock)
    }

    /// Handles `req` as the worker would (outside the proxy).
    pub fn send(&self, req: &Request) -> Response {
        block_on(handle(&self.svc(), req))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn set_time(&self, ms: i64) {
        self.clock.0.set(ms);
    }

    pub fn advance(&self, ms: i64) {
        self.set_time(self.now() + ms);
    }
}

pub fn error_code(res: &Response) -> Option<String> {
    res.json_body()["error"]["code"]
        .as_str()
        .map(str::to_string)
}

/// A response's status and the start of its body, for assertion messages.
pub fn describe(res: &Response) -> String {
    format!(
        "{} {}",
        res.status,
        String::from_utf8_lossy(&res.body)
            .chars()
            .take(300)
            .collect::<String>()
    )
}

#[track_caller]
pub fn expect_status(res: &Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", describe(res));
    res.json_body()
}

#[track_caller]
pub fn expect_error(res: &Response, status: u16, code: &str) {
    assert_eq!(
        (res.status, error_code(res).as_deref()),
        (status, Some(code)),
        "{}",
        describe(res)
    );
}

pub mod prop;

/// The TOTP code of `secret` (base32) at `now_ms` shifted by `steps` time steps, computed by
/// totp-rs directly (not through Gatehouse).
pub fn totp_code(secret: &str, now_ms: i64, steps: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        0,
        30,
        bytes,
        None,
        String::new(),
    );
    totp.generate(((now_ms / 1000) + steps * 30) as u64)
}

/// An upstream that answers every request with `200 {}` and remembers the URLs it was sent.
#[derive(Default)]
pub struct OkCms {
    pub urls: RefCell<Vec<String>>,
}

impl Upstream for OkCms {
    type Body = Vec<u8>;

    async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse<Vec<u8>>, UpstreamFailure> {
        self.urls.borrow_mut().push(request.url);
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        })
    }

    async fn read_body(&self, body: Vec<u8>, _limit: usize) -> Result<Vec<u8>, UpstreamFailure> {
        Ok(body)
    }
}

/// A `forward_all` route at `/{name}/` to `https://{name}.example/api/` with the key `CMS_KEY`
/// injected: reads need the role `user`; writes `write_role`, or no write rule at all.
pub fn forward_all_route(name: &str, write_role: Option<&str>) -> Value {
    let mut route = json!({
        "prefix": format!("/{name}/"),
        "upstream": format!("https://{name}.example/api/"),
        "inject": { "header": "api-key", "value": "{secret}" },
        "forward_all": true,
        "read": { "roles": ["user"], "secret": "CMS_KEY" },
    });
    if let Some(role) = write_role {
        route["write"] = json!({ "roles": [role], "secret": "CMS_KEY" });
    }
    route
}
