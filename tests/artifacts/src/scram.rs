//! Checking a password against the SCRAM-SHA-256 verifier PostgreSQL stores for a role
//! (`pg_authid.rolpassword`), computed here independently of the plugin under test
//! (RFC 5802: StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key"))).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Whether `verifier` (`SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>`) was made from
/// `password`. Panics on a verifier of another form.
pub fn verifier_matches(verifier: &str, password: &str) -> bool {
    let rest = verifier
        .strip_prefix("SCRAM-SHA-256$")
        .unwrap_or_else(|| panic!("not a SCRAM-SHA-256 verifier: {verifier}"));
    let (params, keys) = rest.split_once('$').unwrap();
    let (iterations, salt) = params.split_once(':').unwrap();
    let (stored_key, _) = keys.split_once(':').unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        &BASE64.decode(salt).unwrap(),
        iterations.parse().unwrap(),
        &mut salted,
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&salted).unwrap();
    mac.update(b"Client Key");
    BASE64.encode(Sha256::digest(mac.finalize().into_bytes())) == stored_key
}
