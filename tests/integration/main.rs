//! Integration tests: a real PostgreSQL started by the tests, real executor
//! components built from plugins/. One binary so the cluster starts once.

mod api;
mod artifacts;
mod audit;
mod capabilities;
mod cli;
mod faults;
mod fuzz;
mod hostile;
mod races;
mod replay;
mod tenancy;
mod upload_corpus;
