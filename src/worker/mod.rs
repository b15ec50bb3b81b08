//! The Workers adapter: the only code that touches the Workers runtime.
//!
//! Per request it reads the time once (`Date.now()`), reads the body up to the limit (a refused
//! one on to its end, up to 1 MiB, so that the connection stays usable), and calls the portable
//! core with a D1 store and WebCrypto PBKDF2. Configuration is parsed once per isolate; an
//! invalid configuration answers every request with `misconfigured` and logs the variable's name.

mod crypto;
mod d1;
mod upstream;

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use worker::{
    console_error, console_log, event, ByteStream, Context, Date, Env, Headers, ScheduleContext,
    ScheduledEvent,
};

use crate::domain::config::Config;
use crate::domain::proxy::Route;
use crate::primitives::error::ConfigError;
use crate::primitives::error::Error;
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::{FixedClock, SystemRng};
use crate::routes::{self, Outcome};
use crate::services::Services;

use self::crypto::WebCryptoPbkdf2;
use self::d1::D1Store;
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
    mut req: worker::Request,
    url: &worker::Url,
    limit: usize,
) -> Result<Request, Error> {
    let mut headers = Vec::new();
    for (name, value) in req.headers().entries() {
        headers.push((name.to_ascii_lowercase(), value));
    }
    let declared = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    let mut stream = match req.inner().body() {
        Some(_) => Some(
            req.stream()
                .map_err(|e| Error::Internal(format!("reading the body: {e}")))?,
        ),
        None => None,
    };
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
    Ok(Request {
        // The method as sent: the runtime's `Method` type reads every method it does not know
        // (SEARCH, PROPFIND…) as GET, which would route it as a read.
        method: crate::primitives::http::Method::parse(&req.inner().method()),
        path: url.path().to_string(),
        query: url.query().unwrap_or("").to_string(),
        scheme: url.scheme().to_string(),
        headers,
        body,
    })
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

fn headers_of(pairs: &[(String, String)]) -> worker::Result<Headers> {
    let headers = Headers::new();
    for (name, value) in pairs {
        headers.append(name, value)?;
    }
    Ok(headers)
}

fn to_worker(response: Response) -> worker::Result<worker::Response> {
    let headers = headers_of(&response.headers)?;
    let out = if response.body.is_empty() {
        worker::Response::empty()?
    } else {
        worker::Response::from_bytes(response.body)?
    };
    Ok(out.with_status(response.status).with_headers(headers))
}

/// Logs a local response's line and converts it; an upstream answer streams through.
fn send(outcome: Outcome<worker::ResponseBody>) -> worker::Result<worker::Response> {
    match outcome {
        Outcome::Local(response) => {
            if let Some(line) = &response.log {
                if response.status >= 500 {
                    console_error!("{line}");
                } else {
                    console_log!("{line}");
                }
            }
            to_worker(response)
        }
        Outcome::Proxied(answer) => Ok(worker::ResponseBuilder::new()
            .with_status(answer.status)
            .with_headers(headers_of(&answer.headers)?)
            .body(answer.body)),
    }
}

#[event(fetch)]
async fn fetch(req: worker::Request, env: Env, _ctx: Context) -> worker::Result<worker::Response> {
    let now = Date::now().as_millis() as i64;
    let config = config(&env);
    let url = req
        .url()
        .map_err(|e| Error::BadRequest(format!("the request URL could not be parsed: {e}")));
    // The proxied route, found once: its body limit applies before the body is read.
    let route = match (&url, config.as_ref()) {
        (Ok(url), Ok(config)) => config.proxy.routes.find(url.path()),
        _ => None,
    };
    let limit = config
        .as_ref()
        .as_ref()
        .map_or(FALLBACK_BODY_LIMIT, |c| c.body_limit(route));
    let origin = req.headers().get("origin").ok().flatten();
    // An answer given before the core sees the request (a 413, no D1): with a valid
    // configuration, still readable by allowed pages.
    let refused = |config: &Config, err: &Error| {
        let mut response = Response::error(err);
        crate::primitives::cors::apply(
            &config.browser.allowed_origins,
            origin.as_deref(),
            &mut response.headers,
        );
        Outcome::Local(response)
    };
    let request = match url {
        Ok(url) => read_request(req, &url, limit).await,
        Err(err) => Err(err),
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
) -> Outcome<worker::ResponseBody> {
    routes::serve_on(services, &FetchUpstream, request, route).await
}

/// The self-test build adds `/__selftest/contract` (the storage contract suite against this
/// worker's D1) and `/__selftest/pbkdf2` (WebCrypto against the Rust implementation).
#[cfg(feature = "selftest")]
async fn dispatch(
    services: &Services<'_, D1Store, WebCryptoPbkdf2>,
    request: Request,
    route: Option<&Route>,
) -> Outcome<worker::ResponseBody> {
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
        ("POST", "/__selftest/pbkdf2") => {
            let (ok, cases) = crate::domain::password::pbkdf2_cross_check(services.hasher).await;
            Response::json(200, &json!({ "ok": ok, "cases": cases }))
        }
        _ => return routes::serve_on(services, &FetchUpstream, request, route).await,
    })
}
