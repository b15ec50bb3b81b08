//! The Workers adapter: the only code that touches the Workers runtime.
//!
//! Per request it reads the time once (`Date.now()`), reads the body up to the limit (a refused
//! one on to its end, up to 1 MiB, so that the connection stays usable), and calls the portable
//! core with a D1 store and WebCrypto PBKDF2. Configuration is parsed once per isolate; an
//! invalid configuration answers every request with `misconfigured` and logs the variable's name.

mod crypto;
mod d1;
mod documents;
mod fast;
mod glue;
mod upstream;

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use wasm_bindgen::JsValue;
use worker::{
    console_error, console_log, event, ByteStream, Context, Date, Env, ScheduleContext,
    ScheduledEvent,
};

use crate::domain::config::Config;
use crate::domain::proxy::Route;
use crate::primitives::error::ConfigError;
use crate::primitives::error::Error;
use crate::primitives::http::{flat_headers, headers_from_flat, Method, Request, Response};
use crate::primitives::platform::{FixedClock, SystemRng};
use crate::routes::{self, Outcome};
use crate::services::Services;

use self::crypto::{WebCryptoAesGcm, WebCryptoPbkdf2, WebCryptoVerifier};
use self::d1::D1Store;
use self::documents::CacheApi;
use self::upstream::FetchUpstream;

/// Body limit used before the configuration is known (and when it is invalid).
const FALLBACK_BODY_LIMIT: usize = 65_536;

thread_local! {
    static CONFIG: RefCell<Option<Rc<Result<Config, ConfigError>>>> = const { RefCell::new(None) };
}

/// Reads a var or secret as a string; a var given as a TOML table (a JS object) as its JSON.
fn lookup(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name)).ok()?;
    if let Some(text) = value.as_string() {
        return Some(text);
    }
    if value.is_object() {
        return js_sys::JSON::stringify(&value).ok()?.as_string();
    }
    None
}

/// The configuration, parsed on the first request of this isolate.
fn config(env: &Env) -> Rc<Result<Config, ConfigError>> {
    CONFIG.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let parsed = Config::from_lookup(&|name| lookup(env, name));
                if let Err(err) = &parsed {
                    console_error!("{err}");
                }
                Rc::new(parsed)
            })
            .clone()
    })
}

/// How much of a refused body is still read, and dropped, before the 413 is sent.
///
/// A keep-alive HTTP/1.1 client sends its next request on the same connection as soon as it has
/// an answer. If the worker answers while part of the body is unread, the runtime closes the
/// connection after the answer (workerd when more than 64 KiB are left, which it reads on by
/// itself; Miniflare, so `wrangler dev` and the tests, whatever is left) without a
/// `Connection: close` header (one that a worker sets is dropped). The client's next request on
/// that connection then fails (ECONNRESET, EPIPE) whenever it was sent before the close arrived.
/// Reading the body to its end keeps the connection usable; a larger body than this is refused
/// at once, and its connection is closed.
const DRAIN_LIMIT: u64 = 1 << 20;

/// Converts the runtime's request, reading at most `limit` bytes of body. A body over the limit
/// is read on to its end (see [`DRAIN_LIMIT`]) before the refusal.
async fn read_request(
    req: &web_sys::Request,
    target: Target<'_>,
    limit: usize,
) -> Result<Request, Error> {
    let headers = headers_from_flat(&glue::headers_flat(&req.headers()));
    let declared = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    let mut stream = req.body().map(ByteStream::from);
    if let Some(declared) = declared.filter(|&n| n > limit as u64) {
        // A client that waits for `100 Continue` sends no body after a refusal: nothing to read.
        let waits = headers
            .iter()
            .any(|(k, v)| k == "expect" && v.trim().eq_ignore_ascii_case("100-continue"));
        if let Some(stream) = stream
            .as_mut()
            .filter(|_| !waits && declared <= DRAIN_LIMIT)
        {
            discard(stream, DRAIN_LIMIT).await;
        }
        return Err(Error::PayloadTooLarge(limit));
    }
    // Sized from Content-Length (at most the limit) up to 64 KiB, so a small body is copied once;
    // no more is reserved before the bytes arrive: wasm memory never shrinks.
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n.min(65_536) as usize));
    if let Some(stream) = stream.as_mut() {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|_| Error::BadRequest("the request body could not be read".into()))?;
            if body.len() + chunk.len() > limit {
                discard(stream, DRAIN_LIMIT).await;
                return Err(Error::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
    }
    Ok(target.request(&req.method(), headers, body))
}

