//! The JavaScript client (`clients/js`), compiled into the worker and served at a stable path so
//! a static site can `import { createClient } from 'https://<gatehouse>/client/gatehouse.js'`,
//! and the OpenAPI document of the HTTP API.

use crate::primitives::http::Response;

/// Path of the ES module.
pub const MODULE_PATH: &str = "/client/gatehouse.js";
/// Path of its TypeScript declarations.
pub const TYPES_PATH: &str = "/client/gatehouse.d.ts";
/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

const MODULE: &str = include_str!("../../clients/js/gatehouse.js");
const TYPES: &str = include_str!("../../clients/js/gatehouse.d.ts");
/// `docs/openapi.yaml` as JSON, converted ahead of time (`tests/openapi.rs` fails when it is not
/// the current conversion), so the worker carries no YAML parser.
const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// The asset at `path`, if there is one. Any page may load it (`Access-Control-Allow-Origin: *`,
/// without credentials): it is public code or documentation, not an answer about anyone.
pub fn serve(path: &str) -> Option<Response> {
    let (body, content_type) = match path {
        MODULE_PATH => (MODULE, "text/javascript; charset=utf-8"),
        TYPES_PATH => (TYPES, "application/typescript; charset=utf-8"),
        OPENAPI_PATH => (OPENAPI, "application/json"),
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
