//! TLS to the relay and the indexer: the public web's roots (Mozilla's, built in, so a container
//! without a CA bundle still works) plus, for a private CA, the certificates of `gun.ca_file` /
//! `resolver.ca_file`. A handshake that fails is a misconfiguration, not an outage: see
//! `handshake_failure`.

use std::{path::Path, sync::Arc};

use awc::error::{ConnectError, SendRequestError};
use rustls::{
    pki_types::{pem::PemObject, CertificateDer},
    ClientConfig, RootCertStore,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    CaFile { path: String, reason: String },
}

/// The client configuration for one upstream; `ca_file` (PEM, one or more certificates) is
/// trusted besides the built-in roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let error = |reason: String| TlsError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&text) {
            let cert = cert.map_err(|e| error(format!("not PEM certificates: {e:?}")))?;
            roots
                .add(cert)
                .map_err(|e| error(format!("a certificate cannot be used as a root: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(error("holds no PEM certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // awc's pool speaks HTTP/1.1 to the relay; offering h2 would only change what a proxy picks.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Why the TLS handshake failed, when that is what `e` is: a certificate the roots do not
/// vouch for, a name that does not match, TLS spoken to a plain-HTTP port. Retrying cannot
/// help and the relay is not down, so this is reported as a misconfiguration rather than
/// counted against the breaker.
pub fn handshake_failure(e: &SendRequestError) -> Option<String> {
    let SendRequestError::Connect(ConnectError::Io(io)) = e else {
        return None;
    };
    io.get_ref()?
        .downcast_ref::<rustls::Error>()
        .map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roots_need_no_file() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        let missing = client_config(Some(&dir.path().join("none.pem")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read it"), "{missing}");
    }
}
