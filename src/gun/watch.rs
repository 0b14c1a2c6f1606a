//! `Watch`: one per relay, listening to the relay's write broadcast on its GUN websocket
//! (`ws://<relay>/gun`). Every write made to the relay, through its HTTP `/put` or by any GUN
//! peer, arrives there within milliseconds, souls never asked about included; each soul it names
//! leaves the record and negative caches at once, on every replica. The socket only listens: the
//! relay takes writes from any socket without authentication, so nothing is ever sent on it but
//! the answer to a ping.
//!
//! Delivery is at most once, and a relay with AXE routing delivers only souls a peer asked for.
//! So a feed counts as live only once a proof write (the canary, through the relay's HTTP `/put`)
//! has come back on it after each connect, and whenever a feed goes live or stops being live the
//! negative cache is dropped: what was written while no feed listened was not seen.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{io::SinkWrite, prelude::*};
use awc::{
    error::WsProtocolError,
    ws::{Codec, Frame, Message as WsMessage},
    BoxedSocket, Client,
};
use bytes::{Bytes, BytesMut};
use futures::stream::SplitSink;
use serde::{de::IgnoredAny, Deserialize};

use super::{
    feed::{FeedState, FeedStates},
    fetcher::GunFetcher,
    fetcher::{Invalidate, InvalidateAll},
    http_upstream::{self, Endpoint},
    negative_cache::FeedChanged,
    negative_cache::NegativeCache,
};
use crate::{
    config::GunConfig,
    gun::metrics::{GunMetrics, RelayStats},
};

/// The relay sends `[]` every 20 s; a socket silent for this long is taken for dead.
const SILENCE: Duration = Duration::from_secs(45);
/// How long the canary write has to come back before the relay is taken not to broadcast.
const CANARY_WAIT: Duration = Duration::from_secs(5);
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// A ping this often keeps a proxy from closing an idle socket, and a pong counts as a frame
/// where a relay sends no heartbeat of its own. Not a GUN message: the relay never sees it.
const PING_EVERY: Duration = Duration::from_secs(20);
const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

type WsSink = SinkWrite<WsMessage, SplitSink<actix_codec::Framed<BoxedSocket, Codec>, WsMessage>>;

pub struct Watch {
    slot: usize,
    base: String,
    shown: String,
    client: Client,
    canary_soul: String,
    max_frame: usize,
    fetcher: Addr<GunFetcher>,
    negative: Addr<NegativeCache>,
    feeds: Arc<FeedStates>,
    metrics: Arc<GunMetrics>,
    stats: Arc<RelayStats>,
    sink: Option<WsSink>,
    stream: Option<SpawnHandle>,
    last_frame: Instant,
    /// Until when the canary may still come back, while it is awaited.
    canary_deadline: Option<Instant>,
    /// Connects that failed in a row, for the backoff.
    failed_connects: u32,
    /// A message arriving in several frames, while it does.
    partial: Option<BytesMut>,
    connected_once: bool,
    /// Since when this feed is not live, while it is not (`None` before it first was).
    down_since: Option<Instant>,
    /// Past this many souls in one frame, every cache is dropped instead.
    max_souls: usize,
}

/// Which relay's feed to listen to (`slot` is its place in `gun.relays()`), and what it needs.
#[derive(Clone)]
pub struct WatchSetup {
    pub slot: usize,
    pub url: String,
    pub gun: GunConfig,
    pub tls: Arc<rustls::ClientConfig>,
    pub fetcher: Addr<GunFetcher>,
    pub negative: Addr<NegativeCache>,
    pub feeds: Arc<FeedStates>,
    pub metrics: Arc<GunMetrics>,
}

