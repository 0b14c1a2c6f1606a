//! Warm answers kept whole: a resolution asked again with the same parameters is answered from
//! the records array it serialised the first time, so it costs a lookup and a copy of bytes, not
//! a walk, a dozen cache lookups and the JSON writer.
//!
//! An answer is kept only when every record in it came from the record cache fresh and nothing
//! in it failed for a reason that may pass (a timeout, an error, the budget); it is kept until
//! the first of its records expires, and is dropped as soon as any record is removed from the
//! record cache (a put, a write seen on a relay's feed, an operator's forget, a forced refresh):
//! its `epoch` moves on. So it is never older than the record cache would have answered.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use quick_cache::{sync::Cache, Weighter};

use super::{
    options::Options,
    resolution::{Reason, Resolution, Summary},
};
use crate::{access::Caller, did::Did};

pub struct Kept {
    records: Bytes,
    count: usize,
    /// As it will be answered again: everything it looked up then comes from a cache.
    summary: Summary,
    until: Instant,
    epoch: u64,
}

#[derive(Clone)]
struct ByLen;

impl Weighter<String, Arc<Kept>> for ByLen {
    fn weight(&self, key: &String, kept: &Arc<Kept>) -> u64 {
        (key.len() + kept.records.len() + 128) as u64
    }
}

pub struct AnswerCache {
    /// `None` when `resolver.answer_cache_bytes` is 0.
    cache: Option<Cache<String, Arc<Kept>, ByLen>>,
}

impl AnswerCache {
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = (capacity_bytes > 0).then(|| {
            let estimated_items = (capacity_bytes / 8192).clamp(16, 1 << 20) as usize;
            Cache::with_weighter(estimated_items, capacity_bytes, ByLen)
        });
        Self { cache }
    }

    /// What identifies an answer: the DIDs in order, every option that shapes it, and whose
    /// eyes it was made for (anonymous answers are shared; a key's answers are that key's).
    /// `None` for a forced refresh, which must not be answered from here.
    pub fn key(dids: &[Did], options: &Options, caller: &Caller) -> Option<String> {
        if options.force_refresh {
            return None;
        }
        let mut key = String::with_capacity(96);
        match caller.key() {
            Some(reader) => key.push_str(&format!("{}:{reader}|", reader.len())),
            None => key.push_str("-|"),
        }
        for did in dids {
            key.push_str(&format!("{did},"));
        }
        // Every option shapes the answer, so all of them are in the key: one added later
        // cannot be forgotten here. A forced refresh never gets this far.
        key.push_str(&format!("|{options:?}"));
        Some(key)
    }

    /// The answer kept for `key`, unless it expired or a record was removed since (`epoch`).
    pub fn get(&self, key: &str, epoch: u64, started: Instant) -> Option<Resolution> {
        let kept = self.cache.as_ref()?.get(key)?;
        if kept.epoch != epoch || kept.until <= Instant::now() {
            return None;
        }
        let summary = Summary {
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..kept.summary.clone()
        };
        let mut resolution = Resolution::new(kept.records.clone(), kept.count, summary);
        resolution.answered_whole = true;
        Some(resolution)
    }

    /// Keeps `resolution` for `key` until `until`, if it may be: see the module's comment.
    pub fn keep(&self, key: String, resolution: &Resolution, until: Instant, epoch: u64) {
        let Some(cache) = &self.cache else { return };
        let summary = &resolution.summary;
        let passing = summary
            .unresolved
            .iter()
            .any(|u| matches!(u.reason, Reason::Error | Reason::Timeout | Reason::Budget));
        // An empty answer is not kept: one made empty by the access rules would then answer
        // `HIT` where a missing record answers `MISS`, and tell that it exists.
        if passing || summary.stale > 0 || resolution.envelope.is_some() || resolution.count == 0 {
            return;
        }
        let kept = Kept {
            records: resolution.records.clone(),
            count: resolution.count,
            summary: Summary {
                from_cache: summary.fetched,
                ..summary.clone()
            },
            until,
            epoch,
        };
        cache.insert(key, Arc::new(kept));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::{FieldFilter, RootFilter};

    fn answer(bytes: usize, elapsed_ms: u64) -> Resolution {
        let summary = Summary {
            elapsed_ms,
            ..Summary::default()
        };
        Resolution::new(Bytes::from(vec![b' '; bytes]), 1, summary)
    }

    /// `resolver.answer_cache_bytes` bounds the bytes kept, not the number of answers: a
    /// hundred answers of 20 KB leave at most 1 MB of them, and some are kept.
    #[test]
    fn kept_answers_weigh_what_their_bytes_weigh() {
        let answers = AnswerCache::new(1 << 20);
        let until = Instant::now() + std::time::Duration::from_secs(60);
        for i in 0..100 {
            answers.keep(format!("answer-{i}"), &answer(20 * 1024, 1), until, 0);
        }
        let kept = answers.cache.as_ref().unwrap().len();
        assert!(
            (1..=51).contains(&kept),
            "{kept} answers of 20 KB kept in 1 MB"
        );
    }

    /// An answer served whole says how long this request took, not how long it took to make.
    #[test]
    fn a_kept_answer_says_its_own_time() {
        let answers = AnswerCache::new(1 << 20);
        let until = Instant::now() + std::time::Duration::from_secs(60);
        answers.keep("slow".into(), &answer(100, 5_000), until, 0);
        let again = answers.get("slow", 0, Instant::now()).unwrap();
        assert!(
            again.summary.elapsed_ms < 5_000,
            "{}",
            again.summary.elapsed_ms
        );
        assert!(again.answered_whole);
    }

    #[test]
    fn every_option_that_shapes_an_answer_is_in_its_key() {
        let base = Options::plain(1);
        let variants = [
            Options {
                depth: 2,
                ..base.clone()
            },
            Options {
                names_only: true,
                ..base.clone()
            },
            Options {
                fields: FieldFilter::only(vec!["workout".into()]),
                ..base.clone()
            },
            Options {
                include_sigs: false,
                ..base.clone()
            },
            Options {
                include_pub_keys: false,
                ..base.clone()
            },
            Options {
                hide_nulls: true,
                ..base.clone()
            },
            Options {
                date_readable: false,
                ..base.clone()
            },
            Options {
                roots: RootFilter {
                    record_type: Some("workout".into()),
                    method: None,
                },
                ..base.clone()
            },
            Options {
                roots: RootFilter {
                    record_type: None,
                    method: Some("gun".into()),
                },
                ..base.clone()
            },
        ];
        let dids = [Did::parse("did:gun:a:1").unwrap()];
        let key = |o: &Options| AnswerCache::key(&dids, o, &Caller::Anonymous).unwrap();
        let mut keys: Vec<String> = variants.iter().map(key).collect();
        keys.push(key(&base));
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count, "each option gives its own key");
        let forced = Options {
            force_refresh: true,
            ..base
        };
        assert!(AnswerCache::key(&dids, &forced, &Caller::Anonymous).is_none());
    }
}
