//! Safety: the decisions that keep text written by strangers (target-repo files, PR and
//! issue text, webhook payloads, model output) from running outside the sandbox, reaching
//! the token, or steering a role. Each decision has one home here and every caller uses it:
//!
//! - [`paths`]: the one path guard for every read and write inside a clone;
//! - [`git`]: git hygiene for every git process (no hooks, no user config, no env);
//! - [`sandbox`]: how repo code runs (bubblewrap profile, or an explicit opt-out);
//! - [`trust`]: who may start a role;
//! - [`redact`]: secrets removed from any text gaffer shows or stores.

pub mod git;
pub mod paths;
pub mod sandbox;
pub mod trust;

use secrecy::{ExposeSecret, SecretString};

/// Replaces every occurrence of each secret in `text` with `<redacted>` (check output
/// and error text can echo what a process found in its environment or files).
pub fn redact(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        let value = secret.expose_secret();
        if value.len() >= 4 {
            out = out.replace(value, "<redacted>");
        }
    }
    out
}
