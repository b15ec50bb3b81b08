//! Outbound `fetch` to a proxied route's upstream: redirects are never followed, the answer is
//! awaited up to the route's timeout (then the request is aborted), and the body comes back as
//! the runtime's stream, unread.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{AbortController, Delay, Fetch, Headers, Method, RequestInit, RequestRedirect};

use crate::domain::proxy::{Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse};

/// The Workers runtime's `fetch`.
pub struct FetchUpstream;

impl Upstream for FetchUpstream {
    type Body = worker::ResponseBody;

    async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse<Self::Body>, UpstreamFailure> {
        let unreachable = |e: worker::Error| UpstreamFailure::Unreachable(e.to_string());
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(unreachable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(request.method.as_str().to_string()))
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if let Some(body) = request.body {
            // The one copy fetch needs (into JS memory); the Rust bytes are freed here.
            init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
        }
        let outbound = worker::Request::new_with_init(&request.url, &init).map_err(unreachable)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(outbound);
        let answer = std::pin::pin!(fetch.send_with_signal(&signal));
        let timeout = Delay::from(Duration::from_millis(u64::from(request.timeout_ms)));
        match select(answer, timeout).await {
            Either::Left((Ok(response), _)) => {
                let headers = response
                    .headers()
                    .entries()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect();
                let status = response.status_code();
                let (_, body) = response.into_parts();
                Ok(UpstreamResponse {
                    status,
                    headers,
                    body,
                })
            }
            Either::Left((Err(err), _)) => Err(unreachable(err)),
            Either::Right(_) => {
                controller.abort();
                Err(UpstreamFailure::Timeout)
            }
        }
    }

    async fn read_body(&self, body: Self::Body, limit: usize) -> Result<Vec<u8>, UpstreamFailure> {
        let unreadable = |e: worker::Error| UpstreamFailure::Unreachable(e.to_string());
        let mut response = worker::Response::from_body(body).map_err(unreadable)?;
        let mut stream = response.stream().map_err(unreadable)?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(unreadable)?;
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
