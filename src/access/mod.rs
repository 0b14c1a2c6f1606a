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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::auth::verify_jwt;

/// Tokens kept verified at once.
const TOKENS_KEPT: usize = 4096;

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

/// Who a bearer token speaks for, remembered per token until it expires: a client sends the
/// same token on every request, and checking its signature each time cost a fifth of the warm
/// answer rate. Only tokens that verified are kept, so garbage cannot fill the cache.
pub struct Callers {
    secret: Option<String>,
    known: quick_cache::sync::Cache<String, (Caller, Option<SystemTime>)>,
}

impl Callers {
    /// `secret`: `auth.jwt_secret`; without one everyone is anonymous.
    pub fn new(secret: Option<String>) -> Self {
        Self {
            secret,
            known: quick_cache::sync::Cache::new(TOKENS_KEPT),
        }
    }

    /// The caller of a request with this bearer `token`.
    pub fn of(&self, token: Option<&str>) -> Caller {
        let (Some(token), Some(secret)) = (token, self.secret.as_deref()) else {
            return Caller::Anonymous;
        };
        let now = SystemTime::now();
        if let Some((caller, expires)) = self.known.get(token) {
            if expires.is_none_or(|e| now < e) {
                return caller;
            }
            self.known.remove(token);
            return Caller::Anonymous;
        }
        let (caller, expires) = Caller::from_token(Some(token), Some(secret));
        if caller != Caller::Anonymous {
            self.known
                .insert(token.to_string(), (caller.clone(), expires));
        }
        caller
    }
}

impl Caller {
    /// The caller of a request with this bearer `token`, checked with `secret` (none configured:
    /// everyone is anonymous), and when the token expires.
    pub fn from_token(token: Option<&str>, secret: Option<&str>) -> (Self, Option<SystemTime>) {
        let claims = match (token, secret) {
            (Some(token), Some(secret)) => verify_jwt(token, secret.as_bytes(), SystemTime::now()),
            _ => None,
        };
        let Some(claims) = claims else {
            return (Caller::Anonymous, None);
        };
        let expires = claims
            .expires()
            .map(|secs| UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
        let text = |name: &str| claims.text(name).map(String::from);
        let user = User {
            email: text("email"),
            user_id: text("userId"),
            public_key: text("publicKey").or_else(|| text("publisherPubKey")),
            scope: text("scope").unwrap_or_else(|| "full".into()),
            token_type: text("tokenType").unwrap_or_else(|| "standard".into()),
        };
        (Caller::User(user), expires)
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
        let callers = Callers::new(Some(secret.into()));
        let caller = |claims| callers.of(Some(&sign(&claims, secret)));
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
            callers.of(Some(&sign(&json!({"publicKey": "k1"}), "other-secret"))),
            callers.of(Some("garbage")),
            Callers::new(None).of(Some(&sign(&json!({"publicKey": "k1"}), secret))),
            callers.of(None),
        ] {
            assert_eq!(anonymous, Caller::Anonymous);
            assert_eq!(
                anonymous.envelope(),
                json!({"authenticated": false, "user": null})
            );
        }
    }
}
