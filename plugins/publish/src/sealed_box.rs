//! libsodium's sealed boxes, which GitHub wants Actions secrets encrypted with: the
//! repository's X25519 public key, an ephemeral key pair, XSalsa20-Poly1305.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::PublicKey;
use crypto_box::aead::rand_core::{CryptoRng, Error, RngCore};
use scaffolder_plugin_sdk::{ActionError, Result};

/// Encrypts `plaintext` for the base64 `public_key`; returns the sealed box in base64.
pub fn seal_base64(public_key: &str, plaintext: &[u8]) -> Result<String> {
    let bytes: [u8; 32] = BASE64
        .decode(public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| {
            ActionError::failed("GitHub's repository public key is not 32 bytes of base64")
        })?;
    let sealed = PublicKey::from(bytes)
        .seal(&mut WasiRandom, plaintext)
        .map_err(|_| ActionError::failed("encrypting a secret failed"))?;
    Ok(BASE64.encode(sealed))
}

/// The host's cryptographically secure random source (`wasi:random`).
struct WasiRandom;

impl RngCore for WasiRandom {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        wasip2::random::random::get_random_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let random = wasip2::random::random::get_random_bytes(dest.len() as u64);
        dest.copy_from_slice(&random);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for WasiRandom {}
