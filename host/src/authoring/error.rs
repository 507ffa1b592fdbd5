//! What can go wrong between `bookhost new` and a built component, each saying what to do about it.

use std::path::PathBuf;

use crate::runtime::RejectedComponent;

#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    #[error("{0} exists and is not empty; bookhost new makes a project in a new or empty folder")]
    NotEmpty(PathBuf),
    #[error("no bookhost.toml in {0}: run this in a project made by `bookhost new`, or pass --project DIR")]
    NotAProject(PathBuf),
    #[error("{path} is not a valid project file: {message}")]
    BadProjectFile { path: PathBuf, message: String },
    /// A tool the language needs is not installed; `how` says how to get it.
    #[error("{what} is missing: {how}")]
    ToolMissing { what: String, how: String },
    #[error("{step} failed ({status}):\n{output}")]
    ToolFailed {
        step: String,
        status: String,
        output: String,
    },
    #[error("no built component at {0}: run `bookhost build` first")]
    NotBuilt(PathBuf),
    #[error("the built component is not a usable executor: {0}")]
    Rejected(#[from] RejectedComponent),
    #[error("the executor describes itself as {described:?}, but bookhost.toml names it {expected:?}; make them agree")]
    NameMismatch { expected: String, described: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<std::io::Error> for AuthoringError {
    fn from(e: std::io::Error) -> Self {
        Self::Other(e.into())
    }
}
