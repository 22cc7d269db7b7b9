//! The browser's egress proxy: a SOCKS5 server on loopback through which Chromium
//! makes every connection (`--proxy-server=socks5://...`). Chromium hands a SOCKS5
//! proxy the host name rather than resolving it, so this proxy is the only resolver the
//! browser has: for each connection it checks the host against the allowed hosts,
//! resolves it once, checks every address with the SSRF guard and connects to a checked
//! address itself. A DNS answer that changes after a check (rebinding) therefore cannot
//! send the browser anywhere the guard did not pass, for wildcard hosts as for exact ones.
//!
//! SOCKS5 rather than an HTTP proxy: one tunnel per connection for every scheme
//! (http, https, WebSocket), with no HTTP to parse and no keep-alive connection that
//! could carry a request for another host.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homestream_crds::scrapejob::validate::host_matches;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use url::Url;

use super::guard::{Guard, Refused};

/// Longest a connection may take to be set up (handshake, resolution, connect): the
/// only client is our own Chromium, and a host that does not accept a connection in
/// 10s is down.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

const VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0;
const CONNECT: u8 = 1;
const ATYP_V4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_V6: u8 = 4;

/// SOCKS5 reply codes (RFC 1928, section 6).
#[derive(Debug, Clone, Copy)]
enum Reply {
    Succeeded = 0,
    NotAllowed = 2,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    CommandNotSupported = 7,
    AddressTypeNotSupported = 8,
}

/// What decides where the browser may connect.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// The job's allowed hosts (exact names, addresses or `*.domain` patterns).
    pub allowed_hosts: Vec<String>,
    /// The job's address policy.
    pub guard: Guard,
    /// Names answered without DNS, like entries of `/etc/hosts` (empty in a pod; tests
    /// map names to their loopback server).
    pub hosts: HashMap<String, IpAddr>,
}

impl EgressPolicy {
    /// Whether `host` (lower case, IPv6 in brackets) is one of the allowed hosts.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| host_matches(pattern, host))
    }

    /// Checks the addresses of `url`'s host as a connection through the proxy would,
    /// before a page is loaded, so that a page whose host resolves to a refused address
    /// fails with the reason and without a browser. A host the job does not allow is
    /// not resolved here (a page's links must not make the scraper look up hosts they
    /// chose): the proxy refuses it by name. The proxy still checks every connection.
    ///
    /// # Errors
    /// When an allowed host does not resolve or resolves to an address the guard refuses.
    pub async fn check_address(&self, url: &Url) -> Result<(), Refused> {
        let host = url.host_str().unwrap_or_default();
        if !self.host_allowed(host) {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        self.resolve(host, port).await.map(drop)
    }

    /// The addresses of `host` to connect to on `port`, all checked by the guard.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        match literal.ok().or_else(|| self.hosts.get(host).copied()) {
            Some(ip) => self.guard.check_all(host, vec![SocketAddr::new(ip, port)]),
            None => self.guard.resolve(host, port).await,
        }
    }
}

/// The running proxy; it stops when dropped.
#[derive(Debug)]
pub struct Egress {
    addr: SocketAddr,
    refusals: Arc<Mutex<HashMap<String, Refused>>>,
    task: JoinHandle<()>,
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Egress {
    /// Starts the proxy on an ephemeral loopback port.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(policy: Arc<EgressPolicy>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let refusals = Arc::new(Mutex::new(HashMap::new()));
        let task = tokio::spawn({
            let refusals = refusals.clone();
            async move {
                loop {
                    let client = match listener.accept().await {
                        Ok((client, _)) => client,
                        Err(error) => {
                            tracing::warn!(%error, "Cannot accept a browser connection.");
                            continue;
                        }
                    };
                    tokio::spawn(serve(client, policy.clone(), refusals.clone()));
                }
            }
        });
        Ok(Self {
            addr,
            refusals,
            task,
        })
    }

    /// The value of Chromium's `--proxy-server`.
    pub fn proxy_server(&self) -> String {
        format!("socks5://{}", self.addr)
    }

    /// Why the last connection to `host` (as in a URL) was refused, if it was.
    pub fn refusal(&self, host: &str) -> Option<Refused> {
        lock(&self.refusals).get(host).cloned()
    }
}

/// One connection: the handshake, the decision, then the tunnel.
async fn serve(
    mut client: TcpStream,
    policy: Arc<EgressPolicy>,
    refusals: Arc<Mutex<HashMap<String, Refused>>>,
) {
    let setup = timeout(SETUP_TIMEOUT, open(&mut client, &policy)).await;
    let (host, opened) = match setup {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) => {
            tracing::debug!(%error, "A browser connection failed its SOCKS handshake.");
            return;
        }
        Err(_) => (None, Err(Reply::HostUnreachable.into())),
    };
    let mut upstream = match opened {
        Ok(upstream) => {
            if let Some(host) = &host {
                lock(&refusals).remove(host);
            }
            upstream
        }
        Err(Outcome::Refused(refused)) => {
            tracing::warn!(%refused, "Blocked a browser connection.");
            if let Some(host) = host {
                lock(&refusals).insert(host, refused);
            }
            let _ = client.write_all(&reply(Reply::NotAllowed)).await;
            return;
        }
        Err(Outcome::Failed(code)) => {
            let _ = client.write_all(&reply(code)).await;
            return;
        }
    };
    if client.write_all(&reply(Reply::Succeeded)).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// Why no upstream connection was opened.
