//! Kairos: real-time, rules-driven marketing for telecom operators.
//!
//! Events flow `source -> pipeline -> engine (rules + state) -> decision -> channels`.
//! The binary in `main.rs` only parses arguments and calls into this library, so tests
//! start the whole product in-process.

pub mod access;
pub mod alloc;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authoring;
pub mod backtest;
pub mod capture;
pub mod channels;
pub mod cli;
pub mod config;
pub mod crm;
pub mod crud;
pub mod decision;
pub mod desk;
pub mod engine;
pub mod event;
pub mod http;
pub mod ingest;
pub mod kafka;
pub mod offers;
pub mod ops;
pub mod periodic;
pub mod pipeline;
pub mod portal;
pub mod ports;
#[cfg(feature = "profile")]
pub mod profile;
pub mod pubsub;
pub mod replay;
pub mod rules;
pub mod sim;
pub mod state;
pub mod store;
pub mod touch;
pub mod web;
