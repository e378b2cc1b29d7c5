//! `rvsadm -R`: parsing ipvsadm rule files (`ipvsadm -S` output) into commands.
//!
//! Line handling as ipvsadm's `config_stream.c` (checked against the real binary): each line is
//! split on whitespace (a `\r` is whitespace), every token equal to "ipvsadm" is dropped, lines
//! left empty are skipped, the rest is parsed exactly like a command line. Quotes mean nothing.
//!
//! Deliberate differences (documented):
//! - All or nothing: the first bad line fails the whole input and no command is returned, so the
//!   caller applies the list atomically (ipvsadm applies the lines before the bad one).
//! - A line whose first token starts with '#' is a comment and skipped (ipvsadm 1.31 aborts on it
//!   with the "Try" hint after applying the lines before). A '#' later in a line is still
//!   "unexpected argument #", as in ipvsadm.
//! - Tokens equal to "rvsadm" are dropped too, like "ipvsadm".
//! - `--add-mark`/`--del-mark` lines (rvs mark rules) are accepted; `--list-marks` is refused
//!   like the listings.
//! - `-L`, `-S`, `-h` and `-v` lines are refused ("not allowed in restore input"); ipvsadm would
//!   print in the middle of restoring (and stop at `-h`/`-v`). A nested `-R` gets ipvsadm's "Try"
//!   hint (exit 255).

use super::args::{parse_with, Command, ParseError, EXIT_FAIL, EXIT_POPT};
use super::names::{c_isspace, Names, SystemNames};
use std::fmt;

/// The first bad line: its 1-based number and the error ipvsadm would print for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError {
    pub line: usize,
    pub error: ParseError,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error.message)
    }
}

impl std::error::Error for RestoreError {}

/// Parses a whole restore input with the system's name lookups. `program` is used in the "Try"
/// hint, as argv[0] is by ipvsadm. Returns (1-based line number, command) in input order.
pub fn parse_restore(input: &str, program: &str) -> Result<Vec<(usize, Command)>, RestoreError> {
    parse_restore_with(input, program, &SystemNames::load())
}

/// [`parse_restore`] with explicit name lookups.
pub fn parse_restore_with(
    input: &str,
    program: &str,
    names: &dyn Names,
) -> Result<Vec<(usize, Command)>, RestoreError> {
    let mut out = Vec::new();
    for (idx, line) in input.split('\n').enumerate() {
        let line_no = idx + 1;
        let tokens: Vec<&str> = line
            .split(c_isspace)
            .filter(|t| !t.is_empty() && *t != "ipvsadm" && *t != "rvsadm")
            .collect();
        let Some(first) = tokens.first() else {
            continue;
        };
        if first.starts_with('#') {
            continue;
        }
        let mut argv = Vec::with_capacity(tokens.len() + 1);
        argv.push(program.to_string());
        argv.extend(tokens.iter().map(|t| t.to_string()));
        let err = |error: ParseError| RestoreError {
            line: line_no,
            error,
        };
        match parse_with(&argv, names).map_err(err)? {
            Command::Restore => {
                return Err(err(ParseError {
                    message: format!(
                        "Try `{p} -h' or '{p} --help' for more information.",
                        p = program
                    ),
                    exit_code: EXIT_POPT,
                }))
            }
            Command::List(_)
            | Command::Save { .. }
            | Command::Help { .. }
            | Command::Version
            | Command::ListMarkRules => {
                return Err(err(ParseError {
                    message: format!("'{}' is not allowed in restore input", first),
                    exit_code: EXIT_FAIL,
                }))
            }
            cmd => out.push((line_no, cmd)),
        }
    }
    Ok(out)
}
