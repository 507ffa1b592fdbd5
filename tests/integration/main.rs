//! Integration tests: a real PostgreSQL started by the tests, real executor
//! components built from plugins/. One binary so the cluster starts once.

mod api;
mod artifacts;
mod audit;
mod authoring;
mod availability;
mod booking_races;
mod capabilities;
mod cli;
mod commit_unknown;
mod console;
mod executors;
mod faults;
mod fleet;
mod fuzz;
mod hostile;
mod layout;
mod mcp;
mod mcp_clients;
mod openapi;
mod proposals;
mod races;
mod readme;
mod reliability;
mod replay;
mod tenancy;
mod upload_corpus;
