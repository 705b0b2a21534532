//! Which Docker daemon dcx talks to, and how, by the docker CLI's rules.
//!
//! The reference goes through the docker CLI, so a user's docker setup decides for both:
//!
//! 1. `DOCKER_HOST`;
//! 2. else `DOCKER_CONTEXT`;
//! 3. else `currentContext` in `$DOCKER_CONFIG/config.json` (default `~/.docker`);
//! 4. else `unix:///var/run/docker.sock`.
//!
//! A named context is read from `$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json` (its
//! `Endpoints.docker.Host` and `SkipTLSVerify`), its TLS files from
//! `contexts/tls/<sha256>/docker/{ca,cert,key}.pem`; the context `default` is the default socket.
//! With `DOCKER_HOST`, TLS follows `DOCKER_TLS_VERIFY` (verify the daemon against `ca.pem`) or
//! `DOCKER_TLS` (TLS, no verification), with the files in `DOCKER_CERT_PATH` (default: the config
//! folder, `$DOCKER_CONFIG` or `~/.docker`). `--docker-path podman` picks podman's socket as the
//! podman CLI would, ignoring `DOCKER_HOST`: `CONTAINER_HOST`, else
//! `$XDG_RUNTIME_DIR/podman/podman.sock` (rootless), else `/run/podman/podman.sock`.
//!
//! Hosts: `unix://PATH`, `tcp://HOST:PORT` or `http://HOST:PORT` (TLS as above; port 2376 by
//! default with TLS), `ssh://[USER@]HOST[:PORT][/PATH]` (the `ssh` program on PATH running
//! `docker system dial-stdio` on the host, as the docker CLI does; `/PATH` names the remote
//! daemon's socket).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls;

pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The environment variables that decide the endpoint, as the front end read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerEnv {
    /// `DOCKER_HOST`.
    pub host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub context: Option<String>,
    /// `DOCKER_CONFIG`.
    pub config: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `DOCKER_TLS_VERIFY`.
    pub tls_verify: Option<String>,
    /// `DOCKER_TLS`.
    pub tls: Option<String>,
    /// `DOCKER_CERT_PATH`.
    pub cert_path: Option<PathBuf>,
    /// `CONTAINER_HOST` (podman's).
    pub container_host: Option<String>,
    /// `XDG_RUNTIME_DIR`.
    pub runtime_dir: Option<PathBuf>,
}

impl DockerEnv {
    /// Reads the variables through `get` (empty values count as unset).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| get(name).filter(|value| !value.is_empty());
        Self {
            host: var("DOCKER_HOST"),
            context: var("DOCKER_CONTEXT"),
            config: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            tls_verify: var("DOCKER_TLS_VERIFY"),
            tls: var("DOCKER_TLS"),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            container_host: var("CONTAINER_HOST"),
            runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
        }
    }

    /// `$DOCKER_CONFIG`, else `~/.docker`.
    fn config_dir(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(|| {
            self.home
                .clone()
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".docker")
        })
    }
}

/// How dcx reaches the daemon.
#[derive(Clone)]
pub enum Transport {
    Unix(String),
    Tcp(String),
    Tls {
        addr: String,
        server_name: rustls::pki_types::ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
    },
    Ssh(SshTarget),
}

/// An `ssh://` host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The remote daemon's socket, when the URL names one.
    pub socket: Option<String>,
}

impl SshTarget {
    /// `ssh`'s arguments for one connection: `[-l USER] [-p PORT] HOST -- docker [--host
    /// unix://PATH] system dial-stdio`.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.extend(["-l".to_owned(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_owned(), port.to_string()]);
        }
        args.extend([self.host.clone(), "--".to_owned(), "docker".to_owned()]);
        if let Some(socket) = &self.socket {
            args.extend(["--host".to_owned(), format!("unix://{socket}")]);
        }
        args.extend(["system".to_owned(), "dial-stdio".to_owned()]);
        args
    }
}

/// The daemon dcx talks to, how, and why that one.
#[derive(Clone)]
pub struct Endpoint {
    pub transport: Transport,
    /// As users write it (`unix:///var/run/docker.sock`, `ssh://me@host`, `tcp://h:2376`).
    pub shown: String,
    /// Where the choice came from (`DOCKER_HOST`, `DOCKER_CONTEXT=x`, …).
    pub source: String,
}

