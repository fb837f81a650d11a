//! Rows of the `repos` table.

use serde_json::json;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::Store;
use crate::error::{AppError, AppResult};
use crate::registry::{FullName, NewRepoRow, Repo, RepoOverrides};

/// `SELECT <every repo column> FROM repos <rest>`, as one static string (sqlx 0.9 only
/// takes audited, static SQL).
macro_rules! select_repos {
    ($rest:literal) => {
        concat!(
            "SELECT owner, name, mode, default_branch, clone_url, forge, overrides, created_at, updated_at FROM repos ",
            $rest
        )
    };
}

impl Store {
    /// Inserts a repo; a name already present in any letter case is a 409.
    pub async fn insert_repo(&self, row: &NewRepoRow<'_>) -> AppResult<Repo> {
        let overrides = serde_json::to_string(row.overrides).map_err(internal_json)?;
        let result = sqlx::query(
            "INSERT INTO repos (owner, name, mode, default_branch, clone_url, forge, overrides)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.full_name.owner())
        .bind(row.full_name.name())
        .bind(row.mode.as_str())
        .bind(row.default_branch)
        .bind(row.clone_url)
        .bind(row.forge.as_str())
        .bind(overrides)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(AppError::conflict(format!(
                    "repo {} is already registered",
                    row.full_name
                ))
                .with_detail(json!({"full_name": row.full_name.to_string()})))
            }
            Err(e) => return Err(e.into()),
        }
        self.find_repo(row.full_name)
            .await?
            .ok_or_else(|| AppError::internal("repo vanished right after insert"))
    }

    pub async fn find_repo(&self, name: &FullName) -> AppResult<Option<Repo>> {
        let row = sqlx::query(select_repos!(
            "WHERE lower(owner) = lower(?) AND lower(name) = lower(?)"
        ))
        .bind(name.owner())
        .bind(name.name())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| repo_from_row(&r)).transpose()
    }

    pub async fn list_repos(&self) -> AppResult<Vec<Repo>> {
        let rows = sqlx::query(select_repos!("ORDER BY lower(owner), lower(name)"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(repo_from_row).collect()
    }

    /// Writes back every mutable column of `repo`.
    pub async fn update_repo(&self, repo: &Repo) -> AppResult<()> {
        let overrides = serde_json::to_string(&repo.overrides).map_err(internal_json)?;
        sqlx::query(
            "UPDATE repos SET mode = ?, default_branch = ?, clone_url = ?, overrides = ?,
                    updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE lower(owner) = lower(?) AND lower(name) = lower(?)",
        )
        .bind(repo.mode.as_str())
        .bind(&repo.default_branch)
        .bind(&repo.clone_url)
        .bind(overrides)
        .bind(&repo.owner)
        .bind(&repo.name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_repo(&self, name: &FullName) -> AppResult<bool> {
        let done = sqlx::query(
            "DELETE FROM repos WHERE lower(owner) = lower(?) AND lower(name) = lower(?)",
        )
        .bind(name.owner())
        .bind(name.name())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn repo_from_row(row: &SqliteRow) -> AppResult<Repo> {
    let owner: String = row.try_get("owner")?;
    let name: String = row.try_get("name")?;
    let mode: String = row.try_get("mode")?;
    let forge: String = row.try_get("forge")?;
    let overrides: String = row.try_get("overrides")?;
    let overrides: RepoOverrides = serde_json::from_str(&overrides).map_err(internal_json)?;
    Ok(Repo {
        id: format!("{owner}_{name}"),
        full_name: format!("{owner}/{name}"),
        mode: mode.parse()?,
        forge: forge.parse()?,
        default_branch: row.try_get("default_branch")?,
        clone_url: row.try_get("clone_url")?,
        overrides,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        owner,
        name,
    })
}

fn internal_json(err: serde_json::Error) -> AppError {
    AppError::internal(format!("stored repo overrides are not valid JSON: {err}"))
}
