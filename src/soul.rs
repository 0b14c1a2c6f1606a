//! Souls: the keys of GUN nodes. They are opaque (they may contain `:`), so only what can never be
//! a soul is refused. A leaf module: the DID parser and the relay code both depend on it.

/// Longest soul accepted; real souls are well under 100 bytes, and anything near this is abuse.
pub const MAX_SOUL_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoulError {
    #[error("soul is empty")]
    Empty,
    #[error("soul is longer than {MAX_SOUL_BYTES} bytes")]
    TooLong,
    #[error("soul contains a control character")]
    ControlCharacter,
}

/// Souls are opaque (they may contain `:`), so only what can never be a soul is refused.
pub fn validate_soul(soul: &str) -> Result<(), SoulError> {
    if soul.is_empty() {
        return Err(SoulError::Empty);
    }
    if soul.len() > MAX_SOUL_BYTES {
        return Err(SoulError::TooLong);
    }
    if soul.chars().any(char::is_control) {
        return Err(SoulError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn souls_with_colons_are_fine() {
        for soul in [
            "a1b2c3d4e5f6:workout1",
            "a1b2c3d4e5f6:h:0123456789ab",
            "a1b2c3d4e5f6:t:kx9z",
            "oip:registry:index:workout",
        ] {
            assert_eq!(validate_soul(soul), Ok(()), "{soul}");
        }
    }

    #[test]
    fn impossible_souls_are_refused() {
        assert_eq!(validate_soul(""), Err(SoulError::Empty));
        assert_eq!(validate_soul(&"a".repeat(513)), Err(SoulError::TooLong));
        assert_eq!(validate_soul(&"a".repeat(512)), Ok(()));
        assert_eq!(validate_soul("a\nb"), Err(SoulError::ControlCharacter));
        assert_eq!(validate_soul("a\0b"), Err(SoulError::ControlCharacter));
    }
}
