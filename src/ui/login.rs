//! The login form (only when `GAFFER_API_TOKEN` is set): the token once, then a session
//! cookie; and logging out.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, DOCTYPE};
use serde::Deserialize;

use super::auth;
use super::layout;
use crate::Gaffer;

#[derive(Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub token: String,
    pub next: Option<String>,
}

fn login_page(status: StatusCode, next: &str, problem: Option<&str>) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "Log in · gaffer" }
                link rel="stylesheet" href="/ui/assets/app.css";
                link rel="icon" href="data:,";
            }
            body { main {
                h1 { "Log in to gaffer" }
                p { "This gaffer has an API token (" code { "GAFFER_API_TOKEN" } "): enter it to see the dashboard." }
                @if let Some(problem) = problem { p.message role="alert" { (problem) } }
                form.login method="post" action="/ui/login" {
                    label for="token" { "API token" }
                    input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                    input type="hidden" name="next" value=(next);
                    button type="submit" { "Log in" }
                }
            } }
        }
    };
    layout::respond(status).body(markup.into_string())
}

/// `GET /ui/login`.
pub async fn form(gaffer: web::Data<Gaffer>, query: web::Query<NextQuery>) -> HttpResponse {
    let next = auth::safe_next(query.next.as_deref());
    if gaffer.settings.api_token.is_none() {
        return layout::see_other(&next);
    }
    login_page(StatusCode::OK, &next, None)
}

/// `POST /ui/login`: the token right, a session cookie and back to where the person was.
pub async fn submit(gaffer: web::Data<Gaffer>, form: web::Form<LoginForm>) -> HttpResponse {
    let next = auth::safe_next(form.next.as_deref());
    if !auth::is_token(&gaffer, &form.token) {
        tracing::warn!("dashboard login with a wrong token");
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That is not this gaffer's API token."),
        );
    }
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, next));
    if let Some(cookie) = auth::session_cookie(&gaffer) {
        response.append_header((header::SET_COOKIE, cookie));
    }
    response.finish()
}

/// `POST /ui/logout`.
pub async fn logout(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    form: web::Form<super::CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = auth::action(&req, &gaffer, &form.csrf) {
        return *refused;
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/login"))
        .append_header((header::SET_COOKIE, auth::logout_cookie()))
        .finish()
}
