//! The typed client: an HTTP JSON-RPC client with the node's credentials, and errors that
//! say in one line what went wrong (node not running, wrong cookie, refused request).

use super::auth::Credentials;
use jsonrpsee::core::client::Error as RpcError;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use std::time::Duration;

/// Why a call failed, for people.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the address.
    #[error("cannot reach the node's RPC at {addr}: {reason} (is `gradientcoin node` running? check --rpc)")]
    Unreachable {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The node refused the credentials.
    #[error("the node at {addr} refused our RPC credentials: wrong cookie or user/password (check --datadir)")]
    Unauthorized {
        /// The address.
        addr: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{message} (RPC error {code})")]
    Call {
        /// The stable code.
        code: i32,
        /// The node's message.
        message: String,
    },
    /// Anything else (timeouts, malformed responses).
    #[error("RPC to {addr} failed: {reason}")]
    Other {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// The JSON-RPC error code, if the node answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A client of one node.
#[derive(Clone, Debug)]
pub struct RpcClient {
    inner: HttpClient,
    addr: String,
}

/// A client for the node at `addr` (`host:port`) with `creds`. Builds only: the first
/// call is what finds out whether the node is there.
pub fn connect(addr: &str, creds: &Credentials, timeout: Duration) -> Result<RpcClient, ClientError> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&creds.header())
        .map_err(|e| ClientError::Other { addr: addr.to_string(), reason: format!("credentials: {e}") })?;
    headers.insert("authorization", value);
    let inner = HttpClientBuilder::default()
        .set_headers(headers)
        .request_timeout(timeout)
        .max_response_size(256 << 20)
        .build(format!("http://{addr}"))
        .map_err(|e| ClientError::Other { addr: addr.to_string(), reason: e.to_string() })?;
    Ok(RpcClient { inner, addr: addr.to_string() })
}

impl RpcClient {
    /// The jsonrpsee client: call the `ApiClient` methods on it.
    pub fn api(&self) -> &HttpClient {
        &self.inner
    }

    /// The node's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A call's error, explained.
    pub fn explain(&self, e: RpcError) -> ClientError {
        let addr = self.addr.clone();
        match e {
            RpcError::Call(obj) => ClientError::Call { code: obj.code(), message: obj.message().to_string() },
            RpcError::Transport(t) => {
                let text = format!("{t:#}");
                let chain = error_chain(t.as_ref());
                if chain.contains("401") || text.contains("401") {
                    ClientError::Unauthorized { addr }
                } else if chain.contains("onnection refused") || chain.contains("onnect") || chain.contains("dns") {
                    ClientError::Unreachable { addr, reason: last_cause(t.as_ref()) }
                } else {
                    ClientError::Other { addr, reason: chain }
                }
            }
            RpcError::RequestTimeout => ClientError::Other { addr, reason: "timed out".into() },
            other => ClientError::Other { addr, reason: other.to_string() },
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.join(": ")
}

fn last_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(c) = cur.source() {
        cur = c;
    }
    cur.to_string()
}
