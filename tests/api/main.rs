//! Black-box tests: each starts gaffer on a random port with a temporary data directory
//! and talks to it over HTTP, or runs the `gaffer` binary as a user would.

mod agent;
mod auto_merge;
mod chaos;
mod checks;
mod cli;
mod coverage;
mod dashboard;
mod deliveries;
mod demo;
mod dockerfile;
mod doctor;
mod engine;
mod exactly_once;
mod github_client;
mod github_recorded;
mod health;
mod issues;
mod llm_canned;
mod llm_openai_canned;
mod llm_openai_real;
mod llm_real;
mod local_forge;
mod pipeline;
mod poller;
mod poller_graphql;
mod repos;
mod review_integrate;
mod roles;
mod security;
mod standalone;
#[path = "../support/mod.rs"]
mod support;
mod webhook;
