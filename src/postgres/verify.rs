//! Mutual-TLS checks from the control node (DESIGN.md part 3): a real login with
//! tokio-postgres over rustls, and the SSLRequest probe that reads the certificate a server
//! presents without logging in.
//!
//! tokio-postgres knows only disable/prefer/require: we always use `SslMode::Require` and get
//! verify-full from the rustls configuration (the CA file as the only root, `ServerName` = the
//! host name or IP the certificate must carry as a SAN; `hostaddr` only says where to dial).
//! Every rustls configuration is built with [`crypto_provider`], the one provider of the binary.
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The crypto provider of the whole binary (aws-lc-rs, which rcgen already builds).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// What we need to log in.
#[derive(Debug, Clone)]
pub struct LoginSpec {
    /// Where to dial: a name or an address.
    pub host: String,
    /// The name or address the server certificate must carry (verify-full).
    pub server_name: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<String>,
    pub ca_file: String,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub timeout: Duration,
}

/// What a successful login saw.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// `pg_stat_ssl.ssl` of our own backend.
    pub ssl: bool,
    /// `pg_stat_ssl.version` (`TLSv1.3`).
    pub tls_version: Option<String>,
    pub cert: CertInfo,
    pub elapsed: Duration,
}

/// The server certificate as presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// SHA-256 of the DER certificate, lower-case hex.
    pub sha256: String,
    /// RFC 3339.
    pub not_after: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> Self {
        let sha256 = hex::encode(Sha256::digest(der));
        let mut info = CertInfo {
            sha256,
            not_after: None,
            subject: String::new(),
            issuer: String::new(),
            sans: Vec::new(),
        };
        if let Ok((_, c)) = x509_parser::parse_x509_certificate(der) {
            info.subject = c.subject().to_string();
            info.issuer = c.issuer().to_string();
            info.not_after = c
                .validity()
                .not_after
                .to_datetime()
                .format(&time::format_description::well_known::Rfc3339)
                .ok();
            if let Ok(Some(san)) = c.subject_alternative_name() {
                for n in &san.value.general_names {
                    match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            info.sans.push(format!("DNS:{d}"))
                        }
                        x509_parser::extensions::GeneralName::IPAddress(b) => {
                            let ip = match b.len() {
                                4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                                16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                                _ => None,
                            };
                            if let Some(ip) = ip {
                                info.sans.push(format!("IP:{ip}"));
                            }
                        }
                        other => info.sans.push(format!("{other:?}")),
                    }
                }
            }
        }
        info
    }
}

/// Normalize a fingerprint given by a user: `AB:CD...` or `abcd...`.
pub fn normalize_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {path}: {e}"))
}

/// The CA file as the only trust anchor(s).
pub fn load_roots(ca_file: &str) -> Result<RootCertStore, String> {
    let pem = read(ca_file, "ca_file")?;
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| format!("ca_file {ca_file}: not a PEM certificate: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("ca_file {ca_file}: unusable CA certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!("ca_file {ca_file} holds no PEM certificate"));
    }
    Ok(roots)
}

/// The client certificate chain and key (PEM; SEC1, PKCS#1 or PKCS#8 keys).
pub fn load_client(
    cert_file: &str,
    key_file: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let pem = read(cert_file, "cert_file")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert_file {cert_file}: not a PEM certificate: {e}"))?;
    if chain.is_empty() {
        return Err(format!("cert_file {cert_file} holds no PEM certificate"));
    }
    let key_pem = read(key_file, "key_file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        format!("key_file {key_file}: no PEM private key (PKCS#8, SEC1 or PKCS#1) in it")
    })?;
    Ok((chain, key))
}

type Seen = Arc<Mutex<Option<Vec<u8>>>>;

/// Verifies like rustls' WebPKI verifier (or not at all, for the probe) and remembers the
/// certificate the server presented, so that a mismatch or a CN-only certificate can be
/// explained and the fingerprint compared without a second connection.
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Seen,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(end_entity.to_vec());
        }
        match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(
    roots: Option<RootCertStore>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    seen: Seen,
) -> Result<ClientConfig, String> {
    let provider = crypto_provider();
    let inner = match roots {
        Some(r) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(r), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?,
        ),
        None => None,
    };
    let verifier = Recording {
        inner,
        provider: Arc::clone(&provider),
        seen,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate and key do not go together: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Where to dial: `None` lets tokio-postgres resolve the server name itself.
async fn dial_addr(spec: &LoginSpec) -> Result<Option<IpAddr>, String> {
    if let Ok(ip) = spec.host.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    if spec.host == spec.server_name {
        return Ok(None);
    }
    let addrs = tokio::net::lookup_host((spec.host.as_str(), spec.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", spec.host))?;
    addrs
        .map(|a| a.ip())
        .next()
        .map(Some)
        .ok_or_else(|| format!("{} resolves to no address", spec.host))
}

/// Why a login failed, in words that say what to do.
#[derive(Debug, Clone)]
pub struct LoginError {
    pub msg: String,
    /// The server answered with an error after the TLS handshake (it refused the login).
    pub refused_by_server: bool,
    /// The certificate the server presented, if the handshake got that far.
    pub cert: Option<CertInfo>,
}

fn find_rustls(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r.clone());
            }
        }
        cur = err.source();
    }
    None
}

