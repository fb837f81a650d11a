//! Who may see the dashboard and use its buttons.
//!
//! - Without `GAFFER_API_TOKEN` gaffer only binds loopback (see `config`), and the pages
//!   are open to this machine; a non-loopback bind without a token is refused here too.
//! - With a token, every page needs a session: the login form takes the token once and
//!   sets `gaffer_session` (HttpOnly, SameSite=Strict), `expiry.HMAC-SHA256(token, expiry)`.
//!   Nothing is kept server-side, a restart keeps sessions, changing the token ends them.
//! - Every button is a form POST carrying a CSRF token equal to the `gaffer_csrf` cookie
//!   (HttpOnly, SameSite=Strict, random): a page on another site can neither read the
//!   cookie nor make the browser send it, so it cannot forge the pair. `guard` still
//!   checks `Host` and `Origin` first.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::Gaffer;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "gaffer_session";
/// The CSRF cookie's name (and the form field carrying the same value is `csrf`).
pub const CSRF_COOKIE: &str = "gaffer_csrf";
/// How long a login lasts.
const SESSION_SECS: i64 = 7 * 24 * 3600;

/// A person allowed to see the pages, and the CSRF token their forms carry.
pub struct Viewer {
    pub csrf: String,
    /// Set when the CSRF cookie is new and must be sent with this page.
    pub new_csrf: bool,
    /// A token is configured (so there is a session to log out of).
    pub token_set: bool,
}

/// A cookie's value from the request's `Cookie` header.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn mac(token: &str, expiry: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(format!("gaffer-ui-session\n{expiry}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A new session cookie's value for `token`.
fn session_value(token: &str) -> String {
    let expiry = crate::engine::now() + SESSION_SECS;
    format!("{expiry}.{}", mac(token, expiry))
}

fn session_valid(token: &str, value: &str) -> bool {
    let Some((expiry, given)) = value.split_once('.') else {
        return false;
    };
    let Ok(expiry) = expiry.parse::<i64>() else {
        return false;
    };
    if expiry < crate::engine::now() {
        return false;
    }
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(format!("gaffer-ui-session\n{expiry}").as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// Whether `given` is the API token (compared as digests: the time taken says nothing
/// about how much matched).
pub fn is_token(gaffer: &Gaffer, given: &str) -> bool {
    gaffer.settings.api_token.as_ref().is_some_and(|t| {
        Sha256::digest(given.as_bytes()) == Sha256::digest(t.expose_secret().as_bytes())
    })
}

fn secure(gaffer: &Gaffer) -> &'static str {
    match gaffer.settings.public_url.as_deref() {
        Some(u) if u.starts_with("https://") => "; Secure",
        _ => "",
    }
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(gaffer: &Gaffer) -> Option<String> {
    let token = gaffer.settings.api_token.as_ref()?;
    Some(format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict{}",
        session_value(token.expose_secret()),
        secure(gaffer)
    ))
}

/// `Set-Cookie` that ends the session.
pub fn logout_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// `Set-Cookie` for the CSRF cookie.
pub fn csrf_cookie(gaffer: &Gaffer, value: &str) -> String {
    format!(
        "{CSRF_COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict{}",
        secure(gaffer)
    )
}

/// Where the login form sends a person back to: a path of this site only.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

/// The viewer, or the answer to send instead (the login form, or a refusal).
pub fn viewer(req: &HttpRequest, gaffer: &Gaffer) -> Result<Viewer, Box<HttpResponse>> {
    let token_set =
        match &gaffer.settings.api_token {
            None if !gaffer.settings.binds_loopback() => {
                return Err(Box::new(HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body("the dashboard without GAFFER_API_TOKEN is served on a loopback bind only")));
            }
            None => false,
            Some(token) => {
                let ok = cookie(req, SESSION_COOKIE)
                    .is_some_and(|v| session_valid(token.expose_secret(), &v));
                if !ok {
                    let next = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/ui/");
                    let target = format!("/ui/login?next={}", url_encode(&safe_next(Some(next))));
                    return Err(Box::new(
                        HttpResponse::SeeOther()
                            .insert_header((header::LOCATION, target))
                            .finish(),
                    ));
                }
                true
            }
        };
    let existing = cookie(req, CSRF_COOKIE).filter(|c| c.len() == 64 && hex::decode(c).is_ok());
    let (csrf, new_csrf) = match existing {
        Some(c) => (c, false),
        None => (hex::encode(rand::random::<[u8; 32]>()), true),
    };
    Ok(Viewer {
        csrf,
        new_csrf,
        token_set,
    })
}

/// Checks a button press: a viewer whose form carried the CSRF cookie's value.
pub fn action(req: &HttpRequest, gaffer: &Gaffer, csrf: &str) -> Result<Viewer, Box<HttpResponse>> {
    let viewer = viewer(req, gaffer)?;
    let cookie_ok = !viewer.new_csrf
        && Sha256::digest(viewer.csrf.as_bytes()) == Sha256::digest(csrf.as_bytes());
    if cookie_ok {
        Ok(viewer)
    } else {
        Err(Box::new(HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("this form is stale or came from another site (CSRF check failed): reload the page and try again")))
    }
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_the_token_and_expire() {
        let value = session_value("s3cret");
        assert!(session_valid("s3cret", &value));
        assert!(!session_valid("other", &value));
        assert!(!session_valid("s3cret", "1.00"));
        let expired = format!("{}.{}", 10, mac("s3cret", 10));
        assert!(!session_valid("s3cret", &expired));
        let (expiry, sig) = value.split_once('.').unwrap();
        let later = expiry.parse::<i64>().unwrap() + 1000;
        assert!(!session_valid("s3cret", &format!("{later}.{sig}")));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/ui/runs?x=1")), "/ui/runs?x=1");
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", "ui"] {
            assert_eq!(safe_next(Some(bad)), "/ui/", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/");
    }
}
