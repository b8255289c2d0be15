//! `cassandra://[user:password@]host:port[,host:port…]/keyspace[?option=value&…]`: where the
//! cluster is, who Kora logs in as (Cassandra's `PasswordAuthenticator`; the user and password
//! percent-encoded, as in any URL), which keyspace holds Kora's tables, the consistency each
//! kind of request asks for, and whether the connection is encrypted.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `consistency` | `local_quorum` | reads and writes (a shorthand for the two below) |
//! | `read_consistency` | `local_quorum` | record and log reads |
//! | `write_consistency` | `local_quorum` | record writes, and the commit phase of LWTs |
//! | `serial_consistency` | `local_serial` | the Paxos phase of LWTs (`serial` across data centres) |
//! | `replication` | `1` | used only when Kora creates the keyspace: `3` (SimpleStrategy) or `dc1:3,dc2:3` (NetworkTopologyStrategy) |
//! | `timeout_ms` | `5000` | one request's client-side timeout; a timed-out request is retried |
//! | `tls` | `off` | `on`: connect over TLS (Cassandra's `client_encryption_options`), checking the nodes' certificates against the web's authorities |
//! | `ca` | — | a PEM file of the authorities to trust instead (a private CA); implies `tls=on` |

use std::time::Duration;

use scylla::statement::{Consistency, SerialConsistency};

use crate::error::StoreError;

/// The CQL port when a host names none.
pub const DEFAULT_PORT: u16 = 9042;

/// The keyspace when the URL names none.
pub const DEFAULT_KEYSPACE: &str = "kora";

/// One request's client-side timeout when the URL sets none: long enough for a Paxos round
/// under load, short enough that a dead coordinator is abandoned and the request retried.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest keyspace name Cassandra accepts.
pub const MAX_KEYSPACE_LEN: usize = 48;

/// How Kora creates the keyspace (when it does not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    Simple(u32),
    /// (data centre, replicas)
    Network(Vec<(String, u32)>),
}

impl Replication {
    /// The `replication` map of `CREATE KEYSPACE`.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            }
            Replication::Network(dcs) => {
                let dcs: Vec<String> = dcs.iter().map(|(dc, n)| format!("'{dc}': {n}")).collect();
                format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
            }
        }
    }
}

/// A parsed `cassandra://` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct CassandraConfig {
    pub hosts: Vec<String>,
    pub keyspace: String,
    pub read: Consistency,
    pub write: Consistency,
    pub serial: SerialConsistency,
    pub replication: Replication,
    pub timeout: Duration,
    /// The user and password to log in with.
    pub credentials: Option<(String, String)>,
    /// Encrypt connections (`Some`), trusting the authorities in this PEM file, or the web's.
    pub tls: Option<Option<std::path::PathBuf>>,
}

impl CassandraConfig {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: crate::url::redact(url),
            reason,
        };
        let rest = url
            .strip_prefix("cassandra://")
            .ok_or_else(|| invalid("not a cassandra:// URL".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, keyspace) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, authority) = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => {
                (Some(parse_credentials(user_info).map_err(invalid)?), hosts)
            }
            None => (None, authority),
        };
        let hosts = parse_hosts(authority).map_err(invalid)?;
        let keyspace = if keyspace.is_empty() {
            DEFAULT_KEYSPACE.to_string()
        } else {
            keyspace.to_string()
        };
        check_keyspace(&keyspace).map_err(invalid)?;
        let mut config = CassandraConfig {
            hosts,
            keyspace,
            read: Consistency::LocalQuorum,
            write: Consistency::LocalQuorum,
            serial: SerialConsistency::LocalSerial,
            replication: Replication::Simple(1),
            timeout: DEFAULT_TIMEOUT,
            credentials,
            tls: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            config.set(name, value).map_err(invalid)?;
        }
        Ok(config)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "consistency" => {
                self.read = consistency(value)?;
                self.write = self.read;
            }
            "read_consistency" => self.read = consistency(value)?,
            "write_consistency" => self.write = consistency(value)?,
            "serial_consistency" => {
                self.serial = match value.to_ascii_lowercase().as_str() {
                    "serial" => SerialConsistency::Serial,
                    "local_serial" => SerialConsistency::LocalSerial,
                    _ => {
                        return Err(format!(
                            "serial_consistency {value:?}: use serial or local_serial"
                        ))
                    }
                }
            }
            "replication" => self.replication = replication(value)?,
            "timeout_ms" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| format!("timeout_ms {value:?} is not a number"))?;
                self.timeout = Duration::from_millis(ms.max(1));
            }
            "tls" => {
                self.tls = match value {
                    "on" | "true" => Some(self.tls.clone().flatten()),
                    "off" | "false" => None,
                    _ => return Err(format!("tls {value:?}: use on or off")),
                }
            }
            "ca" => {
                let path = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                if path.is_empty() {
                    return Err("ca: name a PEM file of certificate authorities".into());
                }
                self.tls = Some(Some(path.into_owned().into()));
            }
            _ => return Err(format!("unknown option {name:?}")),
        }
        Ok(())
    }

    /// The URL as it may be logged (no password).
    pub fn describe(&self) -> String {
        let user = match &self.credentials {
            Some((user, _)) => format!("{user}@"),
            None => String::new(),
        };
        let tls = if self.tls.is_some() { "?tls=on" } else { "" };
        format!(
            "cassandra://{user}{}/{}{tls}",
            self.hosts.join(","),
            self.keyspace
        )
    }
}

