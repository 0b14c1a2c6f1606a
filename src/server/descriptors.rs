//! File descriptors: every connection, media stream, file kept open and relay connection takes
//! one. Run out, and `accept` fails (every new client waits on a listen queue nobody drains),
//! opens fail, the write feed cannot reconnect. So at start the soft limit is raised to the hard
//! one, and settings that could need more than that, with headroom, stop start-up with one line.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config::{Config, GunSource};

/// For what is not counted below: the listener, stdio, the event loop's own descriptors, config
/// and CA files, log.
const HEADROOM: u64 = 64;

/// The soft limit after raising it to the hard one, and what it was before when it moved.
pub struct Limit {
    pub soft: u64,
    pub raised_from: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise() -> Limit {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let before = current.unwrap_or(u64::MAX);
    let wanted = maximum.unwrap_or(u64::MAX);
    if wanted > before
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: maximum,
                maximum,
            },
        )
        .is_ok()
    {
        return Limit {
            soft: wanted,
            raised_from: Some(before),
        };
    }
    Limit {
        soft: before,
        raised_from: None,
    }
}

/// What `config` may hold open at once, by setting.
pub fn needed(config: &Config) -> Vec<(&'static str, u64)> {
    let mut needs = vec![
        (
            "server.max_connections",
            config.server.max_connections as u64,
        ),
        ("media.max_streams", config.media.max_streams as u64),
        (
            "media.open_cache_entries",
            config.media.open_cache_entries as u64,
        ),
    ];
    if config.gun.source == GunSource::Relay {
        let relays = config.gun.relays().len() as u64;
        let feeds = if config.gun.watching() { relays } else { 0 };
        needs.push((
            "gun.max_connections",
            config.gun.max_connections as u64 * relays + feeds,
        ));
    }
    if config.resolver.oip_api.is_some() {
        needs.push((
            "gun.max_connections (indexer)",
            config.gun.max_connections as u64,
        ));
    }
    needs
}

/// Whether what `config` may hold open fits under `limit` with headroom; if not, one line that
/// says by how much and which settings to lower.
pub fn check(config: &Config, limit: u64) -> Result<(), String> {
    let needs = needed(config);
    let total: u64 = needs.iter().map(|(_, n)| n).sum::<u64>() + HEADROOM;
    if total <= limit {
        return Ok(());
    }
    let parts: Vec<String> = needs.iter().map(|(key, n)| format!("{key} {n}")).collect();
    Err(format!(
        "the settings may need {total} file descriptors ({} and {HEADROOM} spare) but the limit is {limit}: lower server.max_connections or media.max_streams, or raise the hard limit (ulimit -Hn)",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_be_open_must_fit_under_the_limit() {
        let config = Config::default();
        let need: u64 = needed(&config).iter().map(|(_, n)| n).sum::<u64>() + HEADROOM;
        assert_eq!(need, 10_000 + 4096 + 256 + HEADROOM);
        assert!(check(&config, need).is_ok());
        let err = check(&config, need - 1).unwrap_err();
        assert!(
            err.contains("server.max_connections 10000") && err.contains("limit is"),
            "{err}"
        );
        let mut relays = Config::default();
        relays.gun.source = GunSource::Relay;
        relays.gun.relay_urls = vec!["http://a:1".into(), "http://b:1".into()];
        let gun = needed(&relays)
            .into_iter()
            .find(|(k, _)| *k == "gun.max_connections");
        assert_eq!(
            gun,
            Some(("gun.max_connections", 64 * 2 + 2)),
            "pools and feeds"
        );
    }
}