/// Words for a failed TLS handshake.
pub fn explain_tls(err: &rustls::Error, cert: Option<&CertInfo>, spec: &LoginSpec) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let subject = cert.map(|c| c.subject.clone()).unwrap_or_default();
    match err {
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            match cert {
                Some(c) if c.sans.is_empty() => format!(
                    "server certificate has no SAN: rustls needs one for verify-full (libpq falls \
                     back to the CN `{subject}`, rustls does not): reissue it with the server's DNS \
                     name and address as SANs"
                ),
                Some(c) => format!(
                    "server certificate is not valid for `{}`: its SANs are {}: set server_name to \
                     one of them or reissue the certificate with that SAN",
                    spec.server_name,
                    c.sans.join(", ")
                ),
                None => format!("server certificate is not valid for `{}`", spec.server_name),
            }
        }
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "server certificate ({subject}) was not issued by the CA in {}: wrong ca_file, or the \
             server still serves a certificate from another CA (reload it?)",
            spec.ca_file
        ),
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
            "server certificate ({subject}) expired on {}: renew it and reload the server",
            cert.and_then(|c| c.not_after.clone()).unwrap_or_default()
        ),
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "server certificate ({subject}) is not valid yet: check the clocks of the CA and this machine"
        ),
        E::AlertReceived(a @ (A::CertificateRequired | A::HandshakeFailure | A::BadCertificate
        | A::UnknownCA | A::CertificateUnknown | A::AccessDenied | A::DecryptError)) => format!(
            "the server refused our client certificate (TLS alert {a:?}): is cert_file issued by \
             the CA in the server's ssl_ca_file?"
        ),
        other => format!("TLS handshake with {}:{} failed: {other}", spec.host, spec.port),
    }
}

fn explain(e: &tokio_postgres::Error, cert: Option<&CertInfo>, spec: &LoginSpec) -> LoginError {
    if let Some(db) = e.as_db_error() {
        return LoginError {
            msg: format!(
                "the server refused the login: {}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            ),
            refused_by_server: true,
            cert: cert.cloned(),
        };
    }
    if let Some(r) = find_rustls(e) {
        let refused = matches!(r, rustls::Error::AlertReceived(_));
        return LoginError {
            msg: explain_tls(&r, cert, spec),
            refused_by_server: refused,
            cert: cert.cloned(),
        };
    }
    let text = e.to_string();
    let msg = if text.contains("server does not support TLS") {
        format!(
            "{}:{} does not accept TLS (ssl = off?): set ssl = on and reload",
            spec.host, spec.port
        )
    } else {
        let mut m = format!("cannot log in to {}:{}: {text}", spec.host, spec.port);
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            m.push_str(&format!(": {s}"));
            src = s.source();
        }
        m
    };
    // A connection closed by the server once the handshake is done is a refusal too
    // (TLS 1.3 reports a rejected client certificate after the client's last flight).
    let refused = cert.is_some() && (text.contains("closed") || text.contains("reset"));
    LoginError {
        msg,
        refused_by_server: refused,
        cert: cert.cloned(),
    }
}