/// The parts of the request URL the core reads. The runtime hands an absolute URL it has
/// already parsed and normalized (`scheme://authority/path?query`, no fragment).
#[derive(Clone, Copy)]
struct Target<'a> {
    scheme: &'a str,
    path: &'a str,
    query: &'a str,
}

impl<'a> Target<'a> {
    /// The core's request for this target: the usual path's and the fast path's one conversion.
    fn request(self, method: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Request {
        Request {
            // The method as sent: a method the runtime does not know (SEARCH, PROPFIND…) stays
            // itself and is routed as such, never as a read.
            method: Method::parse(method),
            path: self.path.to_string(),
            query: self.query.to_string(),
            scheme: self.scheme.to_string(),
            headers,
            body,
        }
    }

    fn parse(url: &'a str) -> Result<Self, Error> {
        let unparsable = || Error::BadRequest("the request URL could not be parsed".into());
        let (scheme, rest) = url.split_once("://").ok_or_else(unparsable)?;
        let start = rest.find('/').ok_or_else(unparsable)?;
        let path_and_query = &rest[start..];
        let path_and_query = path_and_query
            .split_once('#')
            .map_or(path_and_query, |(before, _)| before);
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Ok(Self {
            scheme,
            path,
            query,
        })
    }
}

/// Reads the rest of a refused body and drops it, stopping after `budget` bytes or at an error
/// (where the connection is lost anyway).
async fn discard(stream: &mut ByteStream, budget: u64) {
    let mut read = 0u64;
    while read <= budget {
        match stream.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            Some(Err(_)) | None => return,
        }
    }
}

/// The runtime's response: headers in one crossing, the body as bytes or the upstream's stream.
fn respond(
    status: u16,
    headers: &[(String, String)],
    body: &JsValue,
) -> worker::Result<web_sys::Response> {
    let flat = flat_headers(headers).map_err(worker::Error::RustError)?;
    glue::respond(status, &flat, body).map_err(worker::Error::from)
}

/// Logs a local response's line, if it has one (an error's to the error log).
fn log_line(response: &Response) {
    if let Some(line) = &response.log {
        if response.status >= 500 {
            console_error!("{line}");
        } else {
            console_log!("{line}");
        }
    }
}

/// Logs a local response's line and converts it; an upstream answer streams through.
fn send(outcome: Outcome<JsValue>) -> worker::Result<web_sys::Response> {
    match outcome {
        Outcome::Local(response) => {
            log_line(&response);
            let body = if response.body.is_empty() {
                JsValue::NULL
            } else {
                js_sys::Uint8Array::from(response.body.as_slice()).into()
            };
            respond(response.status, &response.headers, &body)
        }
        Outcome::Proxied(answer) => respond(answer.status, &answer.headers, &answer.body),
    }
}

/// The entry takes the runtime's own request (no conversion that reads `request.cf` or copies
/// headers one call at a time).
#[event(fetch)]
async fn fetch(
    req: web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    let now = Date::now().as_millis() as i64;
    let config = config(&env);
    let url = req.url();
    let target = Target::parse(&url);
    // The proxied route, found once: its body limit applies before the body is read.
    let route = match (&target, config.as_ref()) {
        (Ok(target), Ok(config)) => config.proxy.routes.find(target.path),
        _ => None,
    };
    let limit = config
        .as_ref()
        .as_ref()
        .map_or(FALLBACK_BODY_LIMIT, |c| c.body_limit(route));
    let request = match target {
        Ok(target) => read_request(&req, target, limit).await,
        Err(err) => Err(err),
    };
    // An answer given before the core sees the request (a 413, no D1): with a valid
    // configuration, still readable by allowed pages.
    let refused = |config: &Config, err: &Error| {
        let mut response = Response::error(err);
        let origin = req.headers().get("origin").ok().flatten();
        routes::finish_for(config, origin.as_deref(), &mut response.headers);
        Outcome::Local(response)
    };
    let outcome = match (request, config.as_ref()) {
        (_, Err(err)) => Outcome::Local(Response::error(&Error::Misconfigured(err.clone()))),
        (Err(err), Ok(config)) => refused(config, &err),
        (Ok(request), Ok(config)) => match env.d1("DB") {
            Err(_) => refused(
                config,
                &Error::Misconfigured(ConfigError::new(
                    "DB",
                    "no D1 binding named DB (see [[d1_databases]] in wrangler.toml)",
                )),
            ),
            Ok(db) => {
                let store = d1::store(db);
                let clock = FixedClock(now);
                let services = Services {
                    config,
                    store: &store,
                    hasher: &WebCryptoPbkdf2,
                    clock: &clock,
                    rng: &SystemRng,
                    aead: &WebCryptoAesGcm,
                    verifier: &WebCryptoVerifier,
                    fetcher: &FetchUpstream,
                    documents: &CacheApi,
                };
                dispatch(&services, request, route).await
            }
        },
    };
    send(outcome)
}

