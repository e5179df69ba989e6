//! RPC authentication as bitcoind does it: a random cookie written to the data directory
//! at start (readable by the node's user only) and removed at shutdown, plus an optional
//! user/password from the config. Both travel as HTTP basic auth.

use base64::Engine as _;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The cookie file's name in the data directory.
pub const COOKIE_FILE: &str = ".cookie";

/// The user name of cookie authentication.
const COOKIE_USER: &str = "__cookie__";

/// Where the cookie of the node with data directory `datadir` is.
pub fn cookie_path(datadir: &Path) -> PathBuf {
    datadir.join(COOKIE_FILE)
}

/// Writes a fresh random cookie (mode 0600, atomically) and returns its `user:password`.
pub fn write_cookie(datadir: &Path) -> std::io::Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(format!("random cookie: {e}")))?;
    let cookie = format!("{COOKIE_USER}:{}", hex::encode(secret));
    let mut tmp = tempfile::NamedTempFile::new_in(datadir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(cookie.as_bytes())?;
    tmp.persist(cookie_path(datadir)).map_err(|e| e.error)?;
    Ok(cookie)
}

/// Reads the cookie of the node with data directory `datadir`.
pub fn read_cookie(datadir: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(cookie_path(datadir))?.trim().to_string())
}

/// What a client authenticates with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The cookie's `user:password` line.
    Cookie(String),
    /// A configured user and password.
    UserPassword {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
}

impl Credentials {
    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        let pair = match self {
            Credentials::Cookie(c) => c.clone(),
            Credentials::UserPassword { user, password } => format!("{user}:{password}"),
        };
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

/// Equality in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The HTTP check the server runs before any JSON-RPC: the request must carry one of
/// `accepted` (full `Authorization` header values); otherwise 401 with a JSON-RPC error
/// body saying so. (The response is large for an `Err`, but tower-http's validator
/// fixes this signature.)
#[allow(clippy::result_large_err)]
pub(super) fn check(accepted: Vec<String>) -> impl FnMut(&mut HttpRequest) -> Result<(), HttpResponse> + Clone {
    move |req: &mut HttpRequest| {
        let given = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        if given.is_some_and(|g| accepted.iter().any(|a| same(a.as_bytes(), g))) {
            return Ok(());
        }
        let body = r#"{"jsonrpc":"2.0","error":{"code":-32001,"message":"unauthorized: wrong or missing RPC credentials (cookie or user/password)"},"id":null}"#;
        let mut resp = HttpResponse::new(HttpBody::from(body));
        *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
        resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        resp.headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Basic realm=\"jsonrpc\""));
        Err(resp)
    }
}
