//! Writing executors outside this repository: `bookhost new` scaffolds a project, `bookhost build` makes it a component, `bookhost invoke --local` runs it on a scratch database.

mod build;
mod error;
mod project;
mod scaffold;
mod scratch;
mod templates;
mod toolchain;

pub use build::{build, Built};
pub use error::AuthoringError;
pub use project::{Language, Project};
pub use scaffold::scaffold;
pub use scratch::{invoke_local, ExampleData, EXAMPLE_DATA};
