//! Health-check configuration in keepalived.conf syntax (issue 12): a parser from the text of a
//! keepalived.conf to typed values. Only the LVS part is read (`virtual_server`,
//! `virtual_server_group`, `SSL`); the other top-level sections are skipped whole and listed in
//! [`ChecksConfig::ignored`] so that the caller can log one line each. Parsing returns the whole
//! configuration or one error naming file, line and keyword: never a partial result.
//!
//! [`probe`] runs one attempt of a checker (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK,
//! UDP_CHECK, DNS_CHECK) as keepalived 2.x does, on the caller's tokio runtime.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod checker;
pub mod engine;
mod lex;
mod model;
mod parse;
pub mod plan;
pub mod probe;
pub mod state;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_state;

use std::path::Path;

pub use lex::MAX_INCLUDE_DEPTH;
pub use model::*;
pub use parse::IGNORED_SECTIONS;

/// Why a keepalived.conf was refused. `Display` is one line: `FILE:LINE: KEYWORD: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {keyword}: {msg}")]
pub struct ParseError {
    /// The file as named by the caller, or an included file as found from it.
    pub file: String,
    /// 1-based; 0 when the file itself could not be read.
    pub line: usize,
    /// The keyword of the statement at fault (`{`/`}` for brace errors).
    pub keyword: String,
    pub msg: String,
}

/// Parses the keepalived.conf at `path`; includes are relative to its directory.
pub fn parse_file(path: &Path) -> Result<ChecksConfig, ParseError> {
    let name = path.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        file: name.clone(),
        line: 0,
        keyword: String::new(),
        msg: format!("cannot read: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_in(&text, &name, dir)
}

/// Parses `text`, named `name` in errors; includes are relative to the current directory.
pub fn parse_str(text: &str, name: &str) -> Result<ChecksConfig, ParseError> {
    parse_in(text, name, Path::new("."))
}

fn parse_in(text: &str, name: &str, dir: &Path) -> Result<ChecksConfig, ParseError> {
    let (nodes, files) = lex::read(text, name, dir)?;
    parse::config(&parse::Cx { files: &files }, &nodes)
}
