//! An executor project on disk: its folder, and the name and language its `bookhost.toml` gives.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::AuthoringError;
use crate::ExecutorName;

/// The languages `bookhost new` scaffolds and `bookhost build` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    #[value(alias = "typescript")]
    #[serde(alias = "typescript")]
    Ts,
    #[value(alias = "py")]
    #[serde(alias = "py")]
    Python,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Ts => "ts",
            Language::Python => "python",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    name: String,
    language: Language,
}

/// A project made by `bookhost new`.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub name: ExecutorName,
    pub language: Language,
}

impl Project {
    pub const FILE: &'static str = "bookhost.toml";

    /// The project in `dir` (its `bookhost.toml`).
    pub fn open(dir: &Path) -> Result<Self, AuthoringError> {
        let path = dir.join(Self::FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuthoringError::NotAProject(dir.to_path_buf()))
            }
            Err(e) => return Err(e.into()),
        };
        let bad = |message: String| AuthoringError::BadProjectFile {
            path: path.clone(),
            message,
        };
        let file: ProjectFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let name = ExecutorName::parse(&file.name).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            language: file.language,
        })
    }

    /// Where `bookhost build` puts the component.
    pub fn component_path(&self) -> PathBuf {
        self.dir.join("dist").join(format!("{}.wasm", self.name))
    }

    /// The project's own files that are not sources: caches, compiled artifacts.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".bookhost")
    }
}
