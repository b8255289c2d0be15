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
            url: redact(url),
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

/// Replaces the password with `***`. The URL parser finds where the user information ends
/// (at the last `@` before the host), so a password holding `@`, `:` or `/` is hidden whole.
pub(crate) fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut parsed) if parsed.password().is_some() => {
            if parsed.set_password(Some("***")).is_err() {
                return "<a URL that cannot be shown>".into();
            }
            parsed.to_string()
        }
        Ok(_) => text.to_string(),
        // Not a URL the parser reads (Cassandra's list of hosts): the user information
        // ends at the last `@`.
        Err(_) => match text.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((userinfo, hosts)) => {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    format!("{scheme}://{user}:***@{hosts}")
                }
                None => text.to_string(),
            },
            None => "***".into(),
        },
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

    #[test]
    fn redacts_passwords_holding_at_signs_and_colons() {
        for (url, shown) in [
            (
                "postgres://kora:p@ss@db.example:5432/kora",
                "postgres://kora:***@db.example:5432/kora",
            ),
            (
                "mysql://kora:a:b@c@127.0.0.1/kora",
                "mysql://kora:***@127.0.0.1/kora",
            ),
            (
                "cassandra://u:s3@cr3t@10.0.0.1:9042,10.0.0.2/ks",
                "cassandra://u:***@10.0.0.1:9042,10.0.0.2/ks",
            ),
            ("postgres://127.0.0.1/kora", "postgres://127.0.0.1/kora"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            assert!(
                !redact(url).contains("ss@") && !redact(url).contains("cr3t"),
                "{url}"
            );
        }
    }
}
