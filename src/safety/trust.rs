//! Who may start a role. One decision, used by every path that can (webhooks, the
//! poller, `/run/*`, the CLI): a pull request is gaffer's own only when its author is the
//! forge identity gaffer acts as (the token's login, `GET /user`); otherwise its author's
//! `author_association` must be one the repo allows. Text in a PR body proves nothing.

use crate::registry::{Repo, DEFAULT_ASSOCIATIONS};

/// Why an author may start a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// gaffer opened it (the author is the token's own login).
    Gaffer,
    /// A person whose association the repo allows.
    Association(String),
}

/// Whether `author` (with `association`, as GitHub reports it) may start a role on
/// `repo`; `Err` is the reason to record when not. `identity` is gaffer's own login on
/// the forge (`None` when it could not be learned: then nobody counts as gaffer).
pub fn may_start_role(
    repo: &Repo,
    identity: Option<&str>,
    author: &str,
    association: Option<&str>,
) -> Result<Trusted, String> {
    if identity.is_some_and(|me| !me.is_empty() && me.eq_ignore_ascii_case(author)) {
        return Ok(Trusted::Gaffer);
    }
    let association = association.unwrap_or("NONE");
    let allowed = match &repo.overrides.allowed_associations {
        Some(list) => list.iter().any(|a| a.eq_ignore_ascii_case(association)),
        None => DEFAULT_ASSOCIATIONS.contains(&association),
    };
    if allowed {
        Ok(Trusted::Association(association.to_string()))
    } else {
        Err(format!(
            "its author {author} is a {association} of the repo, not allowed to trigger roles (allowed: {}; see overrides.allowed_associations)",
            repo.overrides
                .allowed_associations
                .clone()
                .unwrap_or_else(|| DEFAULT_ASSOCIATIONS.iter().map(|s| s.to_string()).collect())
                .join(", ")
        ))
    }
}
