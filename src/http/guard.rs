//! Request guards that hold for every route, before any handler runs:
//!
//! - **Host**: only the names gaffer is reached by (the bind address, `localhost` on a
//!   loopback or unspecified bind, the host of `GAFFER_PUBLIC_URL`; any IP literal on an unspecified
//!   bind such as `0.0.0.0`). A web page that rebinds its own DNS name to 127.0.0.1 sends
//!   its own name as `Host` and is refused (DNS rebinding).
//! - **Cross-site writes**: a mutating request must say it is not a simple cross-site form
//!   post: `Content-Type: application/json`, an `Authorization` header, or an
//!   `X-Gaffer-Request` header (none of which a page on another origin can send without a
//!   CORS preflight, which gaffer never grants); an `Origin` header, when present, must be
//!   one of the allowed hosts. Webhook routes are exempt: GitHub signs each delivery.
//!   The dashboard's form posts (`/ui/...`) get the `Origin` check only, token or not:
//!   they carry a CSRF token their handlers check (see `ui::auth`).

use actix_web::http::header;
use actix_web::http::Method;
use actix_web::HttpRequest;

use crate::config::Settings;
use crate::error::{AppError, ErrorKind};

/// Hosts gaffer answers to: `(lower-case host, port)`.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<(String, u16)>,
    port: u16,
    any_ip_literal: bool,
}

impl AllowedHosts {
    /// From the settings and the port actually bound (port 0 binds a random one).
    pub fn new(settings: &Settings, port: u16) -> AllowedHosts {
        let ip = settings.bind.ip();
        let mut names = vec![(host_of_ip(&ip.to_string()), port)];
        if ip.is_loopback() || ip.is_unspecified() {
            // Loopback names reach only this machine: no rebinding page can use them.
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                names.push((name.to_string(), port));
            }
        }
        if let Some(public) = settings
            .public_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
        {
            if let Some(host) = public.host_str() {
                let port = public.port_or_known_default().unwrap_or(443);
                names.push((host.to_ascii_lowercase(), port));
            }
        }
        AllowedHosts {
            names,
            port,
            any_ip_literal: ip.is_unspecified(),
        }
    }

    /// Whether a `Host` header value (`name[:port]`) is one gaffer answers to.
    pub fn allows(&self, host: &str, default_port: u16) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = split_host(&host, default_port);
        if self.names.iter().any(|(n, p)| *n == name && *p == port) {
            return true;
        }
        let literal = name.trim_matches(|c| c == '[' || c == ']');
        self.any_ip_literal && port == self.port && literal.parse::<std::net::IpAddr>().is_ok()
    }
}

fn host_of_ip(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn split_host(host: &str, default_port: u16) -> (String, u16) {
    // "[::1]:8000", "[::1]", "example.com:443", "example.com"
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        return (format!("[{inside}]"), port);
    }
    match host.rsplit_once(':') {
        Some((name, port)) => match port.parse() {
            Ok(port) => (name.to_string(), port),
            Err(_) => (host.to_string(), default_port),
        },
        None => (host.to_string(), default_port),
    }
}

fn forbidden(message: String) -> AppError {
    AppError::new(ErrorKind::Forbidden, message)
}

/// Checks one request; `Err` is answered as it is, and no handler runs. `token_set`:
/// `GAFFER_API_TOKEN` is configured, so mutating requests need `Authorization` anyway
/// (which no cross-site page can send) and keep their 401.
pub fn check(req: &HttpRequest, allowed: &AllowedHosts, token_set: bool) -> Result<(), AppError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !allowed.allows(host, 80) {
        return Err(forbidden(format!(
            "Host {:?} is not one gaffer answers to: behind a proxy, set GAFFER_PUBLIC_URL to the address users and GitHub use",
            host.chars().take(100).collect::<String>()
        )));
    }
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let path = req.path();
    if !mutating || path == "/webhook" || path == "/github/webhook" {
        return Ok(());
    }
    if path.starts_with("/ui/") {
        // The dashboard's forms: same-origin only, whatever the token; each handler then
        // checks the session and the CSRF token (see `ui::auth`).
        return check_origin(req, allowed);
    }
    if token_set {
        return Ok(());
    }
    check_origin(req, allowed)?;
    let headers = req.headers();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if json
        || headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("x-gaffer-request")
    {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorKind::UnsupportedMediaType,
            "a request that changes something must send Content-Type: application/json (or an X-Gaffer-Request header), so a web page on another site cannot send it",
        ))
    }
}

/// An `Origin` header, when present, must be one of the allowed hosts.
fn check_origin(req: &HttpRequest, allowed: &AllowedHosts) -> Result<(), AppError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let ok = reqwest::Url::parse(origin).ok().is_some_and(|u| {
        let default = u.port_or_known_default().unwrap_or(80);
        let host = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        };
        allowed.allows(&host, default)
    });
    if ok {
        Ok(())
    } else {
        Err(forbidden(format!(
            "cross-site request from Origin {:?} refused",
            origin.chars().take(100).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bind: &str, public: Option<&str>) -> Settings {
        let mut vars = std::collections::HashMap::new();
        vars.insert("GAFFER_BIND".to_string(), bind.to_string());
        if let Some(p) = public {
            vars.insert("GAFFER_PUBLIC_URL".to_string(), p.to_string());
        }
        Settings::from_sources(None, "test", &vars).unwrap()
    }

    fn post(path: &str, origin: Option<&str>) -> HttpRequest {
        let mut req = actix_web::test::TestRequest::post()
            .uri(path)
            .insert_header((header::HOST, "127.0.0.1:8000"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"));
        if let Some(origin) = origin {
            req = req.insert_header((header::ORIGIN, origin));
        }
        req.to_http_request()
    }

    #[test]
    fn dashboard_forms_need_gaffers_own_origin_and_the_api_keeps_its_rule() {
        let allowed = AllowedHosts::new(&settings("127.0.0.1:8000", None), 8000);
        for token_set in [false, true] {
            let own = post("/ui/repos/a/b/pause", Some("http://127.0.0.1:8000"));
            assert!(check(&own, &allowed, token_set).is_ok());
            let no_origin = post("/ui/repos/a/b/pause", None);
            assert!(check(&no_origin, &allowed, token_set).is_ok());
            for bad in ["http://evil.example", "null"] {
                let foreign = post("/ui/repos/a/b/pause", Some(bad));
                assert!(check(&foreign, &allowed, token_set).is_err(), "{bad}");
            }
        }
        // A form post to the JSON API is still refused without a token.
        let api = post("/repos/a/b/pause", Some("http://127.0.0.1:8000"));
        assert!(check(&api, &allowed, false).is_err());
    }

    #[test]
    fn hosts_gaffer_answers_to() {
        let loopback = AllowedHosts::new(&settings("127.0.0.1:8000", None), 8000);
        for ok in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST:8000",
            "[::1]:8000",
        ] {
            assert!(loopback.allows(ok, 80), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "127.0.0.1:9000",
            "localhost",
            "127.0.0.1.nip.io:8000",
            "",
        ] {
            assert!(!loopback.allows(bad, 80), "{bad}");
        }
        let public = AllowedHosts::new(
            &settings("0.0.0.0:8000", Some("https://gaffer.example.com")),
            8000,
        );
        assert!(public.allows("gaffer.example.com", 443));
        assert!(public.allows("gaffer.example.com:443", 80));
        assert!(public.allows("203.0.113.7:8000", 80));
        assert!(public.allows("localhost:8000", 80));
        assert!(!public.allows("evil.example:8000", 80));
        assert!(!public.allows("gaffer.example.com.evil:443", 80));
    }
}