#[derive(Debug)]
enum Outcome {
    /// The policy refused the host or its address.
    Refused(Refused),
    /// The request was malformed or the connection failed.
    Failed(Reply),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Self::Failed(reply)
    }
}

/// Reads the SOCKS5 greeting and request, and connects if the policy allows. Returns
/// the requested host (as in a URL) with the upstream connection or why there is none;
/// an I/O error means the client went away.
async fn open(
    client: &mut TcpStream,
    policy: &EgressPolicy,
) -> io::Result<(Option<String>, Result<TcpStream, Outcome>)> {
    let [version, methods] = read_array(client).await?;
    let mut offered = vec![0; usize::from(methods)];
    client.read_exact(&mut offered).await?;
    if version != VERSION || !offered.contains(&NO_AUTHENTICATION) {
        // 0xff: no acceptable method; Chromium always offers "no authentication".
        client.write_all(&[VERSION, 0xff]).await?;
        return Err(io::Error::other("no acceptable SOCKS version or method"));
    }
    client.write_all(&[VERSION, NO_AUTHENTICATION]).await?;
    let [_, command, _, address_type] = read_array(client).await?;
    let host = match address_type {
        ATYP_V4 => Ipv4Addr::from(read_array::<4>(client).await?).to_string(),
        ATYP_V6 => format!("[{}]", Ipv6Addr::from(read_array::<16>(client).await?)),
        ATYP_DOMAIN => {
            let [length] = read_array(client).await?;
            let mut name = vec![0; usize::from(length)];
            client.read_exact(&mut name).await?;
            let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
            match name.parse::<Ipv6Addr>() {
                Ok(ip) => format!("[{ip}]"),
                Err(_) => name,
            }
        }
        _ => return Ok((None, Err(Reply::AddressTypeNotSupported.into()))),
    };
    let port = u16::from_be_bytes(read_array(client).await?);
    if command != CONNECT {
        return Ok((Some(host), Err(Reply::CommandNotSupported.into())));
    }
    let connected = connect(policy, &host, port).await;
    Ok((Some(host), connected))
}

/// Connects to the first checked address of `host` that accepts.
async fn connect(policy: &EgressPolicy, host: &str, port: u16) -> Result<TcpStream, Outcome> {
    if !policy.host_allowed(host) {
        return Err(Outcome::Failed(Reply::NotAllowed));
    }
    let addresses = policy.resolve(host, port).await.map_err(Outcome::Refused)?;
    let mut failure = Reply::HostUnreachable;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(upstream) => return Ok(upstream),
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                failure = Reply::ConnectionRefused;
            }
            Err(_) => {}
        }
    }
    Err(failure.into())
}

async fn read_array<const N: usize>(client: &mut TcpStream) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    client.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// A reply without a bound address (0.0.0.0:0): Chromium does not use it.
fn reply(code: Reply) -> [u8; 10] {
    [VERSION, code as u8, 0, ATYP_V4, 0, 0, 0, 0, 0, 0]
}

fn lock(
    refusals: &Mutex<HashMap<String, Refused>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Refused>> {
    refusals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks the proxy at `proxy` for `host:port` by name; returns the reply code and
    /// the connection.
    async fn request(proxy: &Egress, host: &str, port: u16) -> (u8, TcpStream) {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(&[VERSION, 1, NO_AUTHENTICATION])
            .await
            .unwrap();
        assert_eq!(
            read_array::<2>(&mut stream).await.unwrap(),
            [VERSION, NO_AUTHENTICATION]
        );
        let mut request = vec![VERSION, CONNECT, 0, ATYP_DOMAIN, host.len() as u8];
        request.extend(host.as_bytes());
        request.extend(port.to_be_bytes());
        stream.write_all(&request).await.unwrap();
        let [_, code, ..] = read_array::<10>(&mut stream).await.unwrap();
        (code, stream)
    }

    async fn proxy(allow_private: bool) -> Egress {
        Egress::start(Arc::new(EgressPolicy {
            allowed_hosts: vec!["*.example.test".into(), "localhost".into()],
            guard: Guard::new(allow_private),
            hosts: HashMap::from([("a.example.test".into(), Ipv4Addr::LOCALHOST.into())]),
        }))
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn tunnels_to_checked_addresses_only() {
        let upstream = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        let echo = tokio::spawn(async move {
            let (mut stream, _) = upstream.accept().await.unwrap();
            let [byte] = read_array(&mut stream).await.unwrap();
            stream.write_all(&[byte + 1]).await.unwrap();
        });
        let open = proxy(true).await;
        let (code, mut stream) = request(&open, "a.example.test", port).await;
        assert_eq!(code, Reply::Succeeded as u8);
        stream.write_all(&[41]).await.unwrap();
        assert_eq!(read_array(&mut stream).await.unwrap(), [42]);
        echo.await.unwrap();

        let closed = proxy(false).await;
        for host in ["a.example.test", "localhost"] {
            let (code, _) = request(&closed, host, port).await;
            assert_eq!(code, Reply::NotAllowed as u8, "{host}");
            assert!(
                matches!(
                    closed.refusal(host),
                    Some(Refused::Address {
                        range: "loopback",
                        ..
                    })
                ),
                "{host}"
            );
        }
        // Not an allowed host: refused before any resolution.
        let (code, _) = request(&open, "elsewhere.test", port).await;
        assert_eq!(code, Reply::NotAllowed as u8);
    }
}