/// Log in over verify-full mutual TLS (or without a client certificate when `with_cert` is
/// false) and read our own `pg_stat_ssl` row.
pub async fn login(spec: &LoginSpec, with_cert: bool) -> Result<LoginOutcome, LoginError> {
    let plain = |msg: String| LoginError {
        msg,
        refused_by_server: false,
        cert: None,
    };
    let start = Instant::now();
    let roots = load_roots(&spec.ca_file).map_err(plain)?;
    let client = match (with_cert, &spec.cert_file, &spec.key_file) {
        (true, Some(c), Some(k)) => Some(load_client(c, k).map_err(plain)?),
        (true, Some(_), None) | (true, None, Some(_)) => {
            return Err(plain("cert_file and key_file go together".into()))
        }
        _ => None,
    };
    let seen: Seen = Arc::new(Mutex::new(None));
    let config = client_config(Some(roots), client, Arc::clone(&seen)).map_err(plain)?;
    let dial = dial_addr(spec).await.map_err(plain)?;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&spec.server_name)
        .port(spec.port)
        .user(&spec.user)
        .dbname(&spec.dbname)
        .ssl_mode(tokio_postgres::config::SslMode::Require)
        .connect_timeout(spec.timeout)
        .application_name("castellan pg_verify");
    if let Some(ip) = dial {
        cfg.hostaddr(ip);
    }
    if let Some(p) = &spec.password {
        cfg.password(p.as_str());
    }
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let seen_cert = || {
        seen.lock()
            .ok()
            .and_then(|s| s.clone())
            .map(|d| CertInfo::from_der(&d))
    };
    let connected = tokio::time::timeout(spec.timeout, cfg.connect(tls)).await;
    let (client, connection) = match connected {
        Err(_) => {
            return Err(LoginError {
                msg: format!(
                    "no answer from {}:{} within {:?}",
                    spec.host, spec.port, spec.timeout
                ),
                refused_by_server: false,
                cert: seen_cert(),
            })
        }
        Ok(Err(e)) => return Err(explain(&e, seen_cert().as_ref(), spec)),
        Ok(Ok(c)) => c,
    };
    let conn_task = tokio::spawn(connection);
    let row = tokio::time::timeout(
        spec.timeout,
        client.query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        ),
    )
    .await;
    drop(client);
    let _ = conn_task.await;
    let row = match row {
        Err(_) => return Err(plain("the query on pg_stat_ssl timed out".into())),
        Ok(Err(e)) => return Err(explain(&e, seen_cert().as_ref(), spec)),
        Ok(Ok(r)) => r,
    };
    let ssl: bool = row
        .try_get(0)
        .map_err(|e| plain(format!("pg_stat_ssl.ssl: {e}")))?;
    let tls_version: Option<String> = row
        .try_get(1)
        .map_err(|e| plain(format!("pg_stat_ssl.version: {e}")))?;
    let cert = seen_cert().ok_or_else(|| plain("no server certificate was seen".into()))?;
    Ok(LoginOutcome {
        ssl,
        tls_version,
        cert,
        elapsed: start.elapsed(),
    })
}

/// The certificate a server presents, without logging in: TCP, SSLRequest, `S`, TLS
/// handshake (no verification, no client certificate), peer certificate. `Ok(None)`: the
/// server answered `N` (SSL is off).
pub async fn probe(
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> Result<Option<CertInfo>, String> {
    let work = async {
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        tcp.write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b)
            .await
            .map_err(|e| format!("{addr}: no answer to SSLRequest: {e}"))?;
        match b[0] {
            b'N' => return Ok(None),
            b'S' => {}
            other => {
                return Err(format!(
                    "{addr}: unexpected answer {other:#04x} to SSLRequest: not a PostgreSQL server?"
                ))
            }
        }
        let seen: Seen = Arc::new(Mutex::new(None));
        let config = client_config(None, None, Arc::clone(&seen))?;
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("server name {server_name:?}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{addr}: TLS handshake failed: {e}"))?;
        let der = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .or_else(|| seen.lock().ok().and_then(|s| s.clone()))
            .ok_or_else(|| format!("{addr}: the server presented no certificate"))?;
        Ok(Some(CertInfo::from_der(&der)))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{addr}: no TLS answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalize() {
        assert_eq!(normalize_fingerprint("AB:cd:0F"), "abcd0f");
    }

    #[test]
    fn cn_only_certificate_is_explained() {
        let spec = LoginSpec {
            host: "127.0.0.1".into(),
            server_name: "db1".into(),
            port: 5432,
            user: "postgres".into(),
            dbname: "postgres".into(),
            password: None,
            ca_file: "/ca.crt".into(),
            cert_file: None,
            key_file: None,
            timeout: Duration::from_secs(1),
        };
        let cert = CertInfo {
            sha256: String::new(),
            not_after: None,
            subject: "CN=db1".into(),
            issuer: "CN=ca".into(),
            sans: vec![],
        };
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let m = explain_tls(&e, Some(&cert), &spec);
        assert!(
            m.contains("server certificate has no SAN: rustls needs one for verify-full"),
            "{m}"
        );
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(explain_tls(&e, Some(&cert), &spec).contains("not issued by the CA in /ca.crt"));
    }
}
