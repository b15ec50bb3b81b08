//! The fast path's three calls from the entry module (`entry.mjs`): the decision for a
//! request, the head of its upstream's answer, and the answer when the upstream failed. Every
//! decision is [`crate::routes::fast`]'s; these only convert. Each returns one string:
//!
//! * `F\n{route}\n{authenticated 0|1}\n{timeout ms}\n{method}\n{url}\n{headers}`: send this;
//! * `H\n{headers}`: the answer's head;
//! * `R\n{status}\n{header count}\n{headers}{body}`: answer this instead (any of the three);
//!
//! headers as `name\nvalue\n…`. No answer (`undefined`) from the first: the usual path.

use std::cell::Cell;

use wasm_bindgen::prelude::*;
use worker::{Date, Env};

use super::{config, log_line, Target};
use crate::domain::proxy::UpstreamFailure;
use crate::primitives::error::Error;
use crate::primitives::http::{flat_headers, headers_from_flat, Response};
use crate::primitives::platform::SystemRng;
use crate::routes::fast::{self, Fast};

thread_local! {
    /// Whether this isolate's `env` has its D1 binding: looked up once, not per request.
    static HAS_DB: Cell<Option<bool>> = const { Cell::new(None) };
}

fn has_db(env: &Env) -> bool {
    HAS_DB.with(|known| {
        let has = known.get().unwrap_or_else(|| env.d1("DB").is_ok());
        known.set(Some(has));
        has
    })
}

/// The fast path's decision for a request the runtime received (see the module's text).
#[wasm_bindgen(js_name = gatehouseFastRequest)]
pub fn fast_request(
    env: &Env,
    method: &str,
    url: &str,
    headers: &str,
    has_body: bool,
) -> Option<String> {
    let now = Date::now().as_millis() as i64;
    let config = config(env);
    let config = config.as_ref().as_ref().ok()?;
    // Without its D1 binding the worker answers `misconfigured`: the usual path says so.
    if !has_db(env) {
        return None;
    }
    let target = Target::parse(url).ok()?;
    let request = target.request(method, headers_from_flat(headers), Vec::new());
    let (route, decision) = match fast::try_forward(config, now, &SystemRng, &request, has_body) {
        Fast::Forward { route, decision } => (route, decision),
        Fast::Refuse(response) => return Some(local(response)),
        Fast::Slow => return None,
    };
    let upstream = decision.request;
    if upstream.body.is_some() {
        return None;
    }
    let flat = flat_headers(&upstream.headers).ok()?;
    Some(format!(
        "F\n{route}\n{}\n{}\n{}\n{}\n{flat}",
        u8::from(decision.authenticated),
        upstream.timeout_ms,
        upstream.method.as_str(),
        upstream.url,
    ))
}

/// The head of the upstream's answer (`status`, `headers`) to a request decided on `route`.
#[wasm_bindgen(js_name = gatehouseFastAnswer)]
pub fn fast_answer(
    env: &Env,
    route: u32,
    authenticated: bool,
    origin: Option<String>,
    status: u16,
    headers: &str,
) -> String {
    let head = match config(env).as_ref() {
        Ok(config) => fast::answer_head(
            config,
            route as usize,
            authenticated,
            origin.as_deref(),
            status,
            headers_from_flat(headers),
        )
        .and_then(|head| flat_headers(&head).map_err(Error::Internal)),
        Err(err) => Err(Error::Misconfigured(err.clone())),
    };
    match head {
        Ok(flat) => format!("H\n{flat}"),
        Err(err) => local(Response::error(&err)),
    }
}

/// The answer when the upstream request of a decision on `route` failed with a thrown value
/// named `name` (`TimeoutError` for the deadline) and described as `cause`.
#[wasm_bindgen(js_name = gatehouseFastFailed)]
pub fn fast_failed(
    env: &Env,
    route: u32,
    origin: Option<String>,
    name: &str,
    cause: &str,
) -> String {
    let failure = if name == "TimeoutError" {
        UpstreamFailure::Timeout
    } else {
        UpstreamFailure::Unreachable(cause.to_string())
    };
    local(match config(env).as_ref() {
        Ok(config) => fast::failed(config, route as usize, origin.as_deref(), failure),
        Err(err) => Response::error(&Error::Misconfigured(err.clone())),
    })
}

/// A response of Gatehouse's own as `R\n…`, its line logged.
fn local(response: Response) -> String {
    log_line(&response);
    let flat = flat_headers(&response.headers).unwrap_or_default();
    let count = if flat.is_empty() {
        0
    } else {
        response.headers.len()
    };
    format!(
        "R\n{}\n{count}\n{flat}{}",
        response.status,
        String::from_utf8_lossy(&response.body)
    )
}
