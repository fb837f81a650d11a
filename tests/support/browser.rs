//! A real headless Chromium driven over WebDriver (chromedriver + fantoccini), for the
//! dashboard tests. Without Chromium or chromedriver the tests fail, saying how to install
//! them; they never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tempfile::TempDir;

const INSTALL: &str = "the dashboard tests drive a real Chromium: install it with \
`apt-get install -y chromium chromium-driver` (Debian; `.ci/run` does this), or point \
GAFFER_TEST_CHROMIUM and GAFFER_TEST_CHROMEDRIVER at the binaries";

/// A binary from an environment variable, or the first of `names` on the PATH.
fn find(var: &str, names: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{var}={} is not a file: {INSTALL}",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{} not found: {INSTALL}", names[0]);
}

/// One browser session with its own chromedriver and empty profile.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `target/screenshots/` (or under `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium behind it.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// [`Browser::start`] with more Chromium flags (e.g. `--force-dark-mode`).
    pub async fn start_with(extra: &[&str]) -> Browser {
        let chromium = find("GAFFER_TEST_CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = find("GAFFER_TEST_CHROMEDRIVER", &["chromedriver"]);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}: {INSTALL}", chromedriver.display()));
        let profile = TempDir::new().unwrap();
        let mut browser_args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1000".into(),
        ];
        browser_args.push(format!("--user-data-dir={}", profile.path().display()));
        browser_args.extend(extra.iter().map(|a| a.to_string()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": browser_args},
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            // chromedriver listens on loopback, plain HTTP: no TLS stack needed.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "no WebDriver session from {}: {e}: {INSTALL}",
                    chromedriver.display()
                ),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap(),
            Err(e) => panic!("no {css} on {}: {e}", self.url().await),
        }
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits until the text of `css` contains `wanted` (re-finding it each time, so a
    /// reload in between is fine); returns that text.
    pub async fn wait_text(&self, css: &str, wanted: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if text.contains(wanted) {
                        return text;
                    }
                    if Instant::now() > deadline {
                        panic!("{css} never showed {wanted:?}; it shows:\n{text}");
                    }
                }
            }
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("{css} never appeared on {}:\n{source}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` returns true (re-run each 100 ms, across reloads).
    pub async fn wait_js(&self, script: &str, what: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(v) = self.client.execute(script, vec![]).await {
                if v == Value::Bool(true) {
                    return;
                }
            }
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("never {what} on {}:\n{source}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} to click: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Saves a PNG of the window as `target/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Every URL the page fetched (navigation and resources) and every asset, frame or
    /// form it names, that is not on `origin`. Links marked `rel=external` (a PR on
    /// GitHub) are for a person to follow, not fetched, and are left out.
    pub async fn foreign_urls(&self, origin: &str) -> Vec<String> {
        let script = format!(
            r#"var origin = {origin:?}; var bad = [];
            function check(what, url) {{
              if (!url || url.indexOf("data:") === 0 || url.indexOf("about:") === 0) return;
              if (url !== origin && url.indexOf(origin + "/") !== 0) bad.push(what + " " + url);
            }}
            check("page", location.href);
            performance.getEntriesByType("resource").forEach(function (e) {{ check("fetched", e.name); }});
            document.querySelectorAll("script[src],img[src],iframe[src],source[src],video[src],audio[src],embed[src]").forEach(function (e) {{ check(e.tagName, e.src); }});
            document.querySelectorAll("link[href]").forEach(function (e) {{ check("link", e.href); }});
            document.querySelectorAll("form").forEach(function (e) {{ check("form", e.action); }});
            document.querySelectorAll("a[href]").forEach(function (e) {{ if (!e.relList.contains("external")) check("a", e.href); }});
            return bad;"#
        );
        serde_json::from_value(self.js(&script).await).unwrap()
    }

    pub async fn close(self) {
        let client = self.client.clone();
        client.close().await.unwrap();
    }
}
