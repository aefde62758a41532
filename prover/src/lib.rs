//! `opml-prover`: the off-chain side of opml-ic — the chain client ([`chain`]), the worker and challenger agents
//! ([`agent`]), the one-command devnet demo ([`demo`]) and the models `opml` knows ([`model`]).

pub mod agent;
pub mod chain;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod lie;
pub mod local;
pub mod model;
pub mod progress;
pub mod status;
