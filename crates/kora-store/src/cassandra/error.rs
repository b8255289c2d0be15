//! The driver's errors, sorted into "try again" (a replica or the connection failed: the
//! coordinator could not reach a quorum in time, a node is down or overloaded) and "do not"
//! (a bad statement, an invalid keyspace), and reply decoding errors, which mean Kora's
//! tables do not hold what Kora wrote.

use std::fmt;

use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, ExecutionError,
    FirstRowError, IntoRowsResultError, MaybeFirstRowError, MetadataError, NewSessionError,
    PrepareError, RequestAttemptError, RowsError, SingleRowError,
};

use crate::error::StoreError;
use crate::retry::{AttemptError, Transient};

/// A driver error and whether it is worth retrying.
#[derive(Debug)]
pub struct CqlError {
    message: String,
    transient: bool,
}

impl fmt::Display for CqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Transient for CqlError {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

/// A failed attempt at a Cassandra request.
pub type Attempt = AttemptError<CqlError>;

fn db(error: impl fmt::Display, transient: bool) -> Attempt {
    AttemptError::Db(CqlError {
        message: error.to_string(),
        transient,
    })
}

/// Server errors that say "not now" rather than "never".
fn transient_db(error: &DbError) -> bool {
    matches!(
        error,
        DbError::Unavailable { .. }
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::ReadFailure { .. }
            | DbError::WriteFailure { .. }
            | DbError::ServerError
            | DbError::TruncateError
            | DbError::RateLimitReached { .. }
    )
}

fn transient_attempt(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::DbError(db, _) => transient_db(db),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        _ => false,
    }
}

impl From<ExecutionError> for Attempt {
    fn from(error: ExecutionError) -> Self {
        let transient = match &error {
            ExecutionError::LastAttemptError(attempt) => transient_attempt(attempt),
            ExecutionError::PrepareError(prepare) => transient_prepare(prepare),
            ExecutionError::ConnectionPoolError(_)
            | ExecutionError::RequestTimeout(_)
            | ExecutionError::EmptyPlan
            | ExecutionError::SchemaAgreementError(_)
            | ExecutionError::MetadataError(_) => true,
            _ => false,
        };
        db(error, transient)
    }
}

fn transient_prepare(error: &PrepareError) -> bool {
    match error {
        PrepareError::ConnectionPoolError(_) => true,
        PrepareError::AllAttemptsFailed { first_attempt } => transient_attempt(first_attempt),
        _ => false,
    }
}

impl From<PrepareError> for Attempt {
    fn from(error: PrepareError) -> Self {
        let transient = transient_prepare(&error);
        db(error, transient)
    }
}

impl From<NewSessionError> for Attempt {
    fn from(error: NewSessionError) -> Self {
        // Unreachable or still-starting nodes show up as metadata or resolution failures;
        // a node that refused the credentials or whose certificate is not trusted will do
        // so again.
        let transient = match &error {
            NewSessionError::FailedToResolveAnyHostname(_) => true,
            NewSessionError::MetadataError(MetadataError::ConnectionPoolError(
                ConnectionPoolError::Broken {
                    last_connection_error,
                },
            )) => !refused(last_connection_error),
            NewSessionError::MetadataError(_) => true,
            _ => false,
        };
        db(error, transient)
    }
}

/// True when a connection was refused for good: bad or missing credentials, or a TLS
/// handshake that failed on the certificate.
fn refused(error: &ConnectionError) -> bool {
    match error {
        ConnectionError::ConnectionSetupRequestError(setup) => matches!(
            &setup.error,
            ConnectionSetupRequestErrorKind::MissingAuthentication
                | ConnectionSetupRequestErrorKind::DbError(DbError::AuthenticationError, _)
                | ConnectionSetupRequestErrorKind::StartAuthSessionError(_)
                | ConnectionSetupRequestErrorKind::AuthChallengeEvaluationError(_)
                | ConnectionSetupRequestErrorKind::AuthFinishError(_)
        ),
        ConnectionError::IoError(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|tls| {
                matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_)
                )
            }),
        _ => false,
    }
}

fn corrupted(error: impl fmt::Display) -> Attempt {
    AttemptError::Store(StoreError::Corrupted(format!("a Cassandra reply: {error}")))
}

impl From<IntoRowsResultError> for Attempt {
    fn from(error: IntoRowsResultError) -> Self {
        corrupted(error)
    }
}

impl From<RowsError> for Attempt {
    fn from(error: RowsError) -> Self {
        corrupted(error)
    }
}

impl From<scylla::deserialize::DeserializationError> for Attempt {
    fn from(error: scylla::deserialize::DeserializationError) -> Self {
        corrupted(error)
    }
}

impl From<MaybeFirstRowError> for Attempt {
    fn from(error: MaybeFirstRowError) -> Self {
        corrupted(error)
    }
}

impl From<FirstRowError> for Attempt {
    fn from(error: FirstRowError) -> Self {
        corrupted(error)
    }
}

impl From<SingleRowError> for Attempt {
    fn from(error: SingleRowError) -> Self {
        corrupted(error)
    }
}