/// `user:password`, each percent-decoded.
fn parse_credentials(user_info: &str) -> Result<(String, String), String> {
    let (user, password) = user_info
        .split_once(':')
        .ok_or("credentials: use user:password@host")?;
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|t| t.into_owned())
            .map_err(|_| "credentials: not UTF-8 once percent-decoded".to_string())
    };
    let user = decode(user)?;
    if user.is_empty() {
        return Err("credentials: the user name is empty".into());
    }
    Ok((user, decode(password)?))
}

fn parse_hosts(authority: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for host in authority.split(',').filter(|h| !h.is_empty()) {
        // `[::1]:9042`, `host:9042`, or a bare host.
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok() && !h.ends_with(':'));
        hosts.push(if has_port {
            host.to_string()
        } else {
            format!("{host}:{DEFAULT_PORT}")
        });
    }
    if hosts.is_empty() {
        return Err("no host: use cassandra://host:port/keyspace".into());
    }
    Ok(hosts)
}

/// A TLS client trusting the authorities in the PEM file `ca`, or the web's.
pub fn tls_client(ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            let bad = |e: &dyn std::fmt::Display| format!("ca {}: {e}", ca.display());
            for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn check_keyspace(name: &str) -> Result<(), String> {
    let valid = name.len() <= MAX_KEYSPACE_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !valid {
        return Err(format!(
            "keyspace {name:?}: letters, digits and _ only, starting with a letter, at most {MAX_KEYSPACE_LEN}"
        ));
    }
    Ok(())
}

fn consistency(value: &str) -> Result<Consistency, String> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "all" => Consistency::All,
        "local_one" => Consistency::LocalOne,
        _ => {
            return Err(format!(
                "consistency {value:?}: use one, quorum, local_quorum, all, …"
            ))
        }
    })
}

fn replication(value: &str) -> Result<Replication, String> {
    if let Ok(n) = value.parse::<u32>() {
        if n == 0 {
            return Err("replication must be at least 1".into());
        }
        return Ok(Replication::Simple(n));
    }
    let mut dcs = Vec::new();
    for part in value.split(',') {
        let (dc, n) = part
            .split_once(':')
            .ok_or_else(|| format!("replication {value:?}: use N or dc1:N,dc2:M"))?;
        let n: u32 = n
            .parse()
            .map_err(|_| format!("replication {value:?}: {n:?} is not a number"))?;
        if !dc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || dc.is_empty()
        {
            return Err(format!(
                "replication {value:?}: bad data centre name {dc:?}"
            ));
        }
        dcs.push((dc.to_string(), n));
    }
    Ok(Replication::Network(dcs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_keyspace_and_options() {
        let c = CassandraConfig::parse(
            "cassandra://10.0.0.1,10.0.0.2:19042/app?consistency=quorum&replication=3&timeout_ms=200",
        )
        .unwrap();
        assert_eq!(c.hosts, ["10.0.0.1:9042", "10.0.0.2:19042"]);
        assert_eq!(c.keyspace, "app");
        assert_eq!(
            (c.read, c.write),
            (Consistency::Quorum, Consistency::Quorum)
        );
        assert_eq!(c.replication, Replication::Simple(3));
        assert_eq!(c.timeout, Duration::from_millis(200));
        let d = CassandraConfig::parse("cassandra://h?replication=dc1:3,dc2:2").unwrap();
        assert_eq!(d.keyspace, DEFAULT_KEYSPACE);
        assert_eq!(
            (d.read, d.serial),
            (Consistency::LocalQuorum, SerialConsistency::LocalSerial)
        );
        assert!(d.replication.cql().contains("'dc2': 2"));
    }

    #[test]
    fn reads_credentials_and_tls() {
        let c = CassandraConfig::parse("cassandra://kora:p%40ss%3Aw@h1,h2/app?ca=%2Fetc%2Fca.pem")
            .unwrap();
        assert_eq!(c.credentials, Some(("kora".into(), "p@ss:w".into())));
        assert_eq!(c.hosts, ["h1:9042", "h2:9042"]);
        assert_eq!(c.tls, Some(Some("/etc/ca.pem".into())));
        assert_eq!(c.describe(), "cassandra://kora@h1:9042,h2:9042/app?tls=on");
        let web = CassandraConfig::parse("cassandra://h/app?tls=on").unwrap();
        assert_eq!((web.tls, web.credentials), (Some(None), None));
    }

    #[test]
    fn refuses_bad_urls() {
        for url in [
            "cassandra:///ks",
            "cassandra://h/bad-name",
            "cassandra://h/ks?consistency=most",
            "cassandra://h/ks?replication=0",
            "cassandra://h/ks?colour=blue",
            "cassandra://nopassword@h/ks",
            "cassandra://:p@h/ks",
            "cassandra://h/ks?tls=maybe",
            "cassandra://h/ks?ca=",
        ] {
            assert!(CassandraConfig::parse(url).is_err(), "{url}");
        }
    }
}
