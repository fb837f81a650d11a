//! Webhook deliveries as GitHub sends them: signed with the secret, then waited for until
//! gaffer has processed them.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::app::TestApp;

/// `X-Hub-Signature-256` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers `payload` as event `event` with delivery id `id`, signed with `secret`, waits
/// until it was processed and returns the delivery as `GET /deliveries` shows it.
pub async fn deliver(app: &TestApp, secret: &str, event: &str, id: &str, payload: &Value) -> Value {
    let body = serde_json::to_vec(payload).unwrap();
    let response = app
        .client
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{event} {id}");
    for _ in 0..600 {
        let deliveries: Value = app
            .get("/deliveries?limit=1000")
            .await
            .json()
            .await
            .unwrap();
        let found = deliveries
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["id"] == id && d["status"] != "pending")
            .cloned();
        if let Some(d) = found {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} was not processed");
}
