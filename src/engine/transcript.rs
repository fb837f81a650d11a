//! What a run did, recorded as it happens: progress lines (shown live by
//! `GET /runs/{id}/events`) and artefacts (every model call with the exact messages and
//! answer, every check run with its full output) for `GET /runs/{id}/transcript`.
//!
//! The run being executed is carried in a task-local, so roles, the model layer and the
//! checks record into it without being handed the engine; outside a run nothing is written.

use serde_json::json;

use crate::store::Store;

/// The run the current task works for.
#[derive(Clone)]
pub struct RunContext {
    pub store: Store,
    pub run_id: i64,
}

tokio::task_local! {
    static CURRENT: RunContext;
}

/// Runs `work` as part of run `ctx` (everything it records lands there).
pub async fn within<F: std::future::Future>(ctx: RunContext, work: F) -> F::Output {
    CURRENT.scope(ctx, work).await
}

/// The run the current task works for, if any.
pub fn current() -> Option<RunContext> {
    CURRENT.try_with(|c| c.clone()).ok()
}

async fn write(kind: &str, body: &str) {
    let Some(ctx) = current() else { return };
    if let Err(e) = ctx.store.add_run_event(ctx.run_id, kind, body).await {
        tracing::warn!(run = ctx.run_id, error = %e, "could not record a run event");
    }
    let _ = ctx.store.touch_run(ctx.run_id, super::now()).await;
}

/// A progress line of the current run.
pub async fn progress(line: impl AsRef<str>) {
    write("progress", line.as_ref()).await;
}

/// The largest output or answer kept per artefact.
const MAX_ARTEFACT_BYTES: usize = 1024 * 1024;

fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_ARTEFACT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One model call: the messages sent, the answer (or the error), tokens and time.
pub async fn model_call(
    role: &str,
    model: &str,
    messages: &[crate::llm::Message],
    reply: Result<&crate::llm::Reply, &crate::llm::LlmError>,
) {
    if current().is_none() {
        return;
    }
    let sent: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| json!({"role": format!("{:?}", m.speaker).to_ascii_lowercase(), "content": bounded(&m.content)}))
        .collect();
    let body = match reply {
        Ok(reply) => json!({"role": role, "model": model, "messages": sent,
            "answer": bounded(&reply.text), "tool_calls": reply.tool_calls, "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens, "total_ms": reply.usage.total_ms}),
        Err(e) => {
            let partial = match e {
                crate::llm::LlmError::CutOff { partial, .. } => bounded(partial).to_string(),
                _ => String::new(),
            };
            json!({"role": role, "model": model, "messages": sent, "error": e.to_string(), "partial_answer": partial})
        }
    };
    write("model_call", &body.to_string()).await;
    progress(format!("{role}: model {model} answered")).await;
}

/// One check phase (set-up, test or lint): the command, how it ended, its full output.
pub async fn check(run: &crate::workspace::checks::PhaseRun, sandboxed: bool) {
    if current().is_none() {
        return;
    }
    let body = json!({"command": run.command, "passed": run.passed, "exit_code": run.exit_code,
        "timed_out": run.timed_out, "sandboxed": sandboxed, "network": run.network,
        "duration_ms": run.duration_ms, "output": bounded(&run.output)});
    write("check", &body.to_string()).await;
    progress(format!(
        "checks `{}` {} in {:.1} s",
        run.command,
        if run.passed { "passed" } else { "failed" },
        run.duration_ms as f64 / 1000.0
    ))
    .await;
}
