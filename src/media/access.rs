//! Who may read a media file: the manifest's `accessLevel`, and for anything not public a bearer
//! JWT (HS256) whose `publicKey` or `publisherPubKey` claim names the owner.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::manifest::Manifest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("this media is private: a valid bearer token is required")]
    NoValidToken,
    #[error("this media belongs to someone else")]
    NotTheOwner,
    #[error("private media cannot be served: no JWT secret is configured")]
    NoSecret,
}

/// Claims of a token whose signature, algorithm and time window were checked.
#[derive(Debug)]
pub struct Verified(serde_json::Map<String, Value>);

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

/// Decides whether a request may read the media that `manifest` describes.
pub fn check(
    manifest: Option<&Manifest>,
    token: Option<&str>,
    secret: Option<&str>,
) -> Result<(), AccessError> {
    let Some(manifest) = manifest else {
        return Ok(());
    };
    if manifest.is_public() {
        return Ok(());
    }
    let secret = secret.ok_or(AccessError::NoSecret)?;
    let claims = token
        .and_then(|t| verify_jwt(t, secret.as_bytes(), SystemTime::now()))
        .ok_or(AccessError::NoValidToken)?;
    let owner = manifest.user_public_key.as_deref();
    let holder = ["publicKey", "publisherPubKey"]
        .iter()
        .filter_map(|k| claims.0.get(*k).and_then(Value::as_str));
    match owner {
        Some(owner) if holder.into_iter().any(|k| k == owner) => Ok(()),
        _ => Err(AccessError::NotTheOwner),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;

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
        let odd_exp = sign(&json!({"exp": "tomorrow"}), "s");
        assert!(verify_jwt(&odd_exp, b"s", now).is_none());
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
    fn manifest_rules() {
        let manifest = |v: Value| serde_json::from_value::<Manifest>(v).unwrap();
        let public = manifest(json!({"accessLevel": "public"}));
        let private = manifest(json!({"accessLevel": "private", "userPublicKey": "owner"}));
        let unset = manifest(json!({"userPublicKey": "owner"}));
        let owner = sign(&json!({"publicKey": "owner"}), "s");
        let publisher = sign(&json!({"publisherPubKey": "owner"}), "s");
        let other = sign(&json!({"publicKey": "someone"}), "s");
        assert_eq!(check(None, None, None), Ok(()));
        assert_eq!(check(Some(&public), None, None), Ok(()));
        assert_eq!(check(Some(&private), Some(&owner), Some("s")), Ok(()));
        assert_eq!(check(Some(&unset), Some(&publisher), Some("s")), Ok(()));
        assert_eq!(
            check(Some(&private), None, Some("s")),
            Err(AccessError::NoValidToken)
        );
        assert_eq!(
            check(Some(&private), Some("junk"), Some("s")),
            Err(AccessError::NoValidToken)
        );
        assert_eq!(
            check(Some(&private), Some(&other), Some("s")),
            Err(AccessError::NotTheOwner)
        );
        assert_eq!(
            check(Some(&private), Some(&owner), None),
            Err(AccessError::NoSecret)
        );
        let ownerless = manifest(json!({"accessLevel": "private"}));
        assert_eq!(
            check(Some(&ownerless), Some(&owner), Some("s")),
            Err(AccessError::NotTheOwner)
        );
    }
}
