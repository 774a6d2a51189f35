//! Which web pages may open connections: the `Origin` check of a WebSocket upgrade.
//!
//! Browsers send `Origin` on every WebSocket upgrade and let any page open a connection to any
//! server, with the user's cookies and network position; a server that does not check it can
//! be driven by whatever page the user visits (cross-site WebSocket hijacking). Other clients
//! send no `Origin` (or one they choose), so the check protects browser users, not the server.

use tokio_tungstenite::tungstenite::handshake::server::Request;

use crate::server::Reject;

/// Which origins may connect. A request from any other is refused with HTTP 403 before the
/// upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Pages of the server's own origin only: the `Origin` header's host and port are those of
    /// the `Host` header. The default of a server: safe for browsers, nothing to configure when
    /// the page and the wsp server share a host.
    #[default]
    SameOrigin,
    /// Exactly these origins (`https://app.example.com`, `http://localhost:5173`), compared
    /// without regard to ASCII case.
    AllowList(Vec<String>),
    /// Any origin: for servers whose every connection is authenticated by other means than the
    /// browser's cookies or network position (the relay, whose peers prove keys).
    Any,
}

impl OriginPolicy {
    /// An allow-list of these origins.
    pub fn allow<I, S>(origins: I) -> OriginPolicy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OriginPolicy::AllowList(
            origins
                .into_iter()
                .map(|o| o.into().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        )
    }

    /// Checks an upgrade request: `Origin` must be allowed if present; a request without one
    /// (not from a browser) passes unless `require` is set.
    pub fn check(&self, req: &Request, require: bool) -> Result<(), Reject> {
        let Some(origin) = req.headers().get("origin") else {
            return if require {
                Err(Reject::new(403, "an Origin header is required"))
            } else {
                Ok(())
            };
        };
        let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
        let allowed = match self {
            OriginPolicy::Any => true,
            OriginPolicy::AllowList(list) => list.contains(&origin),
            OriginPolicy::SameOrigin => {
                let host = req
                    .headers()
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                same_authority(&origin, &host)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Reject::new(403, "origin not allowed"))
        }
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the authority `host` (`host[:port]`), a
/// default port written or not.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme {
        "https" | "wss" => ":443",
        "http" | "ws" => ":80",
        _ => return false,
    };
    let strip = |a: &str| a.strip_suffix(default).unwrap_or(a).to_owned();
    !host.is_empty() && strip(authority) == strip(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: Option<&str>, host: &str) -> Request {
        let mut b = Request::builder().uri("/").header("host", host);
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        let p = OriginPolicy::SameOrigin;
        assert!(
            p.check(&req(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"), false)
                .is_ok()
        );
        assert!(
            p.check(&req(Some("https://App.example"), "app.example:443"), false)
                .is_ok()
        );
        assert!(
            p.check(&req(Some("https://evil.example"), "app.example"), false)
                .is_err()
        );
        assert!(
            p.check(&req(Some("http://127.0.0.1:9999"), "127.0.0.1:8080"), false)
                .is_err()
        );
        assert!(p.check(&req(Some("null"), "app.example"), false).is_err());
        assert!(p.check(&req(None, "app.example"), false).is_ok());
        assert_eq!(
            p.check(&req(None, "app.example"), true).unwrap_err().status,
            403
        );
    }

    #[test]
    fn allow_lists_and_any() {
        let p = OriginPolicy::allow(["https://App.example/"]);
        assert!(
            p.check(&req(Some("https://app.example"), "x"), false)
                .is_ok()
        );
        assert!(
            p.check(&req(Some("https://evil.example"), "x"), false)
                .is_err()
        );
        assert!(
            OriginPolicy::Any
                .check(&req(Some("null"), "x"), true)
                .is_ok()
        );
    }
}
