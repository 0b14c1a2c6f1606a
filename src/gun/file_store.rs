//! The file source: a JSON file of GUN nodes loaded at start-up (the embedded demo), answering
//! with the same types as a relay.

use std::{collections::HashMap, path::Path, sync::Arc};

use serde_json::Value;

use super::{
    config::{GunConfig, GunSource},
    error::FetchError,
    record::FoundRecord,
};

pub struct FileStore {
    records: HashMap<String, Arc<FoundRecord>>,
    /// What puts added, by soul: memory a client can make the file source hold.
    written: HashMap<String, u64>,
    written_bytes: u64,
    write_limit: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error("cannot read gun.file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("gun.file {path} is not a JSON object of {{soul: node}}: {reason}")]
    Shape { path: String, reason: String },
}

impl FileStore {
    /// The file source, when `gun.source` is `file`.
    pub fn configured(gun: &GunConfig) -> Result<Option<Self>, FileStoreError> {
        match gun.source {
            GunSource::File => Self::load(&gun.file, gun.file_write_limit_bytes).map(Some),
            GunSource::Relay => Ok(None),
        }
    }

    /// Loads the nodes of `path`; writes may then add up to `write_limit` bytes (as weighed by
    /// the record cache).
    pub fn load(path: &Path, write_limit: u64) -> Result<Self, FileStoreError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| FileStoreError::Read {
            path: shown.clone(),
            source,
        })?;
        let shape = |reason: String| FileStoreError::Shape {
            path: shown.clone(),
            reason,
        };
        let nodes: serde_json::Map<String, Value> =
            serde_json::from_slice(&text).map_err(|e| shape(e.to_string()))?;
        let mut records = HashMap::with_capacity(nodes.len());
        for (soul, node) in nodes {
            crate::soul::validate_soul(&soul).map_err(|e| shape(format!("soul {soul:?}: {e}")))?;
            let found = FoundRecord::from_stored_node(node)
                .map_err(|e| shape(format!("soul {soul}: {e}")))?;
            records.insert(soul, Arc::new(found));
        }
        Ok(Self {
            records,
            written: HashMap::new(),
            written_bytes: 0,
            write_limit,
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Keeps a written record, while all that writes hold stays within the limit.
    pub(super) fn get(&self, soul: &str) -> Option<Arc<FoundRecord>> {
        self.records.get(soul).cloned()
    }

    pub(super) fn write(&mut self, soul: &str, found: FoundRecord) -> Result<(), FetchError> {
        let size = found.weight();
        let replaced = self.written.get(soul).copied().unwrap_or(0);
        let total = self.written_bytes - replaced + size;
        if total > self.write_limit {
            return Err(FetchError::StoreFull(self.write_limit));
        }
        self.written.insert(soul.to_string(), size);
        self.written_bytes = total;
        self.records.insert(soul.to_string(), Arc::new(found));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