impl Watch {
    /// Must run on the thread that will use it: awc clients are not `Send`.
    pub fn new(setup: WatchSetup) -> Self {
        let Endpoint { base, shown } = Endpoint::new(&setup.url);
        let stats = setup.metrics.relay(&shown);
        Self {
            slot: setup.slot,
            base,
            shown,
            client: http_upstream::client(&setup.gun, setup.tls),
            canary_soul: setup.gun.watch_canary_soul,
            max_frame: setup.gun.max_response_bytes,
            fetcher: setup.fetcher,
            negative: setup.negative,
            feeds: setup.feeds,
            metrics: setup.metrics,
            stats,
            sink: None,
            stream: None,
            last_frame: Instant::now(),
            canary_deadline: None,
            failed_connects: 0,
            partial: None,
            connected_once: false,
            down_since: None,
            max_souls: setup.gun.watch_max_souls_per_frame,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let request = self
            .client
            .ws(format!("{}/gun", self.base))
            .max_frame_size(self.max_frame)
            .connect();
        ctx.spawn(
            request
                .into_actor(self)
                .map(|result, this, ctx| match result {
                    Ok((_, framed)) => this.connected(framed, ctx),
                    Err(e) => this.lost(&format!("cannot connect: {e}"), ctx),
                }),
        );
    }

    fn connected(
        &mut self,
        framed: actix_codec::Framed<BoxedSocket, Codec>,
        ctx: &mut Context<Self>,
    ) {
        use futures::StreamExt;
        let (sink, stream) = framed.split();
        self.sink = Some(SinkWrite::new(sink, ctx));
        self.stream = Some(ctx.add_stream(stream));
        self.last_frame = Instant::now();
        if self.connected_once {
            self.metrics.watch_reconnected();
        }
        self.connected_once = true;
        self.send_canary(ctx);
    }

    /// Writes the canary through the relay's HTTP `/put`; the feed is live once it comes back.
    fn send_canary(&mut self, ctx: &mut Context<Self>) {
        self.canary_deadline = Some(Instant::now() + CANARY_WAIT);
        let at = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        );
        let body = serde_json::json!({"soul": self.canary_soul, "data": {"at": at}});
        let put = self
            .client
            .post(format!("{}/put", self.base))
            .send_json(&body);
        ctx.spawn(put.into_actor(self).map(|result, this, ctx| {
            let failed = match result {
                Ok(res) if res.status().is_success() => return,
                Ok(res) => format!("the relay answered the canary write {}", res.status()),
                Err(e) => format!("the canary write failed: {e}"),
            };
            this.lost(&failed, ctx);
        }));
    }

    fn set_state(&mut self, state: FeedState, why: &str) {
        let before = self.feeds.get(self.slot);
        if before == state {
            return;
        }
        self.feeds.set(self.slot, state);
        self.stats.set_watch_live(state == FeedState::Live);
        match state {
            FeedState::Live => log::info!(
                "[GUN Watch] relay {}: write feed live; negative entries last negative_cache.ttl_secs and every write elsewhere clears them",
                self.shown
            ),
            FeedState::Unsupported => log::warn!(
                "[GUN Watch] relay {}: {why}; negative entries fall back to negative_cache.ttl_without_watch_secs",
                self.shown
            ),
            FeedState::Down => log::warn!(
                "[GUN Watch] relay {}: write feed down ({why}); negative entries last negative_cache.ttl_without_watch_secs until it is back",
                self.shown
            ),
            FeedState::Off | FeedState::Connecting => {}
        }
        // Writes may have gone unseen only if no feed listened for longer than a socket may be
        // silent: a reconnect within that (a proxy closing idle sockets) missed nothing a
        // relay would have sent it.
        let missed = self
            .down_since
            .is_none_or(|since| since.elapsed() > SILENCE);
        if before == FeedState::Live {
            self.down_since = Some(Instant::now());
        } else if state == FeedState::Live {
            self.down_since = None;
        }
        if before == FeedState::Live || state == FeedState::Live {
            self.negative.do_send(FeedChanged {
                live: self.feeds.any_live(),
                missed,
            });
        }
    }

