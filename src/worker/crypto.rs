//! PBKDF2 and the signature checks of other issuers' tokens through Workers' WebCrypto: native
//! speed instead of wasm, and no RSA or ECDSA code in the wasm build.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

use crate::domain::config::MAX_PBKDF2_ITERATIONS;
use crate::primitives::error::Error;
use crate::primitives::platform::Pbkdf2;

/// PBKDF2-HMAC-SHA256 via `crypto.subtle.deriveBits`.
pub struct WebCryptoPbkdf2;

fn js_err(what: &str) -> impl Fn(JsValue) -> Error + '_ {
    move |err| Error::Internal(format!("{what}: {err:?}"))
}

fn subtle() -> Result<SubtleCrypto, Error> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(js_err("globalThis.crypto"))?;
    let subtle =
        Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(js_err("crypto.subtle"))?;
    Ok(subtle.unchecked_into())
}

impl Pbkdf2 for WebCryptoPbkdf2 {
    async fn derive(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], Error> {
        // Production WebCrypto refuses more; local workerd would not, so refuse here.
        if iterations > MAX_PBKDF2_ITERATIONS {
            return Err(Error::Internal(format!(
                "PBKDF2 with {iterations} iterations exceeds the Workers limit of {MAX_PBKDF2_ITERATIONS}"
            )));
        }
        let subtle = subtle()?;
        let usages = Array::of1(&JsValue::from_str("deriveBits"));
        let key_data = Uint8Array::from(password);
        let key = subtle
            .import_key_with_str("raw", &key_data, "PBKDF2", false, &usages)
            .map_err(js_err("importKey"))?;
        let key: CryptoKey = JsFuture::from(key)
            .await
            .map_err(js_err("importKey"))?
            .unchecked_into();

        let params = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&params, &JsValue::from_str(k), v).map(drop);
        set("name", &JsValue::from_str("PBKDF2")).map_err(js_err("params"))?;
        set("hash", &JsValue::from_str("SHA-256")).map_err(js_err("params"))?;
        set("salt", &Uint8Array::from(salt)).map_err(js_err("params"))?;
        set("iterations", &JsValue::from_f64(f64::from(iterations))).map_err(js_err("params"))?;
        let bits = subtle
            .derive_bits_with_object(&params, &key, 256)
            .map_err(js_err("deriveBits"))?;
        let bits = JsFuture::from(bits).await.map_err(js_err("deriveBits"))?;
        let bytes = Uint8Array::new(&bits);
        let mut out = [0u8; 32];
        if bytes.length() != 32 {
            return Err(Error::Internal(
                "deriveBits returned the wrong length".into(),
            ));
        }
        bytes.copy_to(&mut out);
        Ok(out)
    }
}

/// Signature checks with other issuers' public keys via `crypto.subtle.importKey('jwk')` and
/// `verify` (RSASSA-PKCS1-v1_5, ECDSA P-256, Ed25519).
pub struct WebCryptoVerifier;

impl crate::primitives::jws::SignatureVerifier for WebCryptoVerifier {
    fn verify<'a>(
        &'a self,
        key: &'a crate::primitives::jws::PublicKey,
        message: &'a [u8],
        signature: &'a [u8],
    ) -> futures_util::future::LocalBoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            if !key.signature_fits(signature) {
                return Ok(false);
            }
            let promise =
                super::glue::jws_verify(&key.to_jwk_json(), key.alg.as_str(), signature, message);
            // WebCrypto throws for a key it cannot import (an RSA exponent it refuses, a P-256
            // point off the curve): such a key verifies nothing, as natively.
            let answer = JsFuture::from(promise).await;
            Ok(answer.is_ok_and(|v| v.as_bool() == Some(true)))
        })
    }
}