/// Why the endpoint could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("Unsupported DOCKER_HOST {0}: dcx speaks to unix://, tcp:// and ssh:// endpoints.")]
    Unsupported(String),
    #[error(
        "No such Docker context: {name} (from {origin}; {path} does not exist). `docker context ls` lists the contexts."
    )]
    NoSuchContext {
        name: String,
        origin: String,
        path: String,
    },
    #[error("Cannot read the Docker context {name} ({path}): {reason}")]
    BadContext {
        name: String,
        path: String,
        reason: String,
    },
    #[error("Cannot read {path} ({what}, for {origin}): {reason}")]
    TlsFile {
        path: String,
        what: &'static str,
        origin: String,
        reason: String,
    },
}

/// Decides the endpoint; `podman` is `--docker-path` naming podman.
pub fn select(env: &DockerEnv, podman: bool) -> Result<Endpoint, EndpointError> {
    if podman {
        if let Some(host) = &env.container_host {
            return parse_host(host, None, "CONTAINER_HOST (--docker-path podman)");
        }
        let rootless = !rustix::process::geteuid().is_root();
        let socket = match &env.runtime_dir {
            Some(dir) if rootless => format!("{}/podman/podman.sock", dir.display()),
            _ => "/run/podman/podman.sock".to_owned(),
        };
        return Ok(unix(socket, "podman's socket (--docker-path podman)"));
    }
    if let Some(host) = &env.host {
        let tls = env_tls(env);
        return parse_host(host, tls.as_ref(), "DOCKER_HOST");
    }
    if let Some(name) = &env.context {
        return context(env, name, "DOCKER_CONTEXT");
    }
    let config_file = env.config_dir().join("config.json");
    if let Some(name) = current_context(&config_file)? {
        return context(
            env,
            &name,
            &format!("currentContext in {}", config_file.display()),
        );
    }
    Ok(unix(DEFAULT_SOCKET.to_owned(), "the default socket"))
}

/// A context's folder name: the sha256 of its name, in hex.
fn context_hash(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn unix(path: String, source: &str) -> Endpoint {
    Endpoint {
        shown: format!("unix://{path}"),
        transport: Transport::Unix(path),
        source: source.to_owned(),
    }
}

/// TLS for `DOCKER_HOST`, as `DOCKER_TLS_VERIFY` and `DOCKER_TLS` ask.
struct TlsWanted {
    dir: PathBuf,
    verify: bool,
    source: String,
}

fn env_tls(env: &DockerEnv) -> Option<TlsWanted> {
    let verify = env.tls_verify.is_some();
    (verify || env.tls.is_some()).then(|| TlsWanted {
        dir: env.cert_path.clone().unwrap_or_else(|| env.config_dir()),
        verify,
        source: if verify {
            "DOCKER_TLS_VERIFY".to_owned()
        } else {
            "DOCKER_TLS".to_owned()
        },
    })
}

fn parse_host(
    host: &str,
    tls: Option<&TlsWanted>,
    source: &str,
) -> Result<Endpoint, EndpointError> {
    let host = host.trim();
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(unix(path.to_owned(), source));
    }
    if let Some(rest) = host.strip_prefix("ssh://") {
        let target = parse_ssh(rest).ok_or_else(|| EndpointError::Unsupported(host.to_owned()))?;
        return Ok(Endpoint {
            transport: Transport::Ssh(target),
            shown: host.to_owned(),
            source: source.to_owned(),
        });
    }
    if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/').to_owned();
        if addr.is_empty() {
            return Err(EndpointError::Unsupported(host.to_owned()));
        }
        let transport = match tls {
            Some(tls) => tls_transport(&addr, &tls.dir, tls.verify, &tls.source)?,
            None => Transport::Tcp(addr.clone()),
        };
        return Ok(Endpoint {
            transport,
            shown: format!("tcp://{addr}"),
            source: source.to_owned(),
        });
    }
    Err(EndpointError::Unsupported(host.to_owned()))
}

/// `[user@]host[:port][/path]`.
fn parse_ssh(rest: &str) -> Option<SshTarget> {
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((user, hostport)) => (Some(user.to_owned()), hostport),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            (host, Some(port.parse::<u16>().ok()?))
        }
        _ => (hostport, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || user.as_deref() == Some("") {
        return None;
    }
    Some(SshTarget {
        user,
        host: host.to_owned(),
        port,
        socket: path.filter(|p| *p != "/").map(str::to_owned),
    })
}