    /// The socket is gone or was never opened: down, and a new attempt after a backoff.
    fn lost(&mut self, why: &str, ctx: &mut Context<Self>) {
        if let Some(stream) = self.stream.take() {
            ctx.cancel_future(stream);
        }
        if let Some(mut sink) = self.sink.take() {
            sink.close();
        }
        self.canary_deadline = None;
        self.partial = None;
        self.set_state(FeedState::Down, why);
        log::debug!("[GUN Watch] relay {}: {why}", self.shown);
        let exp = RECONNECT_MIN.saturating_mul(1 << self.failed_connects.min(5));
        let pause = exp.min(RECONNECT_MAX).mul_f64(0.5 + fastrand::f64() / 2.0);
        self.failed_connects += 1;
        ctx.run_later(pause, |this, ctx| this.connect(ctx));
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if self.canary_deadline.is_some_and(|d| now > d) {
            self.canary_deadline = None;
            self.set_state(
                FeedState::Unsupported,
                "the canary write never came back on the relay's websocket (AXE routing, or no broadcast)",
            );
        }
        if self.stream.is_some() && now.duration_since(self.last_frame) > SILENCE {
            self.lost("no frame for 45 s, not even the heartbeat", ctx);
        }
    }

    /// One whole message from the relay: JSON, an object or an array of them.
    fn message(&mut self, text: &[u8]) {
        self.metrics.watch_frame();
        let souls = written_souls(text);
        if souls.is_empty() {
            return;
        }
        if self.canary_deadline.is_some() && souls.contains(&self.canary_soul) {
            self.canary_deadline = None;
            self.failed_connects = 0;
            self.set_state(FeedState::Live, "");
        }
        self.metrics.watch_invalidated(souls.len() as u64);
        if souls.len() > self.max_souls {
            self.fetcher.do_send(InvalidateAll);
        } else {
            self.fetcher.do_send(Invalidate(souls));
        }
    }
}

/// One relay message, as far as invalidation cares: the souls it puts, and whether it is a
/// reply. Everything else in it, the written nodes included, is skipped without being built:
/// this runs for every write the relay sees, on the fetcher's thread.
#[derive(Deserialize)]
struct Message {
    put: Option<BTreeMap<String, IgnoredAny>>,
    #[serde(rename = "@")]
    reply: Option<IgnoredAny>,
}

/// The souls a relay frame (a message, or an array of them) says were written: the keys of `put`
/// in messages that are writes (a `put` and no `@`: replies, forwarded reads, `dam` and the `[]`
/// heartbeat say nothing). A key `S/meta` is a node nested in `S`. Deltas, never values: they
/// only invalidate. A frame that is not such JSON says nothing.
pub fn written_souls(frame: &[u8]) -> Vec<String> {
    let batch = frame.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let messages = if batch {
        serde_json::from_slice::<Vec<Message>>(frame)
    } else {
        serde_json::from_slice::<Message>(frame).map(|m| vec![m])
    };
    let mut souls: HashSet<String> = HashSet::new();
    for message in messages.unwrap_or_default() {
        let (Some(put), None) = (message.put, message.reply) else {
            continue;
        };
        for key in put.into_keys() {
            // `S/meta` is a part of `S`, cached as a node of its own when it is read: both go.
            if let Some((record, _)) = key.split_once('/') {
                if !record.is_empty() {
                    souls.insert(record.to_string());
                }
            }
            if !key.is_empty() {
                souls.insert(key);
            }
        }
    }
    souls.into_iter().collect()
}

impl Actor for Watch {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.connect(ctx);
        ctx.run_interval(CHECK_EVERY, |this, ctx| this.check(ctx));
        ctx.run_interval(PING_EVERY, |this, _| {
            if let Some(sink) = &mut this.sink {
                let _ = sink.write(WsMessage::Ping(Bytes::new()));
            }
        });
    }
}

