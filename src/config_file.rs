//! Which config file gaffer reads: `GAFFER_CONFIG` when set (it must exist), else the first
//! file found on a documented search path. The answer is kept in the settings so `doctor`
//! and the start-up log can say which file was used (or that none was, and where gaffer
//! looked), instead of silently depending on the working directory.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The system-wide config file, last on the search path.
pub const SYSTEM_CONFIG: &str = "/etc/gaffer/gaffer.yaml";

/// The config file used and how it was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file read, or `None` when none was found (embedded defaults).
    pub path: Option<PathBuf>,
    /// Named by `GAFFER_CONFIG` (rather than found on the search path).
    pub from_env: bool,
    /// Where gaffer looked, in order (empty when `GAFFER_CONFIG` named the file).
    pub searched: Vec<PathBuf>,
}

impl fmt::Display for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.from_env) {
            (Some(path), true) => write!(f, "{} (GAFFER_CONFIG)", path.display()),
            (Some(path), false) => write!(f, "{} (found on the search path)", path.display()),
            (None, _) => {
                let searched: Vec<String> = self
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                write!(
                    f,
                    "none found, using the embedded defaults (searched {})",
                    searched.join(", ")
                )
            }
        }
    }
}

/// The search path, in order: `./config/gaffer.yaml`, `$GAFFER_DATA_DIR/gaffer.yaml`
/// (`./data` by default; the variable is read from the environment or `.env`),
/// `gaffer.yaml` next to the binary, then [`SYSTEM_CONFIG`].
pub fn search_path(vars: &HashMap<String, String>, exe: Option<&Path>) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from(crate::config::DEFAULT_CONFIG_PATH)];
    let data_dir = vars
        .get("GAFFER_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(String::as_str)
        .unwrap_or("data");
    paths.push(Path::new(data_dir).join("gaffer.yaml"));
    if let Some(dir) = exe.and_then(Path::parent) {
        paths.push(dir.join("gaffer.yaml"));
    }
    paths.push(PathBuf::from(SYSTEM_CONFIG));
    paths.dedup();
    paths
}

/// Finds the config file: `GAFFER_CONFIG` as given, else the first existing file on the
/// search path, relative entries taken from `cwd` (and reported absolute).
pub fn find(vars: &HashMap<String, String>, exe: Option<&Path>, cwd: &Path) -> ConfigFile {
    if let Some(path) = vars.get("GAFFER_CONFIG").filter(|p| !p.is_empty()) {
        return ConfigFile {
            path: Some(PathBuf::from(path)),
            from_env: true,
            searched: Vec::new(),
        };
    }
    let searched: Vec<PathBuf> = search_path(vars, exe)
        .into_iter()
        .map(|p| cwd.join(p))
        .collect();
    ConfigFile {
        path: searched.iter().find(|p| p.is_file()).cloned(),
        from_env: false,
        searched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_search_path_is_cwd_then_data_dir_then_binary_then_etc() {
        let path = search_path(
            &vars(&[("GAFFER_DATA_DIR", "/srv/gaffer")]),
            Some(Path::new("/opt/gaffer/bin/gaffer")),
        );
        assert_eq!(
            path,
            [
                "config/gaffer.yaml",
                "/srv/gaffer/gaffer.yaml",
                "/opt/gaffer/bin/gaffer.yaml",
                "/etc/gaffer/gaffer.yaml"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            search_path(&vars(&[]), None)[1],
            PathBuf::from("data/gaffer.yaml")
        );
    }

    #[test]
    fn gaffer_config_wins_and_the_first_existing_file_is_used() {
        let dir = tempfile::TempDir::new().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("gaffer.yaml"), "{}").unwrap();
        let data_dir = data.display().to_string();
        let cwd = dir.path();
        let found = find(&vars(&[("GAFFER_DATA_DIR", &data_dir)]), None, cwd);
        assert_eq!(found.path, Some(data.join("gaffer.yaml")));
        assert!(!found.from_env);
        assert!(found.to_string().contains("found on the search path"));

        let named = find(
            &vars(&[
                ("GAFFER_DATA_DIR", &data_dir),
                ("GAFFER_CONFIG", "/x/g.yaml"),
            ]),
            None,
            cwd,
        );
        assert_eq!(named.path, Some(PathBuf::from("/x/g.yaml")));
        assert_eq!(named.to_string(), "/x/g.yaml (GAFFER_CONFIG)");

        std::fs::create_dir_all(cwd.join("config")).unwrap();
        std::fs::write(cwd.join("config/gaffer.yaml"), "{}").unwrap();
        let first = find(&vars(&[("GAFFER_DATA_DIR", &data_dir)]), None, cwd);
        assert_eq!(first.path, Some(cwd.join("config/gaffer.yaml")));

        let none = find(
            &vars(&[("GAFFER_DATA_DIR", "/nonexistent-gaffer")]),
            None,
            &data,
        );
        assert!(none.path.is_none() || none.path == Some(PathBuf::from(SYSTEM_CONFIG)));
        assert_eq!(none.searched[0], data.join("config/gaffer.yaml"));
    }
}
