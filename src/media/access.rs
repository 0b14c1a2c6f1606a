//! Who may read a media file: the manifest's `accessLevel`, and for anything not public a bearer
//! JWT (HS256) whose `publicKey` or `publisherPubKey` claim names the owner.

use std::time::SystemTime;

use super::manifest::Manifest;
use crate::auth::verify_jwt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("this media is private: a valid bearer token is required")]
    NoValidToken,
    #[error("this media belongs to someone else")]
    NotTheOwner,
    #[error("private media cannot be served: no JWT secret is configured")]
    NoSecret,
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
    match manifest.user_public_key.as_deref() {
        Some(owner) if claims.keys().any(|k| k == owner) => Ok(()),
        _ => Err(AccessError::NotTheOwner),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::auth::tests::sign;

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
