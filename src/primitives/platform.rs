//! What the core needs from the world, passed in rather than reached for.
//!
//! Workers forbid randomness at global scope and `SystemTime::now` panics on
//! wasm32-unknown-unknown, so the adapter reads `Date.now()` once per request and the core only
//! ever sees the [`Clock`] it is handed.

use crate::primitives::error::Error;

/// Current time in Unix milliseconds.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// A cryptographically secure random source.
pub trait Rng {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output. Natively [`RustPbkdf2`]; in the worker, WebCrypto.
#[allow(async_fn_in_trait)] // Workers futures are !Send; implementors never need Send here.
pub trait Pbkdf2 {
    /// Derives 32 bytes from `password` and `salt` with `iterations` rounds.
    async fn derive(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], Error>;
}

/// A boxed future of the worker's kind (never `Send`), so that [`AesGcm`] can be handed in as a
/// trait object.
pub type LocalFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag: `seal` returns the ciphertext with the
/// tag appended, `open` takes it so and fails on any change to it, the key, the nonce or the
/// associated data. Natively [`RustAesGcm`] (RustCrypto's `aes-gcm`); in the worker, WebCrypto.
/// A trait object (boxed futures) so that [`crate::services::Services`] holds it without
/// another type parameter.
pub trait AesGcm {
    /// Encrypts `plaintext`, authenticating `aad` with it.
    fn seal<'a>(
        &'a self,
        key: &'a [u8; 32],
        nonce: &'a [u8; 12],
        aad: &'a [u8],
        plaintext: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>>;

    /// Decrypts what [`AesGcm::seal`] made; `Err` when anything does not authenticate.
    fn open<'a>(
        &'a self,
        key: &'a [u8; 32],
        nonce: &'a [u8; 12],
        aad: &'a [u8],
        ciphertext: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>>;
}

/// The native AES-256-GCM (RustCrypto's `aes-gcm`), for tests and the command line; the worker
/// uses WebCrypto and does not carry this code.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct RustAesGcm;

#[cfg(not(target_arch = "wasm32"))]
impl RustAesGcm {
    fn run(
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        data: &[u8],
        encrypt: bool,
    ) -> Result<Vec<u8>, Error> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let cipher = aes_gcm::Aes256Gcm::new(key.into());
        let payload = Payload { msg: data, aad };
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let result = if encrypt {
            cipher.encrypt(nonce, payload)
        } else {
            cipher.decrypt(nonce, payload)
        };
        result.map_err(|_| Error::Internal("AES-GCM: the ciphertext does not authenticate".into()))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl AesGcm for RustAesGcm {
    fn seal<'a>(
        &'a self,
        key: &'a [u8; 32],
        nonce: &'a [u8; 12],
        aad: &'a [u8],
        plaintext: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move { Self::run(key, nonce, aad, plaintext, true) })
    }

    fn open<'a>(
        &'a self,
        key: &'a [u8; 32],
        nonce: &'a [u8; 12],
        aad: &'a [u8],
        ciphertext: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move { Self::run(key, nonce, aad, ciphertext, false) })
    }
}

/// A clock fixed at one instant (the adapter's per-request `Date.now()`, or a test's time).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// The operating system's (natively) or WebCrypto's (in the worker) random source, through
/// `getrandom`. Only ever called while handling a request, never at global scope.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        // getrandom fails only where no source exists at all; a token made without randomness
        // must never be issued, so this is a hard stop rather than a silent fallback.
        getrandom::fill(buf).expect("no secure random source available");
    }
}

/// The portable PBKDF2 implementation (RustCrypto's `pbkdf2`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RustPbkdf2;

impl Pbkdf2 for RustPbkdf2 {
    async fn derive(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], Error> {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
        Ok(out)
    }
}

/// Random bytes as an array.
pub fn random_array<const N: usize>(rng: &dyn Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}

/// A fetched document: its status, `Cache-Control` and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The body, at most the limit asked for.
    pub body: Vec<u8>,
}

