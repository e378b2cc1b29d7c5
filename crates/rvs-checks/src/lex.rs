//! keepalived.conf lexing: lines of whitespace-separated words, `{`/`}` as tokens of their own
//! (also when glued to a word), `#`/`!` comments, "quoted" values, `\` line continuation and
//! `include GLOB`. The result is a tree of statements so that the typed layer never has to count
//! braces, and so that sections rvs ignores are still checked for balance (keepalived's read_line
//! keeps one block depth for the whole file, whatever the section).

use std::path::{Path, PathBuf};

use crate::ParseError;

/// keepalived has no fixed limit (it relies on running out of file descriptors); a small one
/// turns an include cycle into an error naming the line instead of a hang.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// One word of a statement. `quoted` words came from "..." and are never taken for braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

/// One statement: its words, where it starts, and the block that follows it (`{ ... }` on the
/// same line or on the next one), if any.
#[derive(Debug, Clone)]
pub struct Node {
    pub words: Vec<Word>,
    pub file: usize,
    pub line: usize,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Word(Word),
    Open,
    Close,
    /// End of a (possibly continued) line: ends a statement.
    Eol,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    file: usize,
    line: usize,
}

/// The names of every file read, indexed by `Node::file`.
#[derive(Debug, Default)]
pub struct Files {
    pub names: Vec<String>,
}

impl Files {
    pub fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", |s| s.as_str())
    }

    pub fn err(&self, file: usize, line: usize, keyword: &str, msg: String) -> ParseError {
        ParseError {
            file: self.name(file).to_string(),
            line,
            keyword: keyword.to_string(),
            msg,
        }
    }
}

/// Lexes `text` (the contents of the file named `name`, whose includes are resolved against
/// `dir`) into a statement tree.
pub fn read(text: &str, name: &str, dir: &Path) -> Result<(Vec<Node>, Files), ParseError> {
    let mut files = Files::default();
    let mut toks = Vec::new();
    lex(text, name, dir, 0, &mut files, &mut toks)?;
    let mut it = toks.into_iter().peekable();
    let nodes = tree(&mut it, &files, None)?;
    Ok((nodes, files))
}

fn lex(
    text: &str,
    name: &str,
    dir: &Path,
    depth: usize,
    files: &mut Files,
    out: &mut Vec<Tok>,
) -> Result<(), ParseError> {
    let file = files.names.len();
    files.names.push(name.to_string());
    let mut line_toks: Vec<Tok> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let continued = lex_line(raw, file, line, files, &mut line_toks)?;
        if continued {
            continue;
        }
        // `include` is handled where keepalived handles it: on whole lines, at any level.
        let is_include = matches!(line_toks.first(),
            Some(Tok { kind: Kind::Word(w), .. }) if !w.quoted && w.text == "include");
        if is_include {
            let (inc_file, inc_line) = line_toks.first().map_or((file, line), |t| (t.file, t.line));
            let pattern = match &line_toks[1..] {
                [Tok {
                    kind: Kind::Word(w),
                    ..
                }] => w.text.clone(),
                _ => {
                    return Err(files.err(
                        inc_file,
                        inc_line,
                        "include",
                        "expects exactly one file name or glob pattern".into(),
                    ))
                }
            };
            include(&pattern, dir, depth, (inc_file, inc_line), files, out)?;
        } else if !line_toks.is_empty() {
            let last = line_toks.last().map_or(line, |t| t.line);
            out.append(&mut line_toks);
            out.push(Tok {
                kind: Kind::Eol,
                file,
                line: last,
            });
        }
        line_toks.clear();
    }
    if !line_toks.is_empty() {
        // A `\` on the last line continues into nothing: keep what was there.
        let last = line_toks.last().map_or(0, |t| t.line);
        out.append(&mut line_toks);
        out.push(Tok {
            kind: Kind::Eol,
            file,
            line: last,
        });
    }
    Ok(())
}

fn include(
    pattern: &str,
    dir: &Path,
    depth: usize,
    (file, line): (usize, usize),
    files: &mut Files,
    out: &mut Vec<Tok>,
) -> Result<(), ParseError> {
    let fail = |files: &Files, msg: String| files.err(file, line, "include", msg);
    if depth + 1 > MAX_INCLUDE_DEPTH {
        return Err(fail(
            files,
            format!("includes nested deeper than {MAX_INCLUDE_DEPTH} levels (an include loop?)"),
        ));
    }
    // keepalived chdir()s into the including file's directory, so relative patterns are
    // relative to it.
    let full: PathBuf = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        dir.join(pattern)
    };
    let full_str = full.to_string_lossy().into_owned();
    let wild = pattern.contains(['*', '?', '[']);
    let mut paths: Vec<PathBuf> = match glob::glob(&full_str) {
        Ok(p) => p.filter_map(Result::ok).collect(),
        Err(e) => return Err(fail(files, format!("bad pattern \"{pattern}\": {e}"))),
    };
    paths.sort();
    // A pattern matching nothing is fine (an empty conf.d), as in keepalived; a plain name that
    // does not exist is a typo that would silently drop services, so it is an error here.
    if paths.is_empty() && !wild {
        return Err(fail(
            files,
            format!("cannot read \"{full_str}\": no such file"),
        ));
    }
    for p in paths {
        if p.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| fail(files, format!("cannot read \"{}\": {e}", p.display())))?;
        let sub_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
        lex(&text, &p.to_string_lossy(), &sub_dir, depth + 1, files, out)?;
    }
    Ok(())
}

