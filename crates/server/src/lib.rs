//! The Portcullis server as a library: [`start`] runs it in the caller's tokio runtime and
//! hands back a [`Running`] handle (in-process tests start it this way); the `portcullis`
//! binary is the command line over it.

pub mod config;
pub mod http;
pub mod logging;
pub mod pg;
mod secret_file;
pub mod server;
mod tls;
pub mod waiting;

pub use server::{start, Running};
