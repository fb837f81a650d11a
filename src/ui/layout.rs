//! The page shell every dashboard page shares: navigation, the stylesheet and script
//! (both in the binary, served from `/ui/assets/`), and the headers that keep the pages
//! from loading anything from elsewhere (a `Content-Security-Policy` of `'self'`).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

use super::auth::{self, Viewer};
use crate::Gaffer;

/// The stylesheet: light and dark (prefers-color-scheme), narrow screens first.
pub const CSS: &str = include_str!("assets/app.css");
/// The script: live updates through `EventSource`; every page reads fine without it.
pub const JS: &str = include_str!("assets/app.js");

/// Nothing from another origin, no inline script, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const NAV: &[(&str, &str)] = &[
    ("/ui/", "Repos"),
    ("/ui/runs", "Runs"),
    ("/ui/models", "Models"),
    ("/ui/health", "Deliveries & health"),
    ("/docs/", "API docs"),
];

/// A whole page, with the CSRF cookie when it is new.
pub fn page(
    gaffer: &Gaffer,
    viewer: &Viewer,
    title: &str,
    active: &str,
    body: Markup,
) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · gaffer" }
                link rel="stylesheet" href="/ui/assets/app.css";
                link rel="icon" href="data:,";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/" { "gaffer" }
                    nav aria-label="main" {
                        @for (href, label) in NAV {
                            a href=(href) aria-current=[(*href == active).then_some("page")] { (label) }
                        }
                    }
                    @if viewer.token_set {
                        form.logout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    let mut response = respond(StatusCode::OK);
    if viewer.new_csrf {
        response.append_header((header::SET_COOKIE, auth::csrf_cookie(gaffer, &viewer.csrf)));
    }
    response.body(markup.into_string())
}

/// A response builder with the dashboard's headers.
pub fn respond(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// A small page saying what went wrong (an action refused, a run not found).
pub fn message(status: StatusCode, title: &str, text: &str, back: &str) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · gaffer" }
                link rel="stylesheet" href="/ui/assets/app.css";
                link rel="icon" href="data:,";
            }
            body { main {
                h1 { (title) }
                p.message role="alert" { (text) }
                p { a href=(back) { "Back" } }
            } }
        }
    };
    respond(status).body(markup.into_string())
}

/// The page for an error from a service.
pub fn error(err: &crate::error::AppError, back: &str) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(err);
    message(status, "That did not work", &err.to_string(), back)
}

/// `303 See Other` to `to` (after a button press).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// The static assets.
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let (body, kind) = match req.match_info().get("file") {
        Some("app.css") => (CSS, "text/css; charset=utf-8"),
        Some("app.js") => (JS, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(body)
}

/// A time as stored (`2026-12-01T14:03:07Z`), shorter to read; "—" when absent.
pub fn when(at: Option<&str>) -> String {
    match at {
        Some(at) if !at.is_empty() => at.replacen('T', " ", 1).trim_end_matches('Z').to_string(),
        _ => "—".to_string(),
    }
}
