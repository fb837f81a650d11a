//! The dashboard, driven in a real headless Chromium against a seeded instance: every page
//! read as a person sees it, a run followed live to its end, the buttons used, screenshots
//! saved (`target/screenshots/`), and nothing fetched from outside gaffer. The login, its
//! cookie and the CSRF checks are also probed with a plain HTTP client.

use std::process::Command;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::app::{
    client_builder, fake_with_app, gaffer_bin, sample_target, spawn_app_with, TestApp,
};
use crate::support::browser::Browser;
use crate::support::fake_github::FakeGithub;
use crate::support::ollama;

const REPO: &str = "acme/tally";
const SECRET: &str = "dashboard-secret";
const GOOD_EDIT: &str = ollama::JSON_FLAG_WITH_TEST;

fn task(id: &str, title: &str, deps: &[&str]) -> String {
    let deps = deps.join(", ");
    format!("---\nid: {id}\ntitle: {title}\ntype: feature\npriority: P1\ndepends_on: [{deps}]\nstatus: queued\nacceptance:\n  - it works\n---\n# {title}\n")
}

async fn deliver(app: &TestApp, id: &str, payload: &Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let response = app
        .client
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn delivery_status(app: &TestApp, id: &str) -> String {
    let list: Value = app.get("/deliveries?limit=100").await.json().await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .map(|d| d["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn wait_delivery(app: &TestApp, id: &str, status: &str) {
    for _ in 0..300 {
        if delivery_status(app, id).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} never became {status}");
}

/// Loads `path`, checks nothing on it points outside gaffer, saves a screenshot.
async fn visit(browser: &Browser, app: &TestApp, path: &str, shot: &str) {
    browser.goto(&app.url(path)).await;
    let foreign = browser.foreign_urls(&app.address).await;
    assert!(
        foreign.is_empty(),
        "{path} reaches outside gaffer: {foreign:?}"
    );
    browser.screenshot(shot).await;
}

/// A repo with two tasks (one depending on the other), a Developer model answering after
/// a pause long enough to watch, a webhook secret, and deliveries dead-lettered at once.
async fn seeded() -> (FakeGithub, TestApp, wiremock::MockServer) {
    let model = ollama::slowly(GOOD_EDIT, Duration::from_secs(3)).await;
    let uri = model.uri();
    let (fake, app) = fake_with_app(
        REPO,
        "pr",
        Some(&sample_target()),
        &[
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_DEVELOPER_MODEL", "tiny:1b"),
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("GITHUB_BACKOFF_MS", "5"),
            ("WEBHOOK_RETRY_ATTEMPTS", "1"),
        ],
    )
    .await;
    fake.commit(
        REPO,
        "main",
        &[
            (
                "tasks/T-0001-json.md",
                &task("T-0001", "Add a json flag", &[]),
            ),
            (
                "tasks/T-0002-csv.md",
                &task("T-0002", "Add a csv flag", &["T-0001"]),
            ),
        ],
        "tasks",
    );
    let scan = app.post("/repos/acme/tally/scan").await;
    assert_eq!(scan.status(), 200);
    (fake, app, model)
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser_shows_the_crew_and_its_buttons_work() {
    let (fake, app, _model) = seeded().await;
    let browser = Browser::start().await;

    // Repos: mode, next step and why, paused or not.
    visit(&browser, &app, "/", "repos").await;
    assert!(
        browser.url().await.ends_with("/ui/"),
        "/ goes to the dashboard"
    );
    let card = browser.text("section.card[data-repo='acme/tally']").await;
    for wanted in [
        "acme/tally",
        "pr",
        "developer T-0001",
        "running freely",
        "never polled",
    ] {
        assert!(card.contains(wanted), "{wanted:?} in:\n{card}");
    }

    // Tasks board: by status, with dependencies.
    visit(&browser, &app, "/ui/repos/acme/tally/tasks", "tasks").await;
    let queued = browser.text(".board section[aria-label='queued']").await;
    assert!(queued.contains("T-0001 Add a json flag"), "{queued}");
    let dependent = browser.text("li#T-0002").await;
    assert!(
        dependent.contains("depends on: T-0001 (queued)"),
        "{dependent}"
    );

    // An action: work next, then the run's page follows the run live to its end.
    browser.goto(&app.url("/ui/")).await;
    browser
        .click("section.card[data-repo='acme/tally'] form[action$='/work-next'] button")
        .await;
    let run_url = browser.url().await;
    if !run_url.contains("/ui/runs/") {
        panic!(
            "work next opens its run, not {run_url}:\n{}",
            browser.text("body").await
        );
    }
    browser.js("window.gafferMarker = 'not reloaded';").await;
    // The model answers after 3 s, so its step is not on the page as served: when it shows
    // while this page stays loaded (the marker survives), it came through the live stream.
    let served = browser.text("#steps").await;
    assert!(!served.contains("answered"), "{served}");
    browser
        .wait_text("#steps", "developer: model tiny:1b answered", 60)
        .await;
    let live = browser.js("return window.gafferMarker || null;").await;
    assert_eq!(live, json!("not reloaded"), "the step arrived live");
    browser
        .wait_js(
            "return document.querySelector('#steps:not([data-live])') !== null;",
            "the finished run's page",
            60,
        )
        .await;
    assert_eq!(browser.text("#run-state").await, "succeeded");
    let page = browser.text("main").await;
    for wanted in [
        "started developer",
        "checks `",
        "call 1: developer · tiny:1b",
        "pull request",
        "#1",
    ] {
        assert!(page.contains(wanted), "{wanted:?} on the run page:\n{page}");
    }
    let checks = browser.text("details.check summary").await;
    assert!(checks.contains("passed"), "{checks}");
    // The transcript is collapsed; opened, it holds the model's answer.
    let open = browser
        .js("return document.querySelector('details.call').open;")
        .await;
    assert_eq!(open, json!(false));
    browser.click("details.call > summary").await;
    browser
        .click("details.call details:last-of-type > summary")
        .await;
    let call = browser.text("details.call").await;
    assert!(call.contains("--json"), "{call}");
    let foreign = browser.foreign_urls(&app.address).await;
    assert!(foreign.is_empty(), "{foreign:?}");
    browser.screenshot("run").await;

    // Runs: the list updates live while it is open.
    visit(&browser, &app, "/ui/runs", "runs").await;
    browser.js("window.gafferMarker = 'list';").await;
    let before = browser.text("#runs-body").await;
    assert!(before.contains("succeeded"), "{before}");
    let queued: Value = app
        .post("/run/reviewer?repo=acme/tally&pr=1&wait=false")
        .await
        .json()
        .await
        .unwrap();
    let reviewer = queued["run"]["id"].as_i64().unwrap();
    browser
        .wait_text(
            &format!("#runs-body tr[data-run='{reviewer}']"),
            "reviewer",
            30,
        )
        .await;
    assert_eq!(
        browser.js("return window.gafferMarker;").await,
        json!("list")
    );
    browser
        .wait_text(
            &format!("#runs-body tr[data-run='{reviewer}']"),
            "succeeded",
            60,
        )
        .await;

    // Merged by the human: the Integrator records it, and the Models page counts it.
    fake.merge(REPO, 1).unwrap();
    let integrated = app.post("/run/integrator?repo=acme/tally&pr=1").await;
    assert_eq!(integrated.status(), 200);
    visit(&browser, &app, "/ui/models", "models").await;
    let table = browser.text("table.models").await;
    assert!(table.contains("tiny:1b"), "{table}");
    let row: Value = browser
        .js("return Array.from(document.querySelectorAll('table.models')[0].rows).map(r => Array.from(r.cells).map(c => c.textContent));")
        .await;
    let header: Vec<String> = serde_json::from_value(row[0].clone()).unwrap();
    let model_row: Vec<String> = row
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value::<Vec<String>>(r.clone()).unwrap())
        .find(|r| r[0] == "tiny:1b")
        .expect("a row for tiny:1b");
    let figure = |label: &str| {
        let i = header
            .iter()
            .position(|h| h == label)
            .unwrap_or_else(|| panic!("no {label} column: {header:?}"));
        model_row[i].clone()
    };
    assert_eq!(figure("model calls"), "1");
    assert_eq!(figure("developer runs"), "1");
    assert_eq!(figure("PRs opened"), "1");
    assert_eq!(figure("merged"), "1");
    assert_eq!(figure("well-formed %"), "100%");
    let chart = browser
        .js("return document.querySelector('svg.chart title').textContent;")
        .await;
    assert!(
        chart
            .as_str()
            .unwrap()
            .contains("developer runs, PRs opened, merged"),
        "{chart}"
    );

    // Deliveries & health: a dead letter, retried with its button.
    fake.outage(Duration::from_secs(60));
    let pr = fake
        .pulls(REPO)
        .into_iter()
        .find(|p| p["number"] == 1)
        .unwrap();
    let payload = json!({"action": "synchronize", "repository": {"full_name": REPO},
        "pull_request": {"number": 1, "head": {"ref": pr["head"]["ref"], "sha": pr["head"]["sha"]},
                         "author_association": "OWNER", "body": pr["body"], "merged": false}});
    deliver(&app, "dash-1", &payload).await;
    wait_delivery(&app, "dash-1", "dead").await;
    fake.outage(Duration::ZERO);
    visit(&browser, &app, "/ui/health", "health").await;
    let doctor = browser.text("table.checks").await;
    assert!(doctor.contains("database"), "{doctor}");
    let letter = browser
        .text("#dead-letters tr[data-delivery='dash-1']")
        .await;
    assert!(letter.contains("dead"), "{letter}");
    browser
        .click("#dead-letters tr[data-delivery='dash-1'] button")
        .await;
    assert!(browser.url().await.ends_with("/ui/health"));
    wait_delivery(&app, "dash-1", "done").await;
    browser.goto(&app.url("/ui/health")).await;
    let dead = browser.text("#dead-letters").await;
    assert!(!dead.contains("dash-1"), "{dead}");

    // The buttons on the Repos page: pause, resume, mode.
    browser.goto(&app.url("/ui/")).await;
    browser
        .click("section.card[data-repo='acme/tally'] form[action$='/pause'] button")
        .await;
    browser
        .wait_text("section.card[data-repo='acme/tally']", "paused", 10)
        .await;
    browser
        .click("section.card[data-repo='acme/tally'] form[action$='/resume'] button")
        .await;
    browser
        .wait_text("section.card[data-repo='acme/tally']", "running freely", 10)
        .await;
    browser
        .js("document.querySelector(\"section.card[data-repo='acme/tally'] select[name=mode]\").value = 'observe';")
        .await;
    browser
        .click("section.card[data-repo='acme/tally'] form[action$='/mode'] button")
        .await;
    browser
        .wait_js(
            "return document.querySelector(\"section.card[data-repo='acme/tally'] dd .badge\").textContent === 'observe';",
            "the new mode",
            10,
        )
        .await;
    let repo: Value = app.get("/repos/acme/tally").await.json().await.unwrap();
    assert_eq!(repo["mode"], "observe");

    visit(&browser, &app, "/ui/", "repos-after").await;
    let card = browser.text("section.card[data-repo='acme/tally']").await;
    for wanted in [
        "#2 T-0001: done (integrate, T-0001)",
        "pull_request.synchronize done",
    ] {
        assert!(card.contains(wanted), "{wanted:?} in:\n{card}");
    }

    // /docs: the vendored Swagger UI, offline, describing the API.
    visit(&browser, &app, "/docs", "docs-pending").await;
    browser.wait_text("body", "/stats/models", 30).await;
    let foreign = browser.foreign_urls(&app.address).await;
    assert!(
        foreign.is_empty(),
        "/docs reaches outside gaffer: {foreign:?}"
    );
    browser.screenshot("docs").await;

    // Readable on a phone: no sideways scrolling.
    browser.client.set_window_size(390, 844).await.unwrap();
    for (path, shot) in [
        ("/ui/runs/1", "run-phone"),
        ("/ui/runs", "runs-phone"),
        ("/ui/models", "models-phone"),
        ("/ui/health", "health-phone"),
        ("/ui/repos/acme/tally/tasks", "tasks-phone"),
        ("/ui/", "repos-phone"),
    ] {
        visit(&browser, &app, path, shot).await;
        let fits = browser
            .js("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
            .await;
        assert_eq!(fits, json!(true), "{path} fits a phone's width");
    }
    let light = browser
        .js("return getComputedStyle(document.body).backgroundColor;")
        .await;
    assert_eq!(light, json!("rgb(251, 251, 250)"));
    browser.close().await;

    // Dark mode follows the system's preference.
    let dark = Browser::start_with(&["--force-dark-mode"]).await;
    visit(&dark, &app, "/ui/runs", "runs-dark").await;
    let background = dark
        .js("return getComputedStyle(document.body).backgroundColor;")
        .await;
    assert_eq!(background, json!("rgb(21, 22, 24)"), "dark background");
    dark.close().await;

    // The same figures as JSON and from the CLI.
    let stats: Value = app.get("/stats/models").await.json().await.unwrap();
    let overall = stats["overall"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "tiny:1b")
        .unwrap();
    assert_eq!(overall["merged"], 1, "{stats:#}");
    assert_eq!(stats["repos"][0]["repo"], "acme/tally");
    assert_eq!(stats["repos"][0]["models"][0]["calls"], 1, "{stats:#}");
    assert!(
        overall.get("review_verdicts").is_none(),
        "no figure without a record"
    );
    let out = Command::new(gaffer_bin())
        .args(["stats", "--repo", "acme/tally"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GAFFER_DATA_DIR", app.data_dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("acme/tally") && text.contains("tiny:1b"),
        "{text}"
    );
    assert!(text.contains("MERGED"), "{text}");
}

#[tokio::test]
async fn with_a_token_the_pages_need_a_login_and_forms_need_their_csrf_token() {
    let token = "dash-token-1234567890";
    let app = spawn_app_with(&[("GAFFER_API_TOKEN", token)]).await;
    let added = app
        .client
        .post(app.url("/repos"))
        .bearer_auth(token)
        .json(&json!({"full_name": "acme/locked", "mode": "observe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);

    let browser = Browser::start().await;
    visit(&browser, &app, "/ui/runs", "login").await;
    assert!(browser.url().await.contains("/ui/login?next=/ui/runs"));
    let form = browser.text("main").await;
    assert!(form.contains("Log in to gaffer"), "{form}");
    browser
        .js("document.getElementById('token').value = 'wrong';")
        .await;
    browser.click("form.login button").await;
    browser
        .wait_text("main", "That is not this gaffer's API token.", 10)
        .await;
    browser
        .js(&format!(
            "document.getElementById('token').value = {token:?};"
        ))
        .await;
    browser.click("form.login button").await;
    browser.wait_text("h1", "Runs", 10).await;
    assert!(browser.url().await.ends_with("/ui/runs"));
    // HttpOnly: the page's script cannot read the session.
    let cookies = browser.js("return document.cookie;").await;
    assert_eq!(cookies, json!(""), "no cookie readable from script");
    // A button works once logged in.
    browser.goto(&app.url("/ui/")).await;
    browser
        .click("section.card[data-repo='acme/locked'] form[action$='/pause'] button")
        .await;
    browser
        .wait_text("section.card[data-repo='acme/locked']", "paused", 10)
        .await;
    // A paused repo's run waits: cancelled, then retried, from its page.
    let queued: Value = app
        .client
        .post(app.url("/run/taskmaster?repo=acme/locked&wait=false"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let waiting = queued["run"]["id"].as_i64().unwrap();
    browser.goto(&app.url(&format!("/ui/runs/{waiting}"))).await;
    assert_eq!(browser.text("#run-state").await, "paused");
    browser.click("form[action$='/cancel'] button").await;
    browser.wait_text("#run-state", "cancelled", 10).await;
    browser.click("form[action$='/retry'] button").await;
    browser
        .wait_text("main", &format!("retry of #{waiting}"), 10)
        .await;
    assert_eq!(browser.text("#run-state").await, "paused");
    browser.click("form.logout button").await;
    browser.wait_text("main", "Log in to gaffer", 10).await;
    browser.close().await;

    // The same rules over plain HTTP.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let anonymous = bare.get(app.url("/ui/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    let login = bare
        .post(app.url("/ui/login"))
        .form(&[("token", token), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    assert_eq!(
        login.headers()["location"],
        "/ui/",
        "next stays on this site"
    );
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let session = set_cookie.split(';').next().unwrap().to_string();
    let page = bare
        .get(app.url("/ui/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    let csrf = csrf_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("gaffer_csrf=")
        .to_string();
    let both = format!("{session}; gaffer_csrf={csrf}");
    let press = |csrf_field: &str, origin: Option<&str>| {
        let mut request = bare
            .post(app.url("/ui/repos/acme/locked/resume"))
            .header("cookie", &both)
            .form(&[("csrf", csrf_field.to_string())]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(press("forged", None).await.unwrap().status(), 403);
    assert_eq!(
        press(&csrf, Some("http://evil.example"))
            .await
            .unwrap()
            .status(),
        403
    );
    let ok = press(&csrf, Some(&app.address)).await.unwrap();
    assert_eq!(ok.status(), 303);
    let status: Value = app.get("/repos/acme/locked").await.json().await.unwrap();
    assert_eq!(status["full_name"], "acme/locked");
    // The JSON API keeps its own rules: a session cookie is no API token.
    let api = client_builder()
        .build()
        .unwrap()
        .post(app.url("/repos/acme/locked/pause"))
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    // A session signed with another token is no session.
    let forged = bare
        .get(app.url("/ui/"))
        .header("cookie", "gaffer_session=9999999999.00ff")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 303);
}
