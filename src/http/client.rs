//! Who a client is, by address: the peer, or behind `server.trusted_proxies` the address the
//! proxy says it forwarded for. A header anyone can send counts only from a proxy trusted to
//! have set it.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;

/// Addresses and networks (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Default)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// `entries` as written in `server.trusted_proxies`; the one that is not an address or a
    /// network is named.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let (addr, bits) = entry.split_once('/').unwrap_or((entry, ""));
                let addr: IpAddr = addr
                    .trim()
                    .parse()
                    .map_err(|_| format!("{entry:?} is not an address or a network"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = match bits {
                    "" => max,
                    b => b
                        .parse::<u8>()
                        .ok()
                        .filter(|b| *b <= max)
                        .ok_or_else(|| format!("{entry:?} has a bad prefix length"))?,
                };
                Ok((addr, bits))
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, bits)| match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    prefix(u32::from(n).into(), u32::from(a).into(), 32, *bits)
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix(u128::from(n), u128::from(a), 128, *bits),
                _ => false,
            })
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn prefix(net: u128, addr: u128, width: u8, bits: u8) -> bool {
    let shift = width - bits;
    shift >= width || (net >> shift) == (addr >> shift)
}

/// The client of `req`: its peer, or, when the peer is a trusted proxy, the last address of
/// `X-Forwarded-For` that is not one (the one the trusted chain received the request from).
pub fn client_of(req: &HttpRequest, trusted: &Networks) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |a| a.ip());
    if !trusted.contains(peer) {
        return canonical(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|a| !trusted.contains(**a))
        .or(forwarded.first())
        .map_or(canonical(peer), |a| canonical(*a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn networks_hold_what_they_say() {
        let n = Networks::parse(&["10.0.0.0/8".into(), "192.168.1.7".into(), "fd00::/8".into()])
            .unwrap();
        for inside in ["10.1.2.3", "192.168.1.7", "::ffff:10.0.0.1", "fd12::1"] {
            assert!(n.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["11.0.0.1", "192.168.1.8", "fe80::1"] {
            assert!(!n.contains(outside.parse().unwrap()), "{outside}");
        }
        assert!(Networks::parse(&["0.0.0.0/0".into()])
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "proxy", "10.0.0/8"] {
            assert!(Networks::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let trusted = Networks::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let req = |peer: &str, xff: Option<&str>| {
            let mut r = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
            if let Some(x) = xff {
                r = r.insert_header(("x-forwarded-for", x));
            }
            r.to_http_request()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_of(&req("8.8.8.8", Some("1.2.3.4")), &trusted),
            ip("8.8.8.8")
        );
        assert_eq!(
            client_of(&req("127.0.0.1", Some("1.2.3.4")), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_of(
                &req("127.0.0.1", Some("6.6.6.6, 1.2.3.4, 10.0.0.5")),
                &trusted
            ),
            ip("1.2.3.4"),
            "the spoofable left part is not the client"
        );
        assert_eq!(
            client_of(&req("127.0.0.1", None), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_of(&req("127.0.0.1", Some("junk")), &trusted),
            ip("127.0.0.1")
        );
    }
}
