//! A cursor over one statement's tokens, with the keyword and error helpers the parser uses
//! (in the style of sqlparser-rs's `expect_keyword` / `expected`).

use sqlparser::dialect::Dialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::error::CatalogError;

/// Identifier rules of the dialect: unquoted names start with a letter or `_` and continue with
/// letters, digits, `_`, `$` and `@` (so `alice@example_database` is one name); anything else
/// needs double quotes.
#[derive(Debug, Default)]
pub struct PortcullisDialect;

impl Dialect for PortcullisDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$' || ch == '@'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '"'
    }
}

/// Maps sqlparser's line/column locations to character and byte offsets of the source text.
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    /// The byte offset of a location (clamped to the text).
    pub fn byte(&self, loc: Location) -> usize {
        let line = (loc.line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(line) else {
            return self.text.len();
        };
        let column = (loc.column.max(1) - 1) as usize;
        self.text[start..]
            .char_indices()
            .nth(column)
            .map(|(i, _)| start + i)
            .unwrap_or(self.text.len())
    }

    /// The 1-based character position PostgreSQL reports in an error.
    pub fn position(&self, loc: Location) -> usize {
        self.text[..self.byte(loc)].chars().count() + 1
    }
}

/// The tokens of one statement (whitespace and comments removed) and where they came from.
pub struct Cursor<'a> {
    tokens: Vec<TokenWithSpan>,
    index: usize,
    lines: &'a LineIndex<'a>,
    /// Position reported for "unexpected end of input".
    end_position: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(tokens: Vec<TokenWithSpan>, lines: &'a LineIndex<'a>, end_position: usize) -> Self {
        Self {
            tokens,
            index: 0,
            lines,
            end_position,
        }
    }

    pub fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.index).map(|t| &t.token)
    }

    pub fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.index).map(|t| &t.token);
        self.index += 1;
        t
    }

    pub fn at_end(&self) -> bool {
        self.index >= self.tokens.len()
    }

    fn position_here(&self) -> usize {
        self.tokens
            .get(self.index)
            .map(|t| self.lines.position(t.span.start))
            .unwrap_or(self.end_position)
    }

    /// A syntax error at the current token: "expected X, found Y".
    pub fn expected<T>(&self, what: &str) -> Result<T, CatalogError> {
        let found = match self.peek() {
            Some(t) => format!("\"{t}\""),
            None => "end of input".to_owned(),
        };
        Err(CatalogError::syntax(
            format!("syntax error: expected {what}, found {found}"),
            self.position_here(),
        ))
    }

    /// Whether the next token is the unquoted keyword `kw` (case-insensitive); consumes it if so.
    pub fn keyword(&mut self, kw: &str) -> bool {
        if self.peek_keyword(kw) {
            self.index += 1;
            true
        } else {
            false
        }
    }

    pub fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    /// Consumes a sequence of keywords, all or none.
    pub fn keywords(&mut self, kws: &[&str]) -> bool {
        let save = self.index;
        for kw in kws {
            if !self.keyword(kw) {
                self.index = save;
                return false;
            }
        }
        true
    }

    pub fn expect_keyword(&mut self, kw: &str) -> Result<(), CatalogError> {
        if self.keyword(kw) {
            Ok(())
        } else {
            self.expected(kw)
        }
    }

    /// Consumes one of the keywords and returns which (upper-case).
    pub fn one_of(&mut self, kws: &[&'static str]) -> Option<&'static str> {
        kws.iter().copied().find(|kw| self.keyword(kw))
    }

    pub fn token(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.index += 1;
            true
        } else {
            false
        }
    }

    /// An identifier: unquoted names fold to lower case, quoted ones keep their case.
    pub fn identifier(&mut self, what: &str) -> Result<String, CatalogError> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let value = match w.quote_style {
                    None => w.value.to_lowercase(),
                    Some(_) => w.value.clone(),
                };
                if value.is_empty() || value.contains(['\n', '\r']) {
                    return self.expected(what);
                }
                self.index += 1;
                Ok(value)
            }
            _ => self.expected(what),
        }
    }

    /// A single-quoted string literal.
    pub fn string(&mut self, what: &str) -> Result<String, CatalogError> {
        match self.peek() {
            Some(Token::SingleQuotedString(s)) => {
                let s = s.clone();
                self.index += 1;
                Ok(s)
            }
            _ => self.expected(what),
        }
    }

    /// An integer literal, optionally negative.
    pub fn integer(&mut self, what: &str) -> Result<i64, CatalogError> {
        let negative = self.token(&Token::Minus);
        match self.peek() {
            Some(Token::Number(n, _)) => match n.parse::<i64>() {
                Ok(v) => {
                    self.index += 1;
                    Ok(if negative { -v } else { v })
                }
                Err(_) => self.expected(what),
            },
            _ => self.expected(what),
        }
    }

    /// Consumes the rest of the statement.
    pub fn skip_rest(&mut self) {
        self.index = self.tokens.len();
    }
}