/// The name `config.json` makes current, if any (`default` counts as none).
fn current_context(file: &Path) -> Result<Option<String>, EndpointError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(_) => return Ok(None),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| EndpointError::BadContext {
            name: "(current)".to_owned(),
            path: file.display().to_string(),
            reason: err.to_string(),
        })?;
    Ok(json["currentContext"]
        .as_str()
        .filter(|name| !name.is_empty() && *name != "default")
        .map(str::to_owned))
}

/// The context's endpoint (`default`: the default socket).
fn context(env: &DockerEnv, name: &str, source: &str) -> Result<Endpoint, EndpointError> {
    if name == "default" {
        return Ok(unix(
            DEFAULT_SOCKET.to_owned(),
            &format!("the default context ({source})"),
        ));
    }
    let hash = context_hash(name);
    let dir = env.config_dir().join("contexts");
    let meta = dir.join("meta").join(&hash).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|_| EndpointError::NoSuchContext {
        name: name.to_owned(),
        origin: source.to_owned(),
        path: meta.display().to_string(),
    })?;
    let bad = |reason: String| EndpointError::BadContext {
        name: name.to_owned(),
        path: meta.display().to_string(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| bad(err.to_string()))?;
    let docker = &json["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .ok_or_else(|| bad("it has no Endpoints.docker.Host".to_owned()))?;
    let skip_verify = docker["SkipTLSVerify"].as_bool().unwrap_or(false);
    let tls_dir = dir.join("tls").join(&hash).join("docker");
    let source = format!("context {name} ({source})");
    let tls = tls_dir.is_dir().then(|| TlsWanted {
        dir: tls_dir,
        verify: !skip_verify,
        source: source.clone(),
    });
    let tls = match (tls, skip_verify, host.starts_with("tcp://")) {
        // SkipTLSVerify without TLS files: TLS, trusting the daemon.
        (None, true, true) => Some(TlsWanted {
            dir: PathBuf::new(),
            verify: false,
            source: source.clone(),
        }),
        (tls, _, _) => tls,
    };
    parse_host(host, tls.as_ref(), &source)
}

fn tls_transport(
    addr: &str,
    dir: &Path,
    verify: bool,
    source: &str,
) -> Result<Transport, EndpointError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let file_error = |path: &Path, what: &'static str, reason: String| EndpointError::TlsFile {
        path: path.display().to_string(),
        what,
        origin: source.to_owned(),
        reason,
    };
    let pem_reason = |err: rustls::pki_types::pem::Error| match err {
        rustls::pki_types::pem::Error::Io(err) => crate::runtime::io_reason(&err),
        other => other.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| file_error(dir, "TLS setup", err.to_string()))?;
    let builder = if verify {
        let ca = dir.join("ca.pem");
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&ca)
            .map_err(|err| file_error(&ca, "the CA certificate", pem_reason(err)))?;
        for cert in certs {
            let cert =
                cert.map_err(|err| file_error(&ca, "the CA certificate", pem_reason(err)))?;
            roots
                .add(cert)
                .map_err(|err| file_error(&ca, "the CA certificate", err.to_string()))?;
        }
        if roots.is_empty() {
            return Err(file_error(
                &ca,
                "the CA certificate",
                "no certificate in it".into(),
            ));
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustAnything(provider)))
    };
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let config = match (cert.exists(), key.exists()) {
        (false, false) => builder.with_no_client_auth(),
        _ => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
                .map_err(|err| file_error(&cert, "the client certificate", pem_reason(err)))?
                .collect::<Result<_, _>>()
                .map_err(|err| file_error(&cert, "the client certificate", pem_reason(err)))?;
            let private = PrivateKeyDer::from_pem_file(&key)
                .map_err(|err| file_error(&key, "the client key", pem_reason(err)))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|err| file_error(&cert, "the client certificate", err.to_string()))?
        }
    };
    // No session resumption: OpenSSL servers that verify clients (socat's, stunnel's) refuse a
    // resumed session they have no context for, and each connection is long-lived anyway.
    let mut config = config;
    config.resumption = rustls::client::Resumption::disabled();
    let host = match addr.rsplit_once(':') {
        Some((host, _)) => host,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|err| EndpointError::Unsupported(format!("tcp://{addr} ({err})")))?;
    let addr = if addr.contains(':') {
        addr.to_owned()
    } else {
        format!("{addr}:2376")
    };
    Ok(Transport::Tls {
        addr,
        server_name,
        config: Arc::new(config),
    })
}

