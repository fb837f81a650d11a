//! Test support shared by the black-box tests and the benchmarks: `spawn_app()`, a
//! stateful fake GitHub, and git helpers.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod fake_github;
pub mod git;
pub mod model;
pub mod ollama;
pub mod openai;
pub mod replay;
pub mod roles_fixtures;
pub mod webhook;
