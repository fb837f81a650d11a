//! Log set-up through `tracing`: human-readable lines by default, JSON with
//! `GAFFER_LOG_FORMAT=json`. Secrets are held in `secrecy` types, whose Debug output is
//! redacted, so no log line can carry a token.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber; logs go to stderr so CLI output on stdout stays clean.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests spawning several apps) keeps the first subscriber.
    let _ = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
