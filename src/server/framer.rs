//! Where HTTP/1.1 requests end in the bytes a client sends, as far as counting them goes: the
//! end of each head (the blank line), and past it the body, by `Content-Length` or chunk by
//! chunk, so that a body's bytes are never taken for a head. actix-http parses every request
//! whose bytes it holds and queues them all; counting them here lets the connection hand it no
//! more than a bound. What this framer cannot make sense of is actix-http's to refuse: it only
//! counts.

/// Longest line looked into (for `Content-Length`, `Transfer-Encoding`, a chunk's size); the
/// rest of a longer one is counted over, not kept.
const LINE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a request head, or the blank lines a client may send before one.
    Head,
    /// In a body of known length: this many bytes left.
    Body(u64),
    /// On a chunk-size line.
    ChunkSize,
    /// In a chunk's data: this many bytes left.
    ChunkData(u64),
    /// On the line break that ends a chunk's data.
    ChunkEnd,
    /// In the trailer lines after the last chunk.
    Trailers,
}

#[derive(Debug, Clone)]
pub struct Framer {
    state: State,
    /// The current line, as far as `LINE` bytes.
    line: Vec<u8>,
    /// The head being read has its request line.
    started: bool,
    length: u64,
    chunked: bool,
    /// Request heads seen whole.
    heads: u64,
}

impl Default for Framer {
    fn default() -> Self {
        Self {
            state: State::Head,
            line: Vec::with_capacity(LINE),
            started: false,
            length: 0,
            chunked: false,
            heads: 0,
        }
    }
}

impl Framer {
    /// Request heads seen whole so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Takes as much of `bytes` as completes at most `slots` more request heads, and says how
    /// much that is: the byte that would complete one more is not taken.
    pub fn feed(&mut self, bytes: &[u8], slots: u64) -> usize {
        let mut completed = 0;
        let mut i = 0;
        while i < bytes.len() {
            if let State::Body(left) | State::ChunkData(left) = self.state {
                let n = left.min((bytes.len() - i) as u64);
                i += n as usize;
                self.state = match (self.state, left - n) {
                    (State::Body(_), 0) => State::Head,
                    (State::Body(_), rest) => State::Body(rest),
                    (_, 0) => State::ChunkEnd,
                    (_, rest) => State::ChunkData(rest),
                };
                continue;
            }
            let b = bytes[i];
            if b != b'\n' {
                if self.line.len() < LINE {
                    self.line.push(b);
                }
                i += 1;
                continue;
            }
            let blank = matches!(self.line.as_slice(), [] | [b'\r']);
            let ends_head = self.state == State::Head && blank && self.started;
            if ends_head && completed == slots {
                return i;
            }
            i += 1;
            completed += u64::from(ends_head);
            self.end_line(blank);
        }
        i
    }

    /// A line (in `self.line`, without its `\n`) has ended.
    fn end_line(&mut self, blank: bool) {
        let line = std::mem::take(&mut self.line);
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        self.state = match self.state {
            State::Head if blank && !self.started => State::Head,
            State::Head if blank => {
                self.heads += 1;
                let next = match (self.chunked, self.length) {
                    (true, _) => State::ChunkSize,
                    (false, 0) => State::Head,
                    (false, n) => State::Body(n),
                };
                (self.started, self.length, self.chunked) = (false, 0, false);
                next
            }
            State::Head => {
                if self.started {
                    self.header(text);
                }
                self.started = true;
                State::Head
            }
            State::ChunkSize => {
                let size = text.split(|b| *b == b';').next().unwrap_or_default();
                match std::str::from_utf8(size)
                    .ok()
                    .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                {
                    Some(0) => State::Trailers,
                    Some(n) => State::ChunkData(n),
                    // Not a chunk size: actix-http refuses the request; count from scratch.
                    None => State::Head,
                }
            }
            State::ChunkEnd => State::ChunkSize,
            State::Trailers if blank => State::Head,
            other => other,
        };
        self.line = line;
        self.line.clear();
    }

    fn header(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = std::str::from_utf8(value).unwrap_or_default().trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            self.length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads_in(bytes: &[u8], piece: usize) -> u64 {
        let mut f = Framer::default();
        for chunk in bytes.chunks(piece) {
            assert_eq!(f.feed(chunk, u64::MAX), chunk.len());
        }
        f.heads()
    }

    #[test]
    fn heads_are_counted_whatever_the_bodies_hold_and_however_the_bytes_come() {
        let tricky_body = b"{\"a\":\"\r\n\r\nGET / HTTP/1.1\r\n\r\n\"}";
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.extend_from_slice(
            format!(
                "POST /gun-relay/put HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                tricky_body.len()
            )
            .as_bytes(),
        );
        stream.extend_from_slice(tricky_body);
        stream.extend_from_slice(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        stream.extend_from_slice(b"5;ext=1\r\n\r\n\r\n\r\r\n1A\r\n");
        stream.extend_from_slice(&[b'\n'; 26]);
        stream.extend_from_slice(b"\r\n0\r\nX-Trailer: 1\r\n\r\n");
        stream.extend_from_slice(b"GET /a HTTP/1.1\nHost: x\n\n");
        for piece in [1, 2, 3, 7, 64, stream.len()] {
            assert_eq!(heads_in(&stream, piece), 4, "in pieces of {piece}");
        }
    }

    #[test]
    fn no_more_heads_than_the_slots_are_taken() {
        let one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        let many = one.repeat(5);
        let mut f = Framer::default();
        let taken = f.feed(&many, 2);
        assert_eq!(
            taken,
            2 * one.len() + one.len() - 1,
            "up to the third head's last byte"
        );
        assert_eq!(f.heads(), 2);
        assert_eq!(
            f.feed(&many[taken..], 0),
            0,
            "no slot: nothing that completes a head"
        );
        assert_eq!(f.feed(&many[taken..], 1), one.len());
        assert_eq!(f.heads(), 3);
        let mut body = Framer::default();
        let put = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\n\n\n\n\n\n";
        assert_eq!(body.feed(put, 1), put.len(), "a body is not a head");
        assert_eq!(body.feed(b"GET", 0), 3, "a head begun is not a head read");
    }
}
