//! `manifest.json` beside a media file: who may read it and what type it is. Only the fields the
//! service acts on are typed; the rest is kept as the uploader wrote it, because `/info` answers
//! with the whole manifest.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{
    error::MediaError,
    path::{open_under, PathError},
};

/// A manifest is a few hundred bytes; one far larger is not a manifest.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub mime_type: Option<String>,
    /// `public` lets anyone read; anything else, or nothing, only the owner.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_level: Option<String>,
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_public_key: Option<String>,
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub original_name: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A typed field that is not a string counts as absent: a manifest with `"accessLevel": 1` is
/// private, not unreadable.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

impl Manifest {
    pub fn is_public(&self) -> bool {
        self.access_level.as_deref() == Some("public")
    }

    /// `None` when there is no manifest. One that cannot be read as a JSON object is treated as a
    /// manifest without `accessLevel`: private, and so served to no one, rather than public by
    /// accident.
    pub fn read(root: &Path, id: &str) -> Result<Option<Manifest>, MediaError> {
        let file = match open_under(&root.join(id), Path::new("manifest.json")) {
            Ok((file, _)) => Some(file),
            Err(PathError::NotFound) => return Ok(None),
            // There but not openable: private, never public by accident.
            Err(PathError::Unreadable) => None,
            Err(e) => return Err(e.into()),
        };
        let parsed = file
            .filter(|f| f.metadata().is_ok_and(|m| m.len() <= MAX_MANIFEST_BYTES))
            .and_then(|mut f| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut bytes).ok()?;
                serde_json::from_slice::<Manifest>(&bytes).ok()
            });
        Ok(Some(parsed.unwrap_or_else(|| {
            log::warn!(
                "media {id}: manifest.json is not a readable JSON object; treating it as private"
            );
            Manifest::default()
        })))
    }
}

/// The manifest's `mimeType`, else the extension of its `originalName`, else of the file's own
/// name, else `application/octet-stream`.
pub fn content_type(manifest: Option<&Manifest>, path: &Path) -> String {
    if let Some(mime) = manifest
        .and_then(|m| m.mime_type.as_deref())
        .filter(|m| is_mime(m))
    {
        return mime.to_string();
    }
    let by_ext = |name: &str| {
        Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| actix_files::file_extension_to_mime(e).to_string())
            .filter(|m| m != "application/octet-stream")
    };
    manifest
        .and_then(|m| m.original_name.as_deref())
        .and_then(by_ext)
        .or_else(|| path.file_name().and_then(|n| n.to_str()).and_then(by_ext))
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

/// Whether a browser shows or plays this type without running anything: video, audio, raster
/// images, plain text and subtitles. Everything else (HTML, XHTML, SVG, XML, JavaScript, and any
/// type not on this list) is sent as a sandboxed download.
pub fn browser_safe(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = mime.split_once('/') else {
        return false;
    };
    match kind {
        "video" | "audio" => true,
        "image" => !sub.contains("svg") && !sub.contains("xml"),
        "text" => matches!(sub, "plain" | "vtt" | "csv"),
        _ => false,
    }
}

fn is_mime(m: &str) -> bool {
    m.len() <= 127
        && m.split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && m.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(v: Value) -> Manifest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn content_type_precedence() {
        let p = Path::new("/m/x/original");
        let m = manifest(json!({"mimeType": "video/webm", "originalName": "a.mp4"}));
        assert_eq!(content_type(Some(&m), p), "video/webm");
        let m = manifest(json!({"originalName": "clip.mp4"}));
        assert_eq!(content_type(Some(&m), p), "video/mp4");
        let m = manifest(json!({"mimeType": "nonsense"}));
        assert_eq!(content_type(Some(&m), Path::new("/w/a.png")), "image/png");
        assert_eq!(content_type(None, p), "application/octet-stream");
        let m = manifest(json!({"mimeType": "text/html\r\nX-Evil: 1"}));
        assert_eq!(content_type(Some(&m), p), "application/octet-stream");
    }

    #[test]
    fn only_types_that_cannot_run_script_are_browser_safe() {
        for safe in [
            "video/mp4",
            "audio/mpeg",
            "image/png",
            "image/gif",
            "text/plain; charset=utf-8",
            "text/vtt",
            "VIDEO/WEBM",
        ] {
            assert!(browser_safe(safe), "{safe}");
        }
        for active in [
            "text/html",
            "application/xhtml+xml",
            "image/svg+xml",
            "text/xml",
            "application/xml",
            "application/javascript",
            "text/javascript",
            "application/pdf",
            "application/octet-stream",
            "nonsense",
        ] {
            assert!(!browser_safe(active), "{active}");
        }
    }

    #[test]
    fn every_field_survives_and_odd_types_count_as_absent() {
        let m = manifest(json!({"accessLevel": 1, "userPublicKey": "k", "size": 10}));
        assert!(!m.is_public());
        assert_eq!(m.user_public_key.as_deref(), Some("k"));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back, json!({"userPublicKey": "k", "size": 10}));
    }
}
