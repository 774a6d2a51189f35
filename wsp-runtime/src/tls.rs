//! TLS (`wss://`) for clients, servers and the relay: rustls with the ring provider.
//!
//! - [`ClientTls`]: whom a client trusts — the Mozilla roots (the default for `wss://`), the
//!   system's roots, and any private CA added;
//! - [`ServerTls`]: a server's certificate chain and key;
//! - [`MaybeTls`]: the byte stream under a WebSocket, plain or TLS, for code that accepts or
//!   dials connections itself (the relay).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TLS setting that cannot be used: a PEM file without a certificate or key, a key that does
/// not fit, unreadable files.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whom a client trusts when it dials `wss://`. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    roots: RootCertStore,
    config: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls::webpki()
    }
}

impl ClientTls {
    /// The Mozilla root certificates (the `webpki-roots` crate): the default.
    pub fn webpki() -> ClientTls {
        ClientTls {
            roots: RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            config: None,
        }
    }

    /// The operating system's root certificates; those that cannot be loaded are skipped.
    pub fn native() -> ClientTls {
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        ClientTls {
            roots,
            config: None,
        }
    }

    /// No roots at all: only the CAs added with [`add_root_pem`](Self::add_root_pem) are trusted.
    pub fn empty() -> ClientTls {
        ClientTls {
            roots: RootCertStore::empty(),
            config: None,
        }
    }

    /// Also trusts every certificate in `pem` (a private CA).
    pub fn add_root_pem(mut self, pem: &[u8]) -> Result<ClientTls, TlsError> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsError(format!("root certificate: {e}")))?;
            self.roots
                .add(cert)
                .map_err(|e| TlsError(format!("root certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError("no certificate in the root PEM".into()));
        }
        Ok(self)
    }

    /// A rustls configuration made elsewhere (client certificates, other roots or verifiers).
    pub fn from_rustls(config: Arc<ClientConfig>) -> ClientTls {
        ClientTls {
            roots: RootCertStore::empty(),
            config: Some(config),
        }
    }

    fn config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Runs the TLS handshake for `host` over `tcp`.
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> io::Result<MaybeTls> {
        let config = self.config().map_err(io::Error::other)?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(MaybeTls::Client(Box::new(tls)))
    }
}

/// A server's certificate chain and private key. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From a PEM certificate chain (the server's certificate first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<ServerTls, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError("no certificate in the chain PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| TlsError(format!("private key: {e}")))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError(format!("certificate and key: {e}")))?;
        Ok(ServerTls::from_rustls(Arc::new(config)))
    }

    /// From PEM files (see [`from_pem`](Self::from_pem)).
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTls, TlsError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| TlsError(format!("{}: {e}", p.display())));
        ServerTls::from_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }

    /// A rustls configuration made elsewhere (client certificates, certificate resolvers).
    pub fn from_rustls(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(config),
        }
    }

    /// Runs the TLS handshake of an accepted connection.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<MaybeTls> {
        Ok(MaybeTls::Server(Box::new(self.acceptor.accept(tcp).await?)))
    }
}

/// A TCP connection, with or without TLS over it. The TLS states are boxed: a plain
/// connection pays one word for the choice.
pub enum MaybeTls {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS this side dialed (`wss://`).
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS this side accepted.
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for MaybeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MaybeTls::Plain(_) => "MaybeTls::Plain",
            MaybeTls::Client(_) => "MaybeTls::Client",
            MaybeTls::Server(_) => "MaybeTls::Server",
        })
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Client(s) => s.is_write_vectored(),
            MaybeTls::Server(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