/// The Cron Trigger: prunes ended sessions, old audit events and passed rate-limit windows.
/// "Now" is the event's scheduled time, so a test can run the prune at any instant.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let now = event.schedule() as i64;
    let config = config(&env);
    let Ok(config) = config.as_ref() else {
        return; // already logged with the variable's name
    };
    let db = match env.d1("DB") {
        Ok(db) => db,
        Err(_) => {
            console_error!("prune: no D1 binding named DB");
            return;
        }
    };
    match crate::services::prune::run(&d1::store(db), config, now).await {
        Ok(counts) => console_log!(
            "prune at {now}: {} families, {} refresh tokens, {} audit events, {} rate-limit counters deleted",
            counts.families,
            counts.tokens,
            counts.audit_events,
            counts.rate_limits
        ),
        Err(err) => console_error!("prune failed: {err}"),
    }
}

#[cfg(not(feature = "selftest"))]
async fn dispatch(
    services: &Services<'_, D1Store, WebCryptoPbkdf2>,
    request: Request,
    route: Option<&Route>,
) -> Outcome<JsValue> {
    routes::serve_on(services, &FetchUpstream, request, route).await
}

/// The self-test build adds `/__selftest/contract` (the storage contract suite against this
/// worker's D1), `/__selftest/pbkdf2` (WebCrypto against the Rust implementation),
/// `/__selftest/aes-gcm` (WebCrypto's AES-256-GCM on the known-answer vector the native tests
/// check RustCrypto's against) and `/__selftest/jws` (WebCrypto's signature checks on the known
/// answers the native checks pass).
#[cfg(feature = "selftest")]
async fn dispatch(
    services: &Services<'_, D1Store, WebCryptoPbkdf2>,
    request: Request,
    route: Option<&Route>,
) -> Outcome<JsValue> {
    use serde_json::json;
    Outcome::Local(match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/__selftest/contract") => {
            let outcomes = crate::domain::contract::run(services.store).await;
            let results: Vec<_> = outcomes
                .iter()
                .map(|o| json!({ "name": o.name, "ok": o.error.is_none(), "error": o.error }))
                .collect();
            Response::json(200, &json!({ "results": results }))
        }
        ("POST", "/__selftest/jws") => {
            let vectors = include_str!("../../tests/fixtures/jws-vectors.json");
            let (ok, cases) =
                crate::primitives::jws::check_vectors(services.verifier, vectors).await;
            let cases: Vec<_> = cases
                .iter()
                .map(|(name, agreed)| json!({ "name": name, "ok": agreed }))
                .collect();
            Response::json(200, &json!({ "ok": ok, "cases": cases }))
        }
        ("POST", "/__selftest/pbkdf2") => {
            let (ok, cases) = crate::domain::password::pbkdf2_cross_check(services.hasher).await;
            Response::json(200, &json!({ "ok": ok, "cases": cases }))
        }
        ("POST", "/__selftest/aes-gcm") => Response::json(
            200,
            &crate::domain::mfa::aes_gcm_known_answer(services.aead).await,
        ),
        _ => return routes::serve_on(services, &FetchUpstream, request, route).await,
    })
}
