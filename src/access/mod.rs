//! Who may read which record, as the old API decided it, applied here at every depth.
//!
//! - `Caller`: who asks, from an optional bearer JWT. An invalid or expired token is no token:
//!   the caller is anonymous, as the old `optionalAuthenticateToken` made it.
//! - `rules`: the old `getRecords` rules for one record (pure): public, owner-only (`private`,
//!   `shared`, `organization` and legacy private sessions), encrypted (only `meta.encryptedBy`).
//! - `crypt`: the old publisher's per-user encryption, undone for the record's owner only, with
//!   each owner's key derived once.
//!
//! The resolver asks `rules` about every record it reaches, so a reference the caller may not
//! read stays a DID, and a root the caller may not read is as good as absent.

pub mod crypt;
pub mod rules;

use std::time::SystemTime;

use serde::Serialize;

use crate::auth::verify_jwt;

/// Who asks for records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Caller {
    #[default]
    Anonymous,
    User(User),
}

/// A caller whose token was valid: what the old API's envelope showed of it (`auth.user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The key records are judged against: the token's `publicKey`, else `publisherPubKey`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub scope: String,
    pub token_type: String,
}

impl Caller {
    /// The caller of a request with this bearer `token`, checked with `secret` (none configured:
    /// everyone is anonymous).
    pub fn from_token(token: Option<&str>, secret: Option<&str>) -> Self {
        let claims = match (token, secret) {
            (Some(token), Some(secret)) => verify_jwt(token, secret.as_bytes(), SystemTime::now()),
            _ => None,
        };
        let Some(claims) = claims else {
            return Caller::Anonymous;
        };
        let text = |name: &str| claims.text(name).map(String::from);
        Caller::User(User {
            email: text("email"),
            user_id: text("userId"),
            public_key: text("publicKey").or_else(|| text("publisherPubKey")),
            scope: text("scope").unwrap_or_else(|| "full".into()),
            token_type: text("tokenType").unwrap_or_else(|| "standard".into()),
        })
    }

    /// The key records are judged against; `None` for an anonymous caller or a token with no key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::User(user) => user.public_key.as_deref(),
        }
    }

    /// The old envelope's `auth`: `{"authenticated": bool, "user": {...} | null}`.
    pub fn envelope(&self) -> serde_json::Value {
        match self {
            Caller::Anonymous => serde_json::json!({"authenticated": false, "user": null}),
            Caller::User(user) => serde_json::json!({"authenticated": true, "user": user}),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use serde_json::json;

    use super::*;
    use crate::auth::tests::sign;

    #[test]
    fn the_callers_key_is_its_public_key_else_its_publisher_key() {
        let secret = "a-secret-of-some-length";
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let caller = |claims| Caller::from_token(Some(&sign(&claims, secret)), Some(secret));
        let both = caller(json!({"publicKey": "k1", "publisherPubKey": "k2", "email": "a@b"}));
        assert_eq!(both.key(), Some("k1"));
        assert_eq!(
            both.envelope(),
            json!({"authenticated": true, "user": {"email": "a@b", "publicKey": "k1", "scope": "full", "tokenType": "standard"}})
        );
        assert_eq!(caller(json!({"publisherPubKey": "k2"})).key(), Some("k2"));
        let keyless = caller(json!({"userId": "u1", "scope": "calendar-read-only"}));
        assert!(matches!(keyless, Caller::User(_)));
        assert_eq!(keyless.key(), None);
        for anonymous in [
            caller(json!({"publicKey": "k1", "exp": now - 1})),
            Caller::from_token(
                Some(&sign(&json!({"publicKey": "k1"}), "other-secret")),
                Some(secret),
            ),
            Caller::from_token(Some("garbage"), Some(secret)),
            Caller::from_token(Some(&sign(&json!({"publicKey": "k1"}), secret)), None),
            Caller::from_token(None, Some(secret)),
        ] {
            assert_eq!(anonymous, Caller::Anonymous);
            assert_eq!(
                anonymous.envelope(),
                json!({"authenticated": false, "user": null})
            );
        }
    }
}
