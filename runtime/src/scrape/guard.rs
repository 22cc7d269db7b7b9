//! The SSRF guard: which network addresses a ScrapeJob may reach.
//!
//! Addresses are checked after DNS resolution, and the HTTP client (which resolves
//! through [`GuardedResolver`]) and the browser's egress proxy connect only to the
//! addresses that passed, so a host name that resolves to the metadata service or an
//! in-cluster address is refused before any connection, and DNS cannot be re-bound
//! between the check and the connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address is in a range a ScrapeJob may not reach.
    #[error(
        "{host} resolves to {address}, a {range} address; set network.allowPrivateAddresses to reach it"
    )]
    Address {
        /// Host as written in the URL.
        host: String,
        /// The refused address.
        address: IpAddr,
        /// Name of the range.
        range: &'static str,
    },
    /// The URL has no host or is not http(s).
    #[error("{0} is not an http(s) URL with a host")]
    NotHttp(String),
    /// DNS gave no address.
    #[error("{host} did not resolve: {reason}")]
    Unresolved {
        /// Host name.
        host: String,
        /// Resolver error.
        reason: String,
    },
}

/// The guard's refusal among the causes of `error`: an HTTP client error wraps the
/// refusal of the resolver or the redirect policy.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    std::iter::successors(Some(error), |current| current.source())
        .find_map(|current| current.downcast_ref::<Refused>())
}

/// The address policy of one ScrapeJob.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    allow_private: bool,
}

impl Guard {
    /// A guard that refuses non-public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Checks one resolved address of `host`.
    ///
    /// # Errors
    /// [`Refused::Address`] for a non-public address when private addresses are not allowed.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        match (self.allow_private, non_public_range(address)) {
            (false, Some(range)) => Err(Refused::Address {
                host: host.to_owned(),
                address,
                range,
            }),
            _ => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal without resolving anything (HTTP
    /// clients skip DNS for literals, so this is the only check they get).
    ///
    /// # Errors
    /// When the URL is not http(s) or its literal address is refused.
    pub fn check_url_literal(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::NotHttp(url.to_string()));
        }
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check_address(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_address(&ip.to_string(), IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
            None => Err(Refused::NotHttp(url.to_string())),
        }
    }

    /// Resolves `host` and returns its addresses if all pass.
    ///
    /// # Errors
    /// When resolution fails or any address is refused.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| Refused::Unresolved {
                host: host.to_owned(),
                reason: error.to_string(),
            })?
            .collect();
        self.check_all(host, addresses)
    }

    /// Returns the addresses `host` resolved to if there are any and all pass.
    ///
    /// # Errors
    /// When there are none or any address is refused (one bad address is enough: the
    /// client could pick it).
    pub fn check_all(
        &self,
        host: &str,
        addresses: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        if addresses.is_empty() {
            return Err(Refused::Unresolved {
                host: host.to_owned(),
                reason: "no addresses".to_owned(),
            });
        }
        for address in &addresses {
            self.check_address(host, address.ip())?;
        }
        Ok(addresses)
    }
}

/// The non-public range `address` is in, if any.
fn non_public_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(ip) => v4_range(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => v4_range(v4),
            None => v6_range(ip),
        },
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        // 169.254.0.0/16, which holds the cloud metadata service 169.254.169.254.
        Some("link-local")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        // 100.64.0.0/10, carrier-grade NAT, also used for in-cluster and metadata
        // services (Alibaba Cloud's 100.100.100.200).
        Some("shared")
    } else if ip.is_broadcast()
        || ip.is_multicast()
        || a >= 240
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        Some("reserved")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        // fc00::/7, unique local addresses (RFC 4193), e.g. AWS's fd00:ec2::254.
        Some("private")
    } else if ip.is_multicast() {
        Some("reserved")
    } else if first == 0x64 && ip.segments()[1] == 0xff9b {
        // NAT64 (64:ff9b::/96) embeds an IPv4 address that could be anything.
        v4_range(Ipv4Addr::from_bits(ip.to_bits() as u32))
    } else {
        None
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver and hands the
/// client only addresses the guard allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Guard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0;
        Box::pin(async move {
            // The port is replaced by the URL's; 0 only satisfies the lookup API.
            let addresses = guard.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

impl GuardedResolver {
    /// The resolver as the client builder takes it.
    pub fn shared(guard: Guard) -> Arc<Self> {
        Arc::new(Self(guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_public_ranges_by_default() {
        let guard = Guard::new(false);
        for (address, range) in [
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("100.100.100.200", "shared"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "private"),
            ("::ffff:169.254.169.254", "link-local"),
        ] {
            let ip: IpAddr = address.parse().unwrap();
            match guard.check_address("h", ip) {
                Err(Refused::Address { range: got, .. }) => assert_eq!(got, range, "{address}"),
                other => panic!("{address}: {other:?}"),
            }
        }
        for address in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "8.8.8.8",
        ] {
            assert!(
                guard.check_address("h", address.parse().unwrap()).is_ok(),
                "{address}"
            );
        }
    }

    #[test]
    fn allows_everything_when_the_job_says_so() {
        let guard = Guard::new(true);
        assert!(
            guard
                .check_address("h", "169.254.169.254".parse().unwrap())
                .is_ok()
        );
        assert!(
            guard
                .check_address("h", "127.0.0.1".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn checks_literal_urls_without_resolving() {
        let guard = Guard::new(false);
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        assert!(matches!(
            guard.check_url_literal(&url),
            Err(Refused::Address {
                range: "link-local",
                ..
            })
        ));
        let url = Url::parse("http://[::1]:8080/").unwrap();
        assert!(guard.check_url_literal(&url).is_err());
        assert!(
            guard
                .check_url_literal(&Url::parse("file:///etc/passwd").unwrap())
                .is_err()
        );
    }
}
