//! The proxied request's fast path: the same phases as every proxied request ([`decide`]),
//! run to completion at once when they need nothing but memory.
//!
//! A proxied request without a body (a read, mostly) from a caller the isolate has seen within
//! `REVOCATION_DELAY_SECONDS` (or from nobody) needs no storage, no fetch and no wait: its token is in the verify cache, its
//! session, user or key in the liveness cache, and the rest is computation. [`try_forward`]
//! runs [`decide`] with every outside service replaced by [`Offline`], which never answers (and
//! remembers that it was asked), and polls it once. Only an outcome reached without asking it
//! anything is taken: the upstream request, or a refusal (answered as the usual path answers
//! it, so that a bad token costs one signature check, not two). Anything else (a cache miss,
//! an owner lookup, an external issuer's keys or signature check) stops at its first call to
//! the outside world, before any of its effects, and is left to the usual path, which then does
//! all of it: nothing is done twice and nothing is skipped. The adapter sends the decided request
//! and hands the answer's head to [`answer_head`]: no future, no executor, one call each way.

use std::cell::Cell;

use futures_util::future::{self, LocalBoxFuture};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;

use super::{answered, decide, finish, finish_for, upstream_error, Decision};
use crate::domain::config::Config;
use crate::domain::proxy::{Route, Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse};
use crate::domain::store::sql::{Executor, Outcome, SqlStore, Statement};
use crate::primitives::cors;
use crate::primitives::error::Error;
use crate::primitives::http::{Request, Response};
use crate::primitives::jws::{PublicKey, SignatureVerifier};
use crate::primitives::platform::{
    AesGcm, CachedDocument, DocumentCache, Fetched, Fetcher, FixedClock, LocalFuture, Pbkdf2, Rng,
};
use crate::services::Services;

/// What the fast path makes of a request.
#[derive(Debug)]
pub enum Fast {
    /// Serve it the usual way: it has a body, is a preflight or not proxied, or needs storage,
    /// a fetch, WebCrypto or an owner lookup.
    Slow,
    /// Refused from memory alone (a bad or expired token, a role the caller lacks, a path
    /// outside the base…): the usual path would answer exactly this, after the same work again.
    Refuse(Response),
    /// Send `decision.request` upstream; `route` is the route's position for [`answer_head`].
    Forward {
        /// The route's position in the configuration.
        route: usize,
        /// The decided upstream request.
        decision: Decision,
    },
}

/// The fast path's decision for `req` (sent with a body when `has_body`, or when it declares
/// one) at `now_ms`.
pub fn try_forward(
    config: &Config,
    now_ms: i64,
    rng: &dyn Rng,
    req: &Request,
    has_body: bool,
) -> Fast {
    let declares_body = req
        .header("content-length")
        .is_some_and(|n| n.trim() != "0")
        || req.header("transfer-encoding").is_some();
    if has_body || declares_body || cors::preflight(&config.browser.allowed_origins, req).is_some()
    {
        return Fast::Slow;
    }
    let Some((position, route)) = config.proxy.routes.position(&req.path) else {
        return Fast::Slow;
    };
    let offline = Offline::default();
    let store = SqlStore::new(&offline);
    let clock = FixedClock(now_ms);
    let svc = Services {
        config,
        store: &store,
        hasher: &offline,
        clock: &clock,
        rng,
        aead: &offline,
        verifier: &offline,
        fetcher: &offline,
        documents: &offline,
    };
    let decided = decide(&svc, &offline, route, req, Vec::new()).now_or_never();
    if offline.touched.get() {
        return Fast::Slow;
    }
    match decided {
        Some(Ok(decision)) => Fast::Forward {
            route: position,
            decision,
        },
        Some(Err(err)) => {
            let mut response = Response::error(&err);
            finish(config, req, &mut response.headers);
            Fast::Refuse(response)
        }
        None => Fast::Slow,
    }
}

