//! The Workers Cache API as the [`DocumentCache`]: fetched documents (issuers' JWKS) shared by
//! the isolates of one data centre, through `glue.js`.
//!
//! They live in a cache of their own (`caches.open`), keyed by their URL, so that nothing else
//! the zone caches is read as one of them, nor is one of them ever served in place of a fetch.
//! A document is stored as a 200 answer with `Cache-Control: max-age=<its lifetime>`, which
//! the Cache API honours (it drops the entry then), and `X-Gatehouse-Expires` (Unix ms), from
//! which a reader knows how long the copy stays fresh. A copy without it, past it, not a 200,
//! or larger than the limit asked for is a miss; so is one that cannot be read.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::console_error;

use super::glue;
use super::upstream::FetchUpstream;
use crate::domain::proxy::{Upstream, UpstreamFailure};
use crate::primitives::platform::{CachedDocument, DocumentCache};

/// The cache's name.
const CACHE_NAME: &str = "gatehouse-documents";
/// The header carrying the end of a copy's freshness, in Unix milliseconds.
const EXPIRES_HEADER: &str = "x-gatehouse-expires";

/// `caches.open("gatehouse-documents")`.
pub struct CacheApi;

impl DocumentCache for CacheApi {
    fn get<'a>(
        &'a self,
        url: &'a str,
        limit: usize,
        now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Option<CachedDocument>> {
        Box::pin(async move {
            read(url, limit, now_ms).await.unwrap_or_else(|cause| {
                console_error!("document cache: reading {url}: {cause}");
                None
            })
        })
    }

    fn put<'a>(
        &'a self,
        url: &'a str,
        body: &'a [u8],
        max_age_secs: i64,
        now_ms: i64,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let flat = format!(
                "content-type\napplication/json\ncache-control\nmax-age={max_age_secs}\n{EXPIRES_HEADER}\n{}\n",
                now_ms + max_age_secs * 1000
            );
            JsFuture::from(glue::cache_put(CACHE_NAME, url, &flat, body))
                .await
                .map(|_| ())
                .map_err(|err| {
                    let cause = format!("storing {url}: {err:?}");
                    console_error!("document cache: {cause}");
                    cause
                })
        })
    }
}

async fn read(url: &str, limit: usize, now_ms: i64) -> Result<Option<CachedDocument>, String> {
    let found = JsFuture::from(glue::cache_match(CACHE_NAME, url))
        .await
        .map_err(|err| format!("{err:?}"))?;
    if found.is_null() || found.is_undefined() {
        return Ok(None);
    }
    let response: web_sys::Response = found
        .dyn_into()
        .map_err(|_| "the cache answered no Response".to_string())?;
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let expires = header(EXPIRES_HEADER).and_then(|v| v.trim().parse::<i64>().ok());
    let Some(expires_ms) = expires.filter(|e| *e > now_ms) else {
        return Ok(None);
    };
    if response.status() != 200 {
        return Ok(None);
    }
    if let Some(length) = header("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        if length > limit as u64 {
            return Err(format!("the copy is larger than {limit} bytes"));
        }
    }
    let body = response.body().map_or(JsValue::NULL, JsValue::from);
    let body = FetchUpstream
        .read_body(body, limit)
        .await
        .map_err(|failure| match failure {
            UpstreamFailure::Unreachable(cause) => cause,
            UpstreamFailure::Timeout => "timed out".into(),
        })?;
    Ok(Some(CachedDocument { body, expires_ms }))
}
