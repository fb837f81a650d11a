//! Serves recorded GitHub responses (`tests/fixtures/github/rest/`) in order, to see
//! how the real client handles GitHub's own answers, not only the fake's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

/// `(method, uri, if-none-match)` of a request the replay received.
pub type SeenRequest = (String, String, Option<String>);

/// A server answering with recorded responses, and the requests it received.
pub struct Replay {
    pub url: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

pub fn fixture(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github/rest")
        .join(relative);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

impl Replay {
    /// Serves the responses of the interactions `from..` of a fixture, one per request,
    /// whatever the request (the client's reaction is what is under test).
    pub async fn start(relative: &str, from: usize) -> Replay {
        let doc = fixture(relative);
        let responses: Vec<Value> = doc["interactions"].as_array().unwrap()[from..]
            .iter()
            .map(|i| i["response"].clone())
            .collect();
        let queue = Arc::new(Mutex::new(
            responses
                .into_iter()
                .collect::<std::collections::VecDeque<_>>(),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (q, s) = (Arc::clone(&queue), Arc::clone(&seen));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let (q, s) = (Arc::clone(&q), Arc::clone(&s));
            App::new().default_service(web::to(move |req: HttpRequest| {
                let (q, s) = (Arc::clone(&q), Arc::clone(&s));
                async move {
                    s.lock().unwrap().push((
                        req.method().to_string(),
                        req.uri().to_string(),
                        req.headers()
                            .get("if-none-match")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    ));
                    let Some(recorded) = q.lock().unwrap().pop_front() else {
                        return HttpResponse::InternalServerError().body("replay exhausted");
                    };
                    let status = actix_web::http::StatusCode::from_u16(
                        recorded["status"].as_u64().unwrap() as u16,
                    )
                    .unwrap();
                    let mut response = HttpResponse::build(status);
                    for (name, value) in recorded["headers"].as_object().unwrap() {
                        let lower = name.to_ascii_lowercase();
                        if [
                            "content-length",
                            "transfer-encoding",
                            "content-encoding",
                            "connection",
                        ]
                        .contains(&lower.as_str())
                        {
                            continue;
                        }
                        if let Some(v) = value.as_str() {
                            response.insert_header((lower, v.to_string()));
                        }
                    }
                    match &recorded["body"] {
                        Value::Null => response.finish(),
                        Value::String(text) => response.body(text.clone()),
                        other => response.body(serde_json::to_vec(other).unwrap()),
                    }
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Replay {
            url: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    /// `(method, uri, if-none-match)` of each request received.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}
