//! Who may do what: HS256 JWTs (the same `auth.jwt_secret` for media and writes), the admin
//! token, and the rule for writes: an OIP soul is `<hash12>:<name>`, where `hash12` is the first
//! 12 hex characters of the SHA-256 of its publisher's public key, so a token speaks for the
//! souls whose prefix one of its keys hashes to.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub mod config;
mod error;

use config::AuthConfig;
pub use error::WriteError;

/// Claims of a token whose signature, algorithm and time window were checked.
#[derive(Debug)]
pub struct Verified(serde_json::Map<String, Value>);

impl Verified {
    /// The public keys the token speaks for: its `publicKey` and `publisherPubKey` claims.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        ["publicKey", "publisherPubKey"]
            .into_iter()
            .filter_map(|k| self.text(k))
    }

    /// A claim that is a string.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// `exp`, in seconds since the epoch, when the token has one.
    pub fn expires(&self) -> Option<f64> {
        self.0.get("exp").and_then(Value::as_f64)
    }
}

/// Checks an HS256 JWT. Anything wrong — shape, algorithm, signature, `exp`, `nbf` — is `None`:
/// a bad token counts as no token.
pub fn verify_jwt(token: &str, secret: &[u8], now: SystemTime) -> Option<Verified> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    // The signature covers `header.payload`: everything before the last dot.
    mac.update(&token.as_bytes()[..token.rfind('.')?]);
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
        .ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let Value::Object(claims) = claims else {
        return None;
    };
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let number = |k: &str| claims.get(k).map(|v| v.as_f64());
    match number("exp") {
        Some(Some(exp)) if now >= exp => return None,
        Some(None) => return None,
        _ => {}
    }
    match number("nbf") {
        Some(Some(nbf)) if now < nbf => return None,
        Some(None) => return None,
        _ => {}
    }
    Some(Verified(claims))
}

/// Compares every byte, so the time taken does not reveal how much of a secret was right.
pub fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The soul prefix a publisher's key owns: the first 12 hex characters of its SHA-256.
pub fn publisher_prefix(public_key: &str) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What a write may touch, once `may_write` let it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// `auth.open_writes`: anyone, anything.
    Anyone,
    /// The admin token: anything.
    Admin,
    /// A publisher's token: souls (and links) under this prefix only.
    Publisher(String),
}

impl Authority {
    /// The prefix every soul this write touches must have, if any.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Authority::Publisher(prefix) => Some(prefix),
            Authority::Anyone | Authority::Admin => None,
        }
    }
}

/// Whether `token` may write `soul`, and what else the write may link to.
pub fn may_write(
    soul: &str,
    token: Option<&str>,
    auth: &AuthConfig,
) -> Result<Authority, WriteError> {
    if auth.open_writes {
        return Ok(Authority::Anyone);
    }
    if auth.admin_token.is_none() && auth.jwt_secret.is_none() {
        return Err(WriteError::Disabled);
    }
    let token = token.ok_or(WriteError::NoValidToken)?;
    if auth
        .admin_token
        .as_deref()
        .is_some_and(|admin| same_secret(token, admin))
    {
        return Ok(Authority::Admin);
    }
    let claims = auth
        .jwt_secret
        .as_deref()
        .and_then(|secret| verify_jwt(token, secret.as_bytes(), SystemTime::now()))
        .ok_or(WriteError::NoValidToken)?;
    let prefix = crate::gun::write::prefix_of(soul);
    if claims.keys().any(|key| publisher_prefix(key) == prefix) {
        Ok(Authority::Publisher(prefix.to_string()))
    } else {
        Err(WriteError::NotThePublisher(
            prefix.chars().take(64).collect(),
        ))
    }
}

#[cfg(test)]
pub mod tests {
    use serde_json::json;

    use super::*;

    /// Signs `claims` as an HS256 JWT; the tests' token factory.
    pub fn sign(claims: &Value, secret: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{sig}")
    }

