//! The bindings of `glue.js`: the runtime calls the adapter makes, each one boundary crossing,
//! with headers as one `name\nvalue\n…` string.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/worker/glue.js")]
extern "C" {
    /// The headers as `name\nvalue\n…`, names lower-case.
    #[wasm_bindgen(js_name = headersFlat)]
    pub fn headers_flat(headers: &web_sys::Headers) -> String;

    /// A response with the headers of `flat`; `body`: bytes, a stream or null.
    #[wasm_bindgen(catch)]
    pub fn respond(status: u16, flat: &str, body: &JsValue) -> Result<web_sys::Response, JsValue>;

    /// `fetch` with no redirect and a deadline for the answer's headers.
    #[wasm_bindgen(js_name = upstreamFetch)]
    pub fn upstream_fetch(
        url: &str,
        method: &str,
        flat: &str,
        body: &JsValue,
        timeout_ms: u32,
    ) -> js_sys::Promise;

    /// Whether a JWS signature verifies with a public JWK (WebCrypto `importKey` + `verify`).
    #[wasm_bindgen(js_name = jwsVerify)]
    pub fn jws_verify(jwk_json: &str, alg: &str, signature: &[u8], data: &[u8]) -> js_sys::Promise;

    /// What the named cache (the Workers Cache API) holds for `url`: a Response, or null.
    #[wasm_bindgen(js_name = cacheMatch)]
    pub fn cache_match(name: &str, url: &str) -> js_sys::Promise;

    /// Stores a 200 answer with the headers of `flat` and the bytes `body` for `url` in the
    /// named cache.
    #[wasm_bindgen(js_name = cachePut)]
    pub fn cache_put(name: &str, url: &str, flat: &str, body: &[u8]) -> js_sys::Promise;

    /// The `name` of a thrown value.
    #[wasm_bindgen(js_name = errorName)]
    pub fn error_name(err: &JsValue) -> String;
}
