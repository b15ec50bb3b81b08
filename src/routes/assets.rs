//! The JavaScript client (`clients/js`), compiled into the worker and served at a stable path so
//! a static site can `import { createClient } from 'https://<gatehouse>/client/gatehouse.js'`.

use crate::primitives::http::Response;

/// Path of the ES module.
pub const MODULE_PATH: &str = "/client/gatehouse.js";
/// Path of its TypeScript declarations.
pub const TYPES_PATH: &str = "/client/gatehouse.d.ts";

const MODULE: &str = include_str!("../../clients/js/gatehouse.js");
const TYPES: &str = include_str!("../../clients/js/gatehouse.d.ts");

/// The asset at `path`, if there is one. Any page may load it (`Access-Control-Allow-Origin: *`,
/// without credentials): it is public code, not an answer about anyone.
pub fn serve(path: &str) -> Option<Response> {
    let (body, content_type) = match path {
        MODULE_PATH => (MODULE, "text/javascript; charset=utf-8"),
        TYPES_PATH => (TYPES, "application/typescript; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::empty(200)
        .with_header("content-type", content_type)
        .with_header("cache-control", "public, max-age=300")
        .with_header("x-content-type-options", "nosniff")
        .with_header("access-control-allow-origin", "*")
        .with_header("cross-origin-resource-policy", "cross-origin");
    response.body = body.as_bytes().to_vec();
    Some(response)
}
