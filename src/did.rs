//! DIDs as OIP records use them: `did:gun:<soul>` (everything after the second colon is the
//! soul, which may itself contain colons), `did:arweave:<43 base64url chars>`, or any other
//! `did:<method>:<id>`.

use std::fmt;

use crate::soul::{validate_soul, SoulError, MAX_SOUL_BYTES};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Did {
    Gun(String),
    /// Any other method, kept whole (`did:arweave:...`).
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    #[error("{0:?} does not start with `did:`")]
    NotADid(String),
    #[error("{0:?} has no method (expected did:<method>:<id>)")]
    NoMethod(String),
    #[error("{0:?} has an invalid method (lowercase letters and digits only)")]
    BadMethod(String),
    #[error("{0:?} has an empty id")]
    EmptyId(String),
    #[error("{did:?} has an invalid soul: {reason}")]
    BadSoul { did: String, reason: SoulError },
    #[error("{0:?} is not an Arweave id (43 base64url characters)")]
    BadArweaveId(String),
    #[error("{0:?} is too long or contains control characters")]
    BadId(String),
}

impl Did {
    pub fn parse(s: &str) -> Result<Self, DidError> {
        let owned = || shorten(s);
        let rest = s
            .strip_prefix("did:")
            .ok_or_else(|| DidError::NotADid(owned()))?;
        let (method, id) = rest
            .split_once(':')
            .ok_or_else(|| DidError::NoMethod(owned()))?;
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(DidError::BadMethod(owned()));
        }
        if id.is_empty() {
            return Err(DidError::EmptyId(owned()));
        }
        match method {
            "gun" => {
                validate_soul(id).map_err(|reason| DidError::BadSoul {
                    did: owned(),
                    reason,
                })?;
                Ok(Did::Gun(id.to_string()))
            }
            "arweave" => {
                let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
                if id.len() != 43 || !id.bytes().all(base64url) {
                    return Err(DidError::BadArweaveId(owned()));
                }
                Ok(Did::Other(s.to_string()))
            }
            _ => {
                if id.len() > MAX_SOUL_BYTES || id.chars().any(char::is_control) {
                    return Err(DidError::BadId(owned()));
                }
                Ok(Did::Other(s.to_string()))
            }
        }
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Did::Gun(soul) => write!(f, "did:gun:{soul}"),
            Did::Other(did) => f.write_str(did),
        }
    }
}

/// Error messages quote the input; a hostile one must not make them huge.
fn shorten(s: &str) -> String {
    if s.len() <= 120 {
        s.to_string()
    } else {
        let mut end = 120;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AR: &str = "did:arweave:Qm7Lk2x9VbN4pR8sT1uW3yZ5aC6dE0fG2hJ4kL6mN8o";

    #[test]
    fn gun_dids_keep_every_colon_of_the_soul() {
        assert_eq!(
            Did::parse("did:gun:a1b2c3d4e5f6:workout1"),
            Ok(Did::Gun("a1b2c3d4e5f6:workout1".into()))
        );
        assert_eq!(
            Did::parse("did:gun:a1b2c3d4e5f6:h:0123456789ab"),
            Ok(Did::Gun("a1b2c3d4e5f6:h:0123456789ab".into()))
        );
        assert_eq!(
            Did::parse("did:gun:oip:registry:index:workout"),
            Ok(Did::Gun("oip:registry:index:workout".into()))
        );
    }

    #[test]
    fn round_trips_through_display() {
        for s in ["did:gun:abc:t:kx9z", AR, "did:web:example.com"] {
            assert_eq!(Did::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn arweave_ids_are_43_base64url_chars() {
        assert!(matches!(Did::parse(AR), Ok(Did::Other(_))));
        assert!(matches!(
            Did::parse("did:arweave:short"),
            Err(DidError::BadArweaveId(_))
        ));
        let bad = format!("{}!", &AR[..AR.len() - 1]);
        assert!(matches!(Did::parse(&bad), Err(DidError::BadArweaveId(_))));
    }

    #[test]
    fn malformed_dids_are_refused() {
        for s in [
            "",
            "gun:abc:1",
            "did:",
            "did:gun",
            "did:gun:",
            "did::abc",
            "did:GUN:abc",
            "did:g un:abc",
            "did:gun:a\nb",
        ] {
            assert!(Did::parse(s).is_err(), "{s:?}");
        }
        let long = format!("did:gun:{}", "a".repeat(600));
        let err = Did::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }
}
