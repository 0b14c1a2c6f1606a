//! The old publisher's per-user encryption, undone for a record's owner: AES-256-GCM (12-byte
//! IV, 16-byte tag, base64) with the key PBKDF2-SHA256 of the owner's public key, salt
//! `oip-gun-fallback`, 100,000 rounds, 32 bytes. The plaintext is the record's `data` as a JSON
//! string, itself JSON-encoded (records written before the publisher stringified `data` hold
//! the object encoded once; both are read).
//!
//! A key costs tens of milliseconds of CPU to derive, so each owner's key is derived once, on
//! the blocking pool rather than a worker's thread, and kept in a bounded cache.

use std::num::NonZeroU32;

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde_json::{Map, Value};

const SALT: &[u8] = b"oip-gun-fallback";
const ROUNDS: NonZeroU32 = NonZeroU32::new(100_000).expect("not zero");
/// Owners' keys kept at once: each is 32 bytes and its owner's public key.
const KEYS_KEPT: usize = 4096;

pub type Key = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("the ciphertext's `{0}` is missing or not base64")]
    Field(&'static str),
    #[error("the record does not decrypt with its owner's public key")]
    WrongKey,
    #[error("what decrypted is not a JSON object")]
    NotAnObject,
}

pub struct Decryptor {
    keys: quick_cache::sync::Cache<String, Key>,
}

impl Default for Decryptor {
    fn default() -> Self {
        Self {
            keys: quick_cache::sync::Cache::new(KEYS_KEPT),
        }
    }
}

impl Decryptor {
    /// The key records encrypted by `public_key` were written with.
    pub async fn key(&self, public_key: &str) -> Key {
        if let Some(key) = self.keys.get(public_key) {
            return key;
        }
        let owned = public_key.to_string();
        let key = actix_web::web::block(move || derive(&owned))
            .await
            .unwrap_or_else(|_| derive(public_key));
        self.keys.insert(public_key.to_string(), key);
        key
    }
}

/// PBKDF2-SHA256 of the public key as written, with the publisher's fallback salt.
pub fn derive(public_key: &str) -> Key {
    let mut key = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        ROUNDS,
        SALT,
        public_key.as_bytes(),
        &mut key,
    );
    key
}

/// The `data` object sealed in `sealed` (`{encrypted, iv, tag}`), opened with `key`.
pub fn open(key: &Key, sealed: &Map<String, Value>) -> Result<Map<String, Value>, CryptError> {
    let field = |name: &'static str| {
        sealed
            .get(name)
            .and_then(Value::as_str)
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or(CryptError::Field(name))
    };
    let (mut sealed, iv, tag) = (field("encrypted")?, field("iv")?, field("tag")?);
    let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| CryptError::Field("iv"))?;
    if tag.len() != 16 {
        return Err(CryptError::Field("tag"));
    }
    sealed.extend_from_slice(&tag);
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"));
    let plain = cipher
        .open_in_place(nonce, Aad::empty(), &mut sealed)
        .map_err(|_| CryptError::WrongKey)?;
    match serde_json::from_slice::<Value>(plain) {
        Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
            Ok(Value::Object(data)) => Ok(data),
            _ => Err(CryptError::NotAnObject),
        },
        Ok(Value::Object(data)) => Ok(data),
        _ => Err(CryptError::NotAnObject),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Computed with Node's `crypto` following the old publisher's `putRecord`, step by step:
    /// the key, and the stored `data` of a private note encrypted under IV 00..0b.
    const PUBLIC_KEY: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const KEY_HEX: &str = "4331bc65769e9cfff03884e3a0caa0863b028d097a876750b5f0dd98c2948826";

    fn vector() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/encrypted-note.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn hex(key: &Key) -> String {
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_key_is_the_publishers() {
        assert_eq!(hex(&derive(PUBLIC_KEY)), KEY_HEX);
    }

    #[test]
    fn a_record_sealed_by_the_publisher_opens_with_its_owners_key_only() {
        let v = vector();
        let sealed = v["put"]["data"]["data"].as_object().unwrap();
        let data = open(&derive(PUBLIC_KEY), sealed).unwrap();
        assert_eq!(data["text"]["value"], "hello world");
        assert_eq!(data["accessControl"]["owner_public_key"], PUBLIC_KEY);
        assert_eq!(
            data["basic"]["tagItems"], "[\"alpha\",\"beta\"]",
            "arrays stay as stored"
        );
        assert_eq!(
            open(&derive("someone-else"), sealed),
            Err(CryptError::WrongKey)
        );
        let once = v["encodedOnce"].as_object().unwrap();
        assert_eq!(
            open(&derive(PUBLIC_KEY), once).unwrap()["text"]["value"],
            "hello world",
            "records sealed before data was stringified"
        );
        let mut tampered = sealed.clone();
        tampered.insert("tag".into(), json!("AAAAAAAAAAAAAAAAAAAAAA=="));
        assert_eq!(
            open(&derive(PUBLIC_KEY), &tampered),
            Err(CryptError::WrongKey)
        );
        tampered.remove("iv");
        assert_eq!(
            open(&derive(PUBLIC_KEY), &tampered),
            Err(CryptError::Field("iv"))
        );
    }

    #[actix_web::test]
    async fn a_key_is_derived_once() {
        let d = Decryptor::default();
        let first = d.key(PUBLIC_KEY).await;
        assert_eq!(hex(&first), KEY_HEX);
        assert!(d.keys.get(PUBLIC_KEY).is_some());
        assert_eq!(d.key(PUBLIC_KEY).await, first);
    }
}
