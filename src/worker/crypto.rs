//! PBKDF2 and the signature checks of other issuers' tokens through Workers' WebCrypto: native
//! speed instead of wasm, and no RSA or ECDSA code in the wasm build.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

use crate::domain::config::MAX_PBKDF2_ITERATIONS;
use crate::primitives::error::Error;
use crate::primitives::platform::{AesGcm, LocalFuture, Pbkdf2};

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

/// AES-256-GCM via `crypto.subtle.encrypt`/`decrypt` (128-bit tag appended to the ciphertext,
/// as RustCrypto's `aes-gcm` does it natively).
pub struct WebCryptoAesGcm;

impl WebCryptoAesGcm {
    async fn run(
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        data: &[u8],
        encrypt: bool,
    ) -> Result<Vec<u8>, Error> {
        let subtle = subtle()?;
        let usage = if encrypt { "encrypt" } else { "decrypt" };
        let usages = Array::of1(&JsValue::from_str(usage));
        let key_data = Uint8Array::from(&key[..]);
        let key = subtle
            .import_key_with_str("raw", &key_data, "AES-GCM", false, &usages)
            .map_err(js_err("importKey"))?;
        let key: CryptoKey = JsFuture::from(key)
            .await
            .map_err(js_err("importKey"))?
            .unchecked_into();
        let params = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&params, &JsValue::from_str(k), v).map(drop);
        set("name", &JsValue::from_str("AES-GCM")).map_err(js_err("params"))?;
        set("iv", &Uint8Array::from(&nonce[..])).map_err(js_err("params"))?;
        set("additionalData", &Uint8Array::from(aad)).map_err(js_err("params"))?;
        set("tagLength", &JsValue::from_f64(128.0)).map_err(js_err("params"))?;
        let input = Uint8Array::from(data);
        let promise = if encrypt {
            subtle.encrypt_with_object_and_buffer_source(&params, &key, &input)
        } else {
            subtle.decrypt_with_object_and_buffer_source(&params, &key, &input)
        }
        .map_err(js_err(usage))?;
        // A ciphertext that does not authenticate rejects the promise (OperationError).
        let out = JsFuture::from(promise)
            .await
            .map_err(|_| Error::Internal("AES-GCM: the ciphertext does not authenticate".into()))?;
        Ok(Uint8Array::new(&out).to_vec())
    }
}

impl AesGcm for WebCryptoAesGcm {
    fn seal<'a>(
        &'a self,
        key: &'a [u8; 32],
        nonce: &'a [u8; 12],
        aad: &'a [u8],
        plaintext: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(Self::run(key, nonce, aad, plaintext, true))
    }

    fn open<'a>(
        &'a self,
        key: &'a [u8; 32],
        nonce: &'a [u8; 12],
        aad: &'a [u8],
        ciphertext: &'a [u8],
    ) -> LocalFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(Self::run(key, nonce, aad, ciphertext, false))
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