/// Lexes one physical line into `toks`; returns true when it ends with a `\` continuation.
fn lex_line(
    raw: &str,
    file: usize,
    line: usize,
    files: &Files,
    toks: &mut Vec<Tok>,
) -> Result<bool, ParseError> {
    let mut word = String::new();
    let push_word = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            let text = std::mem::take(word);
            toks.push(Tok {
                kind: Kind::Word(Word {
                    text,
                    quoted: false,
                }),
                file,
                line,
            });
        }
    };
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            '\\' => match chars.peek() {
                // `\#` and `\!` are the escaped comment characters.
                Some(&n @ ('#' | '!')) => {
                    word.push(n);
                    chars.next();
                }
                None => {
                    push_word(&mut word, toks);
                    return Ok(true);
                }
                Some(_) => {
                    if chars.clone().all(char::is_whitespace) {
                        push_word(&mut word, toks);
                        return Ok(true);
                    }
                    word.push('\\');
                }
            },
            '"' => {
                push_word(&mut word, toks);
                let mut q = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    q.push(c);
                }
                if !closed {
                    let kw = toks.first().map_or(String::new(), |t| match &t.kind {
                        Kind::Word(w) => w.text.clone(),
                        _ => String::new(),
                    });
                    return Err(files.err(file, line, &kw, "unterminated quote".into()));
                }
                toks.push(Tok {
                    kind: Kind::Word(Word {
                        text: q,
                        quoted: true,
                    }),
                    file,
                    line,
                });
            }
            '{' | '}' => {
                push_word(&mut word, toks);
                let kind = if c == '{' { Kind::Open } else { Kind::Close };
                toks.push(Tok { kind, file, line });
            }
            c if c.is_whitespace() => push_word(&mut word, toks),
            c => word.push(c),
        }
    }
    push_word(&mut word, toks);
    Ok(false)
}

/// Builds statements until the matching `}` (when `open` names the block's opener) or the end.
fn tree(
    it: &mut std::iter::Peekable<std::vec::IntoIter<Tok>>,
    files: &Files,
    open: Option<(&str, usize, usize)>,
) -> Result<Vec<Node>, ParseError> {
    let mut nodes: Vec<Node> = Vec::new();
    // Whether the last statement ended at a line end and may still take a `{` on the next line.
    let mut may_take_block = false;
    loop {
        let Some(tok) = it.next() else {
            return match open {
                Some((kw, file, line)) => {
                    Err(files.err(file, line, kw, "block is never closed: missing '}'".into()))
                }
                None => Ok(nodes),
            };
        };
        match tok.kind {
            Kind::Eol => {}
            Kind::Close => {
                return match open {
                    Some(_) => Ok(nodes),
                    None => Err(files.err(tok.file, tok.line, "}", "unexpected '}'".into())),
                };
            }
            Kind::Open => {
                let target = nodes
                    .last_mut()
                    .filter(|n| may_take_block && n.block.is_none());
                let Some(node) = target else {
                    return Err(files.err(tok.file, tok.line, "{", "unexpected '{'".into()));
                };
                let kw = node.keyword().to_string();
                let block = tree(it, files, Some((&kw, node.file, node.line)))?;
                node.block = Some(block);
                may_take_block = false;
            }
            Kind::Word(first) => {
                let (file, line) = (tok.file, tok.line);
                let mut words = vec![first];
                let mut end = None;
                for t in it.by_ref() {
                    match t.kind {
                        Kind::Word(w) => words.push(w),
                        k => {
                            end = Some(k);
                            break;
                        }
                    }
                }
                let mut node = Node {
                    words,
                    file,
                    line,
                    block: None,
                };
                may_take_block = false;
                match end {
                    Some(Kind::Open) => {
                        let kw = node.keyword().to_string();
                        node.block = Some(tree(it, files, Some((&kw, file, line)))?);
                        nodes.push(node);
                    }
                    Some(Kind::Close) => {
                        nodes.push(node);
                        return match open {
                            Some(_) => Ok(nodes),
                            None => Err(files.err(file, line, "}", "unexpected '}'".into())),
                        };
                    }
                    _ => {
                        nodes.push(node);
                        may_take_block = true;
                    }
                }
            }
        }
    }
}
