//! Outbound `fetch` to a proxied route's upstream through `glue.js`: redirects are never
//! followed, the answer's headers are awaited up to the route's timeout (then the request is
//! aborted), and the body comes back as the runtime's stream, unread.

use futures_util::StreamExt;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::ByteStream;

use super::glue;
use crate::domain::proxy::{Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse};
use crate::primitives::http::{flat_headers, headers_from_flat};

/// The Workers runtime's `fetch`.
pub struct FetchUpstream;

impl Upstream for FetchUpstream {
    /// The answer's body stream, or `null`.
    type Body = JsValue;

    async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse<JsValue>, UpstreamFailure> {
        let flat = flat_headers(&request.headers).map_err(UpstreamFailure::Unreachable)?;
        let body = match &request.body {
            // The one copy fetch needs (into JS memory).
            Some(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
            None => JsValue::NULL,
        };
        let promise = glue::upstream_fetch(
            &request.url,
            request.method.as_str(),
            &flat,
            &body,
            request.timeout_ms,
        );
        let answer = JsFuture::from(promise).await.map_err(|err| {
            if glue::error_name(&err) == "TimeoutError" {
                UpstreamFailure::Timeout
            } else {
                UpstreamFailure::Unreachable(format!("{err:?}"))
            }
        })?;
        let response: web_sys::Response = answer
            .dyn_into()
            .map_err(|_| UpstreamFailure::Unreachable("fetch answered no Response".into()))?;
        Ok(UpstreamResponse {
            status: response.status(),
            headers: headers_from_flat(&glue::headers_flat(&response.headers())),
            body: response.body().map_or(JsValue::NULL, JsValue::from),
        })
    }

    async fn read_body(&self, body: JsValue, limit: usize) -> Result<Vec<u8>, UpstreamFailure> {
        let Ok(stream) = body.dyn_into::<web_sys::ReadableStream>() else {
            return Ok(Vec::new());
        };
        let mut stream = ByteStream::from(stream);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| UpstreamFailure::Unreachable(e.to_string()))?;
            if out.len() + chunk.len() > limit {
                return Err(UpstreamFailure::Unreachable(format!(
                    "the answer is larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl crate::primitives::platform::Fetcher for FetchUpstream {
    fn get<'a>(
        &'a self,
        url: &'a str,
        limit: usize,
        timeout_ms: u32,
    ) -> futures_util::future::LocalBoxFuture<
        'a,
        Result<crate::primitives::platform::Fetched, String>,
    > {
        Box::pin(async move {
            let failure = |f: UpstreamFailure| match f {
                UpstreamFailure::Unreachable(cause) => cause,
                UpstreamFailure::Timeout => format!("no answer within {timeout_ms} ms"),
            };
            let request = UpstreamRequest {
                method: crate::primitives::http::Method::parse("GET"),
                url: url.to_string(),
                headers: vec![("accept".into(), "application/json".into())],
                body: None,
                timeout_ms,
            };
            let answer = self.send(request).await.map_err(failure)?;
            let cache_control = answer
                .headers
                .iter()
                .find(|(k, _)| k == "cache-control")
                .map(|(_, v)| v.clone());
            let body = self.read_body(answer.body, limit).await.map_err(failure)?;
            Ok(crate::primitives::platform::Fetched {
                status: answer.status,
                cache_control,
                body,
            })
        })
    }
}
