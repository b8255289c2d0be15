//! Store URLs: how a user names a backend.
//!
//! | URL | backend |
//! |---|---|
//! | `memory:` | in memory, nothing kept |
//! | `embedded:PATH` (or a bare path) | the embedded engine in directory PATH |
//! | `postgres://user:pass@host:port/db` (`postgresql://` too) | PostgreSQL |
//! | `mysql://user:pass@host:port/db` (`mariadb://` too) | MySQL or MariaDB |
//! | `cassandra://host:port[,host:port…]/keyspace[?options]` | Apache Cassandra (options: `cassandra::config`) |

use std::path::PathBuf;

use crate::error::StoreError;

/// The default data directory of `kora serve`.
pub const DEFAULT_DATA_DIR: &str = "./kora-data";

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Memory,
    Embedded(PathBuf),
    Postgres(String),
    Mysql(String),
    Cassandra(String),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let url = url.trim();
        if url.is_empty() {
            return Err(invalid("empty"));
        }
        if url == "memory:" || url == "memory://" {
            return Ok(StoreUrl::Memory);
        }
        if let Some(path) = url
            .strip_prefix("embedded://")
            .or_else(|| url.strip_prefix("embedded:"))
        {
            if path.is_empty() {
                return Err(invalid(
                    "embedded: needs a directory, e.g. embedded:./kora-data",
                ));
            }
            return Ok(StoreUrl::Embedded(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("mariadb://") {
            return Ok(StoreUrl::Mysql(format!("mysql://{rest}")));
        }
        if url.starts_with("mysql://") {
            return Ok(StoreUrl::Mysql(url.to_string()));
        }
        if url.starts_with("cassandra://") {
            crate::cassandra::CassandraConfig::parse(url)?;
            return Ok(StoreUrl::Cassandra(url.to_string()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(invalid(&format!(
                "unknown scheme {scheme:?}; use memory:, embedded:PATH, postgres://, mysql:// or cassandra://"
            )));
        }
        Ok(StoreUrl::Embedded(PathBuf::from(url)))
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        match self {
            StoreUrl::Memory => "memory:".into(),
            StoreUrl::Embedded(path) => format!("embedded:{}", path.display()),
            StoreUrl::Postgres(url) | StoreUrl::Mysql(url) | StoreUrl::Cassandra(url) => {
                redact(url)
            }
        }
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(StoreUrl::parse("memory:"), Ok(StoreUrl::Memory));
        assert_eq!(
            StoreUrl::parse("embedded:./data"),
            Ok(StoreUrl::Embedded("./data".into()))
        );
        assert_eq!(
            StoreUrl::parse("/var/lib/kora"),
            Ok(StoreUrl::Embedded("/var/lib/kora".into()))
        );
        assert!(matches!(
            StoreUrl::parse("postgresql://u:p@h/db"),
            Ok(StoreUrl::Postgres(_))
        ));
        assert_eq!(
            StoreUrl::parse("mariadb://u:p@h/db"),
            Ok(StoreUrl::Mysql("mysql://u:p@h/db".into()))
        );
        assert!(matches!(
            StoreUrl::parse("cassandra://10.0.0.1:9042,10.0.0.2/kora?consistency=quorum"),
            Ok(StoreUrl::Cassandra(_))
        ));
        assert!(StoreUrl::parse("cassandra://h/ks?consistency=nope").is_err());
    }

    #[test]
    fn refuses_unknown_schemes_and_empty_paths() {
        assert!(StoreUrl::parse("redis://x").is_err());
        assert!(StoreUrl::parse("embedded:").is_err());
        assert!(StoreUrl::parse("").is_err());
    }

    #[test]
    fn redacts_passwords() {
        let url = StoreUrl::parse("postgres://kora:secret@127.0.0.1:5432/db").unwrap();
        assert_eq!(url.redacted(), "postgres://kora:***@127.0.0.1:5432/db");
    }
}
