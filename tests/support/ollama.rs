//! A scripted Ollama (wiremock) for tests that need exact model answers.

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An NDJSON stream as Ollama sends it: one chunk per piece, then the final chunk.
pub fn ndjson(pieces: &[&str], eval_count: u64) -> String {
    let mut lines: Vec<String> = pieces
        .iter()
        .map(|p| {
            json!({"model": "tiny:1b", "created_at": "2026-01-01T00:00:00Z",
                   "message": {"role": "assistant", "content": p}, "done": false})
            .to_string()
        })
        .collect();
    lines.push(
        json!({"model": "tiny:1b", "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
            "total_duration": 1_500_000_000u64, "load_duration": 100_000_000u64,
            "prompt_eval_count": 42, "prompt_eval_duration": 200_000_000u64,
            "eval_count": eval_count, "eval_duration": 1_000_000_000u64})
        .to_string(),
    );
    lines.join("\n") + "\n"
}

/// A Developer reply (text protocol) that adds a `--json` flag and a test that fails
/// without it: a change with a fail-to-pass proof, on the sample target.
pub const JSON_FLAG_WITH_TEST: &str = "src/app.py\n<<<<<<< SEARCH\n    parser.add_argument(\"--version\", action=\"version\", version=f\"tally {__version__}\")\n=======\n    parser.add_argument(\"--version\", action=\"version\", version=f\"tally {__version__}\")\n    parser.add_argument(\"--json\", action=\"store_true\", help=\"print JSON\")\n>>>>>>> REPLACE\n\ntests/test_json.py\n<<<<<<< SEARCH\n=======\nimport sys\nimport unittest\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n\nfrom src.app import build_parser  # noqa: E402\n\n\nclass JsonFlagTest(unittest.TestCase):\n    def test_flag_parses(self):\n        self.assertTrue(build_parser().parse_args([\"--json\"]).json)\n>>>>>>> REPLACE\n";

/// A chat answer made of `pieces`.
pub fn answer(pieces: &[&str], eval_count: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(ndjson(pieces, eval_count), "application/x-ndjson")
}

/// A model server that answers every chat with `text`.
pub async fn always(text: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&[text], 10))
        .mount(&server)
        .await;
    server
}

/// The text of the last user message of each chat request the server received.
pub async fn last_user_messages(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/api/chat")
        .filter_map(|r| r.body_json::<serde_json::Value>().ok())
        .map(|body| {
            body["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// A model server that answers every chat with `text`, each answer taking `delay`.
pub async fn slowly(text: &str, delay: std::time::Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&[text], 10).set_delay(delay))
        .mount(&server)
        .await;
    server
}

/// A model server that answers the n-th chat with `replies[n]`, and every later chat with
/// the last reply (a scripted model for multi-step runs).
pub async fn in_turn(replies: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    for (i, reply) in replies.iter().enumerate() {
        let mock = Mock::given(method("POST"))
            .and(path("/api/chat"))
            .respond_with(answer(&[reply], 10));
        let mock = if i + 1 < replies.len() {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(&server).await;
    }
    server
}

/// A model server whose `/api/show` says the model calls tools, and whose chats answer
/// with the given native tool calls in turn (`(name, arguments)` per reply; the last
/// repeats).
pub async fn tool_caller(turns: &[Vec<(&str, serde_json::Value)>]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/show"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "modelfile": "", "parameters": "", "template": "", "details": {},
            "model_info": {}, "capabilities": ["completion", "tools"]
        })))
        .mount(&server)
        .await;
    for (i, calls) in turns.iter().enumerate() {
        let tool_calls: Vec<serde_json::Value> = calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect();
        let body = [
            json!({"model": "tiny:1b", "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": "", "tool_calls": tool_calls}, "done": false})
            .to_string(),
            json!({"model": "tiny:1b", "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
                "total_duration": 1_000_000u64, "load_duration": 0u64, "prompt_eval_count": 42,
                "prompt_eval_duration": 1_000u64, "eval_count": 10, "eval_duration": 1_000u64})
            .to_string(),
        ]
        .join("\n")
            + "\n";
        let mock = Mock::given(method("POST"))
            .and(path("/api/chat"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson"));
        let mock = if i + 1 < turns.len() {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(&server).await;
    }
    server
}