    #[test]
    fn verifies_the_rfc_7519_style_example() {
        // The widely published HS256 example token, signed with "your-256-bit-secret".
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let claims = verify_jwt(token, b"your-256-bit-secret", SystemTime::now()).unwrap();
        assert_eq!(claims.0["name"], "John Doe");
        assert!(verify_jwt(token, b"another-secret", SystemTime::now()).is_none());
    }

    #[test]
    fn bad_tokens_count_as_none() {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let good = sign(&json!({"publicKey": "k", "exp": secs + 60}), "s");
        assert!(verify_jwt(&good, b"s", now).is_some());
        let expired = sign(&json!({"publicKey": "k", "exp": secs - 1}), "s");
        assert!(verify_jwt(&expired, b"s", now).is_none());
        let early = sign(&json!({"publicKey": "k", "nbf": secs + 60}), "s");
        assert!(verify_jwt(&early, b"s", now).is_none());
        // As the old API's `jwt.verify`: no leeway, and `exp` reached is expired.
        let at_exp = sign(&json!({"publicKey": "k", "exp": secs}), "s");
        assert!(verify_jwt(&at_exp, b"s", now).is_none());
        // An `exp` that is not a number is refused, though a token may carry none at all.
        let odd_exp = sign(&json!({"exp": "tomorrow"}), "s");
        assert!(verify_jwt(&odd_exp, b"s", now).is_none());
        let no_exp = sign(&json!({"publicKey": "k"}), "s");
        assert!(verify_jwt(&no_exp, b"s", now).is_some());
        for garbage in ["", "a.b", "a.b.c", "a.b.c.d", "....", "ey.ey.ey"] {
            assert!(verify_jwt(garbage, b"s", now).is_none(), "{garbage}");
        }
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"publicKey":"k"}"#)
        );
        assert!(verify_jwt(&none_alg, b"s", now).is_none());
        let mut tampered = good.clone();
        tampered.insert(good.find('.').unwrap() + 2, 'x');
        assert!(verify_jwt(&tampered, b"s", now).is_none());
    }

    #[test]
    fn writes_need_the_admin_token_or_the_souls_publisher() {
        let auth = AuthConfig {
            jwt_secret: Some("a-secret-of-some-length".into()),
            admin_token: Some("an-admin-token-of-length".into()),
            open_writes: false,
        };
        let key = "02publisher-public-key";
        let soul = format!("{}:workout-1", publisher_prefix(key));
        assert_eq!(publisher_prefix(key).len(), 12);
        let publisher = sign(&json!({"publisherPubKey": key}), "a-secret-of-some-length");
        let stranger = sign(
            &json!({"publicKey": "someone-else"}),
            "a-secret-of-some-length",
        );
        let forged = sign(&json!({"publicKey": key}), "not-the-secret-at-all");
        assert_eq!(
            may_write(&soul, Some("an-admin-token-of-length"), &auth),
            Ok(Authority::Admin)
        );
        assert_eq!(
            may_write(&soul, Some(&publisher), &auth),
            Ok(Authority::Publisher(publisher_prefix(key)))
        );
        assert!(
            matches!(
                may_write(&soul.to_uppercase(), Some(&publisher), &auth),
                Err(WriteError::NotThePublisher(_))
            ),
            "a prefix differing in case is another publisher's"
        );
        assert_eq!(may_write(&soul, None, &auth), Err(WriteError::NoValidToken));
        assert_eq!(
            may_write(&soul, Some(&forged), &auth),
            Err(WriteError::NoValidToken)
        );
        assert!(matches!(
            may_write(&soul, Some(&stranger), &auth),
            Err(WriteError::NotThePublisher(_))
        ));
        assert!(matches!(
            may_write("0123456789ab:x", Some(&publisher), &auth),
            Err(WriteError::NotThePublisher(_))
        ));
        let open = AuthConfig {
            open_writes: true,
            ..AuthConfig::default()
        };
        assert_eq!(may_write(&soul, None, &open), Ok(Authority::Anyone));
        assert_eq!(
            may_write(&soul, Some("x"), &AuthConfig::default()),
            Err(WriteError::Disabled)
        );
    }
}