impl StreamHandler<Result<Frame, WsProtocolError>> for Watch {
    fn handle(&mut self, item: Result<Frame, WsProtocolError>, ctx: &mut Self::Context) {
        self.last_frame = Instant::now();
        let frame = match item {
            Ok(frame) => frame,
            Err(e) => return self.lost(&format!("websocket error: {e}"), ctx),
        };
        match frame {
            Frame::Text(bytes) | Frame::Binary(bytes) => self.message(&bytes),
            Frame::Continuation(item) => self.continuation(item),
            Frame::Ping(payload) => {
                if let Some(sink) = &mut self.sink {
                    let _ = sink.write(WsMessage::Pong(payload));
                }
            }
            Frame::Pong(_) => {}
            Frame::Close(reason) => {
                self.lost(&format!("the relay closed the socket ({reason:?})"), ctx)
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if self.stream.is_some() {
            self.stream = None;
            self.lost("the socket closed", ctx);
        }
    }
}

impl Watch {
    /// Pieces of one message: kept within `max_frame`, handled once whole.
    fn continuation(&mut self, item: actix_http::ws::Item) {
        use actix_http::ws::Item;
        let (bytes, last): (Bytes, bool) = match item {
            Item::FirstText(b) | Item::FirstBinary(b) => {
                self.partial = Some(BytesMut::new());
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some(partial) = &mut self.partial else {
            return;
        };
        if partial.len() + bytes.len() > self.max_frame {
            self.partial = None;
            return;
        }
        partial.extend_from_slice(&bytes);
        if last {
            let whole = self.partial.take().unwrap_or_default();
            self.message(&whole);
        }
    }
}

/// The write half only answers pings. Its end or error is the socket's, which the read half
/// reports; the defaults would stop the actor, and with it every reconnection.
impl actix::io::WriteHandler<WsProtocolError> for Watch {
    fn error(&mut self, _: WsProtocolError, _: &mut Self::Context) -> Running {
        Running::Continue
    }

    fn finished(&mut self, _: &mut Self::Context) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn writes_name_their_souls_and_nothing_else_does() {
        let write = json!({"#": "a", "put": {
            "p:ex": {"_": {"#": "p:ex", ">": {"data": 1}}, "data": "{}"},
            "p:ex/meta": {"_": {"#": "p:ex/meta"}, "v": 1},
            "p:other": {"_": {"#": "p:other"}}
        }});
        let souls = |v: &Value| {
            let mut s = written_souls(v.to_string().as_bytes());
            s.sort();
            s
        };
        assert_eq!(souls(&write), ["p:ex", "p:ex/meta", "p:other"]);
        let reply = json!({"#": "b", "@": "a", "put": {"p:x": {}}});
        let read = json!({"#": "c", "get": {"#": "p:x"}});
        let dam = json!({"#": "d", "dam": "?", "pid": "x"});
        for quiet in [reply, read, dam, json!([])] {
            assert!(souls(&quiet).is_empty(), "{quiet}");
        }
        let batch =
            json!([{"put": {"p:1": {}}}, {"@": "z", "put": {"p:2": {}}}, {"put": {"p:3": {}}}]);
        assert_eq!(souls(&batch), ["p:1", "p:3"]);
    }

    #[test]
    fn a_frame_of_many_souls_names_each_once() {
        let mut put: serde_json::Map<String, Value> = (0..20_000)
            .map(|i| (format!("p:{i}"), json!({"_": {"#": format!("p:{i}")}})))
            .collect();
        put.insert("p:1/meta".into(), json!({}));
        let frame = json!({"#": "x", "put": put}).to_string();
        assert_eq!(written_souls(frame.as_bytes()).len(), 20_001);
    }

    #[test]
    fn the_service_is_live_while_any_feed_is() {
        let feeds = FeedStates::new(2, true);
        assert_eq!(feeds.overall(), FeedState::Down);
        feeds.set(1, FeedState::Unsupported);
        assert_eq!(feeds.overall(), FeedState::Unsupported);
        feeds.set(0, FeedState::Live);
        assert_eq!(feeds.overall(), FeedState::Live);
        assert!(feeds.any_live());
        assert_eq!(FeedStates::new(1, false).overall(), FeedState::Off);
    }
}