/// `GET` of a public document (an issuer's JWKS): redirects are not followed, the answer is
/// awaited up to `timeout_ms`, and a body over `limit` bytes is refused, not read on.
pub trait Fetcher {
    /// Fetches `url`; `Err` carries the cause for the log (unreachable, timeout, too large).
    fn get<'a>(
        &'a self,
        url: &'a str,
        limit: usize,
        timeout_ms: u32,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<Fetched, String>>;
}

/// A fetcher with no network: every fetch fails (builds and tests that never fetch).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFetcher;

impl Fetcher for NoFetcher {
    fn get<'a>(
        &'a self,
        url: &'a str,
        _limit: usize,
        _timeout_ms: u32,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<Fetched, String>> {
        Box::pin(async move { Err(format!("no network here to fetch {url}")) })
    }
}

/// A document kept by [`DocumentCache`]: its body and until when it is fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDocument {
    /// The body as stored.
    pub body: Vec<u8>,
    /// Unix milliseconds at which it stops being fresh (stored with it).
    pub expires_ms: i64,
}

/// Documents fetched by URL (issuers' JWKS), kept beyond the isolate: in the worker, the Workers
/// Cache API, shared by the isolates of one data centre; natively [`MemoryDocumentCache`].
/// Nothing in it is trusted: a reader checks what it gets as it would a fetched answer.
pub trait DocumentCache {
    /// The document stored for `url`, if one is there, fresh at `now_ms` and at most `limit`
    /// bytes long (a miss otherwise; a failure to read is a miss too, logged by the adapter).
    fn get<'a>(
        &'a self,
        url: &'a str,
        limit: usize,
        now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Option<CachedDocument>>;

    /// Stores `body` for `url`, fresh for `max_age_secs` from `now_ms`, in place of what was
    /// stored. `Err` carries the cause for the log; a failed store changes nothing else.
    fn put<'a>(
        &'a self,
        url: &'a str,
        body: &'a [u8],
        max_age_secs: i64,
        now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<(), String>>;
}

/// No cache beyond the isolate: every read misses, every store is dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDocumentCache;

impl DocumentCache for NoDocumentCache {
    fn get<'a>(
        &'a self,
        _url: &'a str,
        _limit: usize,
        _now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Option<CachedDocument>> {
        Box::pin(async { None })
    }

    fn put<'a>(
        &'a self,
        _url: &'a str,
        _body: &'a [u8],
        _max_age_secs: i64,
        _now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A [`DocumentCache`] in memory, for tests: several service instances ("isolates") handed the
/// same one share it, as the isolates of a data centre share the Cache API.
#[derive(Debug, Default)]
pub struct MemoryDocumentCache {
    entries: std::cell::RefCell<std::collections::HashMap<String, CachedDocument>>,
}

impl MemoryDocumentCache {
    /// What is stored for `url`, fresh or not.
    pub fn stored(&self, url: &str) -> Option<CachedDocument> {
        self.entries.borrow().get(url).cloned()
    }

    /// Stores `doc` for `url` as it is (a test's way to plant a document).
    pub fn plant(&self, url: &str, doc: CachedDocument) {
        self.entries.borrow_mut().insert(url.to_string(), doc);
    }
}

impl DocumentCache for MemoryDocumentCache {
    fn get<'a>(
        &'a self,
        url: &'a str,
        limit: usize,
        now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Option<CachedDocument>> {
        let found = self
            .stored(url)
            .filter(|d| now_ms < d.expires_ms && d.body.len() <= limit);
        Box::pin(async move { found })
    }

    fn put<'a>(
        &'a self,
        url: &'a str,
        body: &'a [u8],
        max_age_secs: i64,
        now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<(), String>> {
        let doc = CachedDocument {
            body: body.to_vec(),
            expires_ms: now_ms + max_age_secs * 1000,
        };
        self.plant(url, doc);
        Box::pin(async { Ok(()) })
    }
}