/// The head of the upstream's answer to a request decided by [`try_forward`] on route
/// `route` (its position), as the client gets it: filtered as every proxied answer, with the
/// CORS headers for the request's `origin`.
pub fn answer_head(
    config: &Config,
    route: usize,
    authenticated: bool,
    origin: Option<&str>,
    status: u16,
    headers: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, Error> {
    let route = route_at(config, route)?;
    let mut head = answered(
        route,
        authenticated,
        UpstreamResponse {
            status,
            headers,
            body: (),
        },
    )
    .headers;
    finish_for(config, origin, &mut head);
    Ok(head)
}

/// The answer when the upstream request of a fast-path decision on route `route` failed.
pub fn failed(
    config: &Config,
    route: usize,
    origin: Option<&str>,
    failure: UpstreamFailure,
) -> Response {
    let err = match route_at(config, route) {
        Ok(route) => upstream_error(route, failure),
        Err(err) => err,
    };
    let mut response = Response::error(&err);
    finish_for(config, origin, &mut response.headers);
    response
}

/// The route at `position`, as [`try_forward`] named it.
fn route_at(config: &Config, position: usize) -> Result<&Route, Error> {
    config
        .proxy
        .routes
        .get(position)
        .ok_or_else(|| Error::Internal("the fast path named no configured route".into()))
}

/// Every outside service at once, none of them answering: a call never completes (so the work
/// that asked stops there, before anything that would follow the answer) and is remembered, so
/// that a decision which needed one is never taken.
#[derive(Debug, Default)]
pub struct Offline {
    touched: Cell<bool>,
}

impl Offline {
    /// A call: remembered, and never answered.
    fn ask<'a, T: 'a>(&self) -> LocalBoxFuture<'a, T> {
        self.touched.set(true);
        Box::pin(future::pending())
    }

    /// Whether anything was asked of it.
    pub fn touched(&self) -> bool {
        self.touched.get()
    }
}

impl Executor for &Offline {
    type Rows = ();

    async fn one(&self, _: Statement<'_>) -> Result<Outcome<()>, Error> {
        self.ask().await
    }

    async fn batch(&self, _: Vec<Statement<'_>>) -> Result<Vec<Outcome<()>>, Error> {
        self.ask().await
    }

    fn rows<T: DeserializeOwned>(_: ()) -> Result<Vec<T>, Error> {
        Ok(Vec::new())
    }
}

impl Pbkdf2 for Offline {
    async fn derive(&self, _: &[u8], _: &[u8], _: u32) -> Result<[u8; 32], Error> {
        self.ask().await
    }
}

impl AesGcm for Offline {
    fn seal<'a>(
        &'a self,
        _: &'a [u8; 32],
        _: &'a [u8; 12],
        _: &'a [u8],
        _: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>> {
        self.ask()
    }

    fn open<'a>(
        &'a self,
        _: &'a [u8; 32],
        _: &'a [u8; 12],
        _: &'a [u8],
        _: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>> {
        self.ask()
    }
}

impl SignatureVerifier for Offline {
    fn verify<'a>(
        &'a self,
        _: &'a PublicKey,
        _: &'a [u8],
        _: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<bool, Error>> {
        self.ask()
    }
}

impl Fetcher for Offline {
    fn get<'a>(
        &'a self,
        _: &'a str,
        _: usize,
        _: u32,
    ) -> LocalBoxFuture<'a, Result<Fetched, String>> {
        self.ask()
    }
}

impl DocumentCache for Offline {
    fn get<'a>(
        &'a self,
        _: &'a str,
        _: usize,
        _: i64,
    ) -> LocalBoxFuture<'a, Option<CachedDocument>> {
        self.ask()
    }

    fn put<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
        _: i64,
        _: i64,
    ) -> LocalBoxFuture<'a, Result<(), String>> {
        self.ask()
    }
}

impl Upstream for Offline {
    type Body = ();

    async fn send(&self, _: UpstreamRequest) -> Result<UpstreamResponse<()>, UpstreamFailure> {
        self.ask().await
    }

    async fn read_body(&self, _: (), _: usize) -> Result<Vec<u8>, UpstreamFailure> {
        self.ask().await
    }
}