/// `DOCKER_TLS` without `DOCKER_TLS_VERIFY`, or a context's `SkipTLSVerify`: TLS that takes the
/// daemon's certificate as it comes (signatures still checked), as the docker CLI does.
#[derive(Debug)]
struct TrustAnything(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for TrustAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> DockerEnv {
        DockerEnv {
            config: Some(dir.to_path_buf()),
            ..DockerEnv::default()
        }
    }

    fn make_context(dir: &Path, name: &str, host: &str) {
        let hash = context_hash(name);
        let meta = dir.join("contexts/meta").join(hash);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn the_docker_cli_order_decides() {
        let dir = tempfile::tempdir().unwrap();
        make_context(dir.path(), "eco", "tcp://127.0.0.1:23750");
        make_context(dir.path(), "other", "unix:///run/other.sock");
        let mut env = env(dir.path());
        let shown = |env: &DockerEnv| {
            let endpoint = select(env, false).unwrap();
            format!("{} <- {}", endpoint.shown, endpoint.source)
        };
        assert_eq!(
            shown(&env),
            "unix:///var/run/docker.sock <- the default socket"
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"other"}"#,
        )
        .unwrap();
        assert_eq!(
            shown(&env),
            format!(
                "unix:///run/other.sock <- context other (currentContext in {}/config.json)",
                dir.path().display()
            )
        );
        env.context = Some("eco".into());
        assert_eq!(
            shown(&env),
            "tcp://127.0.0.1:23750 <- context eco (DOCKER_CONTEXT)"
        );
        env.host = Some("unix:///run/x.sock".into());
        assert_eq!(shown(&env), "unix:///run/x.sock <- DOCKER_HOST");
        // podman ignores DOCKER_HOST.
        env.container_host = Some("unix:///run/p.sock".into());
        assert_eq!(select(&env, true).unwrap().shown, "unix:///run/p.sock");
        env.host = None;
        env.context = Some("nope".into());
        let err = select(&env, false).err().unwrap().to_string();
        assert!(
            err.starts_with("No such Docker context: nope (from DOCKER_CONTEXT; "),
            "{err}"
        );
    }

    #[test]
    fn docker_host_forms() {
        let host = |value: &str| {
            let env =
                DockerEnv::from_vars(|name| (name == "DOCKER_HOST").then(|| value.to_owned()));
            select(&env, false).map(|endpoint| endpoint.shown)
        };
        assert_eq!(host("").unwrap(), "unix:///var/run/docker.sock");
        assert_eq!(host("unix:///tmp/d.sock").unwrap(), "unix:///tmp/d.sock");
        assert_eq!(
            host("tcp://127.0.0.1:2375/").unwrap(),
            "tcp://127.0.0.1:2375"
        );
        assert_eq!(host("ssh://me@box").unwrap(), "ssh://me@box");
        insta::assert_snapshot!(
            host("npipe:////./pipe/docker").err().unwrap(),
            @"Unsupported DOCKER_HOST npipe:////./pipe/docker: dcx speaks to unix://, tcp:// and ssh:// endpoints."
        );
    }

    #[test]
    fn ssh_hosts_read_as_the_docker_cli_reads_them() {
        assert_eq!(
            parse_ssh("me@box:2222").unwrap().args(),
            [
                "-l",
                "me",
                "-p",
                "2222",
                "box",
                "--",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
        assert_eq!(
            parse_ssh("box/run/user/docker.sock").unwrap().args(),
            [
                "box",
                "--",
                "docker",
                "--host",
                "unix:///run/user/docker.sock",
                "system",
                "dial-stdio"
            ]
        );
        assert_eq!(parse_ssh("").map(|t| t.host), None);
        assert_eq!(parse_ssh("@box"), None);
        assert_eq!(parse_ssh("box:notaport"), None);
    }

    #[test]
    fn tls_without_certificates_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = DockerEnv {
            host: Some("tcp://127.0.0.1:2376".into()),
            tls_verify: Some("1".into()),
            cert_path: Some(dir.path().to_path_buf()),
            ..DockerEnv::default()
        };
        let err = select(&env, false).err().unwrap().to_string();
        assert_eq!(
            err,
            format!(
                "Cannot read {}/ca.pem (the CA certificate, for DOCKER_TLS_VERIFY): No such file or directory",
                dir.path().display()
            )
        );
        // DOCKER_TLS alone: TLS, nothing to verify against, no file needed.
        let env = DockerEnv {
            tls_verify: None,
            tls: Some("1".into()),
            ..env
        };
        assert!(matches!(
            select(&env, false).unwrap().transport,
            Transport::Tls { .. }
        ));
    }
}
