//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: the client side of the
//! login exchange, and the verifier PostgreSQL stores for a password, so a new role's
//! password never travels in clear text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default iteration count.
pub const ITERATIONS: u32 = 4096;

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the form `CREATE ROLE ...
/// PASSWORD` accepts as an already-hashed password.
pub fn verifier(password: &str, salt: &[u8]) -> String {
    let salted = salted_password(password, salt, ITERATIONS);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// One login exchange, from the client's first message to checking the server's proof.
pub struct Client {
    password: String,
    first_bare: String,
    nonce: String,
    /// Set once the final message is built: what the server's signature must be.
    expected_server_signature: Option<[u8; 32]>,
}

impl Client {
    /// `nonce` must be fresh random printable text without commas.
    pub fn new(password: &str, nonce: &str) -> Self {
        // PostgreSQL takes the user from the startup message and ignores `n=`.
        Self {
            password: password.to_owned(),
            first_bare: format!("n=,r={nonce}"),
            nonce: nonce.to_owned(),
            expected_server_signature: None,
        }
    }

    /// The `client-first-message` (no channel binding).
    pub fn first_message(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// Answers the `server-first-message` with the `client-final-message`.
    pub fn final_message(&mut self, server_first: &str) -> Result<String, String> {
        let attribute = |name: char| {
            server_first
                .split(',')
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .ok_or_else(|| format!("the server's SCRAM message lacks '{name}='"))
        };
        let nonce = attribute('r')?;
        if !nonce.starts_with(&self.nonce) {
            return Err("the server's SCRAM nonce does not extend ours".into());
        }
        let salt = BASE64
            .decode(attribute('s')?)
            .map_err(|_| "the server's SCRAM salt is not base64".to_owned())?;
        let iterations: u32 = attribute('i')?
            .parse()
            .map_err(|_| "the server's SCRAM iteration count is not a number".to_owned())?;

        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(client_key);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the `server-final-message`: the server proves it knew the password too.
    pub fn verify_server(&self, server_final: &str) -> Result<(), String> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(format!("the server rejected the SCRAM exchange: {error}"));
        }
        let signature = server_final
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v.trim_end_matches('\0')).ok())
            .ok_or("the server's final SCRAM message is malformed")?;
        match self.expected_server_signature {
            Some(expected) if expected.as_slice() == signature.as_slice() => Ok(()),
            _ => Err("the server's SCRAM signature is wrong: it does not know the password".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677, section 3: user "user", password "pencil".
    #[test]
    fn matches_the_rfc_7677_example() {
        let mut client = Client::new("pencil", "rOprNGfwEbeRWgbNEkqO");
        // The RFC's client sends `n=user`; PostgreSQL's sends `n=`, so rebuild it.
        client.first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO".into();
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.final_message(server_first).unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(client.verify_server("v=AAAA").is_err());
    }

    #[test]
    fn verifiers_have_postgres_format() {
        let v = verifier("pencil", b"0123456789abcdef");
        assert!(
            v.starts_with("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"),
            "{v}"
        );
        assert_eq!(v.matches(':').count(), 2);
    }
}
