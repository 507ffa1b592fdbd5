//! `bookhost new`: a standalone executor project in a new or empty folder.

use std::path::Path;

use super::{templates, AuthoringError, Language, Project};
use crate::ExecutorName;

/// Write a new `language` project for the executor `name` into `dir` (which
/// must not exist or be empty). Files are written to a sibling staging
/// folder and renamed into place, so a failure leaves no half project.
pub fn scaffold(
    dir: &Path,
    name: &ExecutorName,
    language: Language,
) -> Result<Project, AuthoringError> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(AuthoringError::NotEmpty(dir.to_path_buf()));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let staging = parent.join(format!(".bookhost-new-{}", uuid::Uuid::new_v4()));
    let written = (|| {
        for file in templates::files(name.as_str(), language) {
            let path = staging.join(&file.path);
            std::fs::create_dir_all(path.parent().expect("a file has a folder"))?;
            std::fs::write(&path, file.contents)?;
        }
        if dir.exists() {
            std::fs::remove_dir(dir)?;
        }
        std::fs::rename(&staging, dir)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.into());
    }
    Project::open(dir)
}
