//! What the GitHub token may do on one repo, against what gaffer needs there, so
//! `gaffer doctor` can name a missing permission before the first PR fails on it.
//!
//! Classic tokens say their scopes in `X-OAuth-Scopes`; fine-grained tokens say nothing about
//! themselves, so each permission is probed with a call that needs it and changes nothing:
//! reads for Pull requests, Commit statuses and Checks, and for Pull requests write an
//! invalid `POST /pulls` (GitHub answers 403 without the permission, 422 with it; nothing is
//! created). The Workflows permission cannot be probed without pushing, so it is reported
//! as unverified.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::GithubForge;
use crate::forge::{ForgeError, ForgeResult};
use crate::registry::FullName;

/// Which kind of token GitHub saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A classic personal access token (or OAuth token) with these scopes.
    Classic { scopes: Vec<String> },
    /// A fine-grained personal access token (or an app token): no `X-OAuth-Scopes`.
    FineGrained,
}

/// The verdict on one repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub kind: TokenKind,
    /// What the token has that gaffer uses, in the words of GitHub's token settings page.
    pub granted: Vec<String>,
    /// What gaffer needs and the token lacks, in the same words.
    pub missing: Vec<String>,
    /// What gaffer needs and GitHub offers no way to check without a real write.
    pub unverified: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RepoPermissions {
    #[serde(default)]
    private: bool,
    default_branch: Option<String>,
    permissions: Option<Permissions>,
}

#[derive(Debug, Default, Deserialize)]
struct Permissions {
    #[serde(default)]
    push: bool,
    #[serde(default)]
    pull: bool,
}

/// The classic scopes a repo needs: `repo` (or `public_repo` on a public repo) to write,
/// `workflow` because the CI bootstrap PR adds `.github/workflows/ci.yml`.
pub fn missing_classic_scopes(scopes: &[String], private: bool, writes: bool) -> Vec<String> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut missing = Vec::new();
    let public_write_ok = writes && !private && has("public_repo");
    if (private || writes) && !has("repo") && !public_write_ok {
        missing.push(if private {
            "classic scope `repo`".to_string()
        } else {
            "classic scope `repo` (or `public_repo`)".to_string()
        });
    }
    if writes && !has("workflow") {
        missing.push(
            "classic scope `workflow` (the bootstrap PR adds .github/workflows/ci.yml)".into(),
        );
    }
    missing
}

/// Parses `X-OAuth-Scopes` ("repo, workflow").
pub fn parse_scopes(header: &str) -> Vec<String> {
    header
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks the token against what `repo` needs: read access in `observe` mode, and with
/// `writes` (pr mode) everything the roles use to open PRs. `probe_writes` allows the one
/// write-shaped probe (the invalid `POST /pulls`); without it (`/health`, which monitoring
/// may call often and which must not spend the write budget) that permission is reported
/// as unverified.
pub async fn check(
    forge: &GithubForge,
    repo: &FullName,
    writes: bool,
    probe_writes: bool,
) -> ForgeResult<Access> {
    let client = forge.client();
    let response = client
        .send(Method::GET, forge.repo_url(repo, &[]), None)
        .await
        .map_err(|e| e.for_repo(repo))?;
    let info: RepoPermissions =
        serde_json::from_slice(&response.body).map_err(|e| ForgeError::Protocol {
            message: format!("cannot parse the repository: {e}"),
        })?;
    let permissions = info.permissions.unwrap_or_default();
    let mut access = Access {
        kind: TokenKind::FineGrained,
        granted: Vec::new(),
        missing: Vec::new(),
        unverified: Vec::new(),
    };
    if writes && !permissions.push {
        access.missing.push(
            "push access to the repo (Contents: Read and write; for a classic token, the user must have write access)".into(),
        );
    } else if permissions.push {
        access
            .granted
            .push("push access (Contents: Read and write)".into());
    } else if permissions.pull {
        access.granted.push("read access (Contents: Read)".into());
    }
    if let Some(header) = &response.oauth_scopes {
        let scopes = parse_scopes(header);
        access
            .missing
            .extend(missing_classic_scopes(&scopes, info.private, writes));
        access
            .granted
            .push(format!("classic scopes: {}", scopes.join(", ")));
        access.kind = TokenKind::Classic { scopes };
        return Ok(access);
    }
    let branch = info.default_branch.unwrap_or_else(|| "main".into());
    let probes: [(&str, Vec<&str>); 3] = [
        ("Pull requests: Read", vec!["pulls"]),
        ("Commit statuses: Read", vec!["commits", &branch, "status"]),
        ("Checks: Read", vec!["commits", &branch, "check-runs"]),
    ];
    for (permission, path) in probes {
        let mut url = forge.repo_url(repo, &path);
        url.query_pairs_mut().append_pair("per_page", "1");
        match client.send(Method::GET, url, None).await {
            Ok(_) => access.granted.push(permission.into()),
            Err(ForgeError::Status { status: 403, .. }) => access.missing.push(permission.into()),
            // A branch with no commit yet answers 404/422 here: nothing to say about the token.
            Err(ForgeError::NotFound { .. } | ForgeError::Validation { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if writes && !probe_writes {
        access.unverified.push(
            "Pull requests: Read and write (checked by `gaffer doctor`, not by /health)".into(),
        );
    }
    if writes && probe_writes {
        // An invalid PR (no head, no base): 422 when the token may open PRs, 403 when not.
        match client
            .send(
                Method::POST,
                forge.repo_url(repo, &["pulls"]),
                Some(&json!({})),
            )
            .await
        {
            Err(ForgeError::Validation { .. }) => {
                access.granted.push("Pull requests: Read and write".into())
            }
            Err(ForgeError::Status { status: 403, .. }) => {
                access.missing.push("Pull requests: Read and write".into())
            }
            Ok(_) => {
                return Err(ForgeError::Protocol {
                    message: "GitHub accepted an empty pull request".into(),
                })
            }
            Err(e) => return Err(e),
        }
    }
    if writes {
        access.unverified.push(
            "Workflows: Read and write (GitHub cannot be asked without a push; the bootstrap PR adds .github/workflows/ci.yml)".into(),
        );
    }
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classic_scopes_needed_per_mode_and_visibility() {
        assert!(missing_classic_scopes(&scopes(&["repo", "workflow"]), true, true).is_empty());
        assert!(
            missing_classic_scopes(&scopes(&["public_repo", "workflow"]), false, true).is_empty()
        );
        assert!(missing_classic_scopes(&scopes(&[]), false, false).is_empty());
        let missing = missing_classic_scopes(&scopes(&["repo"]), true, true);
        assert_eq!(missing.len(), 1);
        assert!(missing[0].contains("`workflow`"), "{missing:?}");
        let missing = missing_classic_scopes(&scopes(&["public_repo"]), true, false);
        assert_eq!(missing, ["classic scope `repo`"]);
    }

    #[test]
    fn scopes_header_parses() {
        assert_eq!(parse_scopes("repo, workflow"), ["repo", "workflow"]);
        assert!(parse_scopes("").is_empty());
    }
}
