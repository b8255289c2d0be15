//! Splitting an expression into tokens, JavaScript's way: numbers, quoted strings with
//! escapes, regular expression literals, identifiers (`$` may start one) and operators.
//!
//! Whether `/` starts a regular expression or divides depends on the token before it, as in
//! JavaScript: after an operand (a name, a literal, `)` or `]`) it divides.

use crate::error::ExprError;

/// Operators and punctuation, longest first so that `===` is not read as `==` and `=`.
const PUNCTUATION: &[&str] = &[
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", ".", "[", "]", "(", ")", ",", "?", ":", "!",
    "-", "+", "*", "/", "%", "<", ">",
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Str(String),
    Regex { pattern: String, flags: String },
    Ident(String),
    Punct(&'static str),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub at: usize,
}

/// The tokens of `source`, ending with [`Tok::End`].
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, ExprError> {
    let mut lexer = Lexer {
        source,
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    source: &'a str,
    pos: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), ExprError> {
        loop {
            self.skip_space();
            let at = self.pos;
            let Some(c) = self.peek() else {
                self.tokens.push(Token { tok: Tok::End, at });
                return Ok(());
            };
            let tok = if c.is_ascii_digit() || (c == '.' && self.next_is_digit()) {
                self.number()?
            } else if c == '\'' || c == '"' {
                self.string(c)?
            } else if is_ident_start(c) {
                self.ident()
            } else if c == '/' && self.regex_allowed() {
                self.regex()?
            } else {
                self.punct()?
            };
            self.tokens.push(Token { tok, at });
        }
    }

    fn peek(&self) -> Option<char> {
        self.source[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn next_is_digit(&self) -> bool {
        self.source[self.pos..]
            .chars()
            .nth(1)
            .is_some_and(|c| c.is_ascii_digit())
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ExprError {
        ExprError::new(at, message)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// After an operand `/` divides; anywhere else it starts a regular expression.
    fn regex_allowed(&self) -> bool {
        match self.tokens.last().map(|t| &t.tok) {
            None => true,
            Some(Tok::Punct(p)) => *p != ")" && *p != "]",
            Some(_) => false,
        }
    }

    fn number(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        let rest = &self.source[start..];
        if rest.starts_with("0x") || rest.starts_with("0X") {
            self.pos += 2;
            let digits = self.take_while(|c| c.is_ascii_hexdigit());
            let value = u64::from_str_radix(digits, 16)
                .map_err(|_| self.error(start, "malformed hexadecimal number"))?;
            self.no_ident_after(start)?;
            // JavaScript numbers are doubles: a huge hexadecimal literal rounds, as there.
            #[allow(clippy::cast_precision_loss)]
            return Ok(Tok::Num(value as f64));
        }
        self.take_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') {
            self.bump();
            self.take_while(|c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                return Err(self.error(start, "malformed number: exponent without digits"));
            }
        }
        self.no_ident_after(start)?;
        let text = &self.source[start..self.pos];
        text.parse::<f64>()
            .map(Tok::Num)
            .map_err(|_| self.error(start, format!("malformed number `{text}`")))
    }

    /// `3in` or `1x` is not a number followed by a name in JavaScript: it is an error.
    fn no_ident_after(&self, start: usize) -> Result<(), ExprError> {
        match self.peek() {
            Some(c) if is_ident_part(c) => Err(self.error(start, "a name cannot follow a number")),
            _ => Ok(()),
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.source[start..self.pos]
    }

    fn ident(&mut self) -> Tok {
        let name = self.take_while(is_ident_part).to_string();
        Tok::Ident(name)
    }

    fn string(&mut self, quote: char) -> Result<Tok, ExprError> {
        let start = self.pos;
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None | Some('\n' | '\r') => {
                    return Err(self.error(start, "unterminated string"));
                }
                Some(c) if c == quote => return Ok(Tok::Str(text)),
                Some('\\') => self.escape(start, &mut text)?,
                Some(c) => text.push(c),
            }
        }
    }

    /// One escape sequence of a JavaScript string, after its backslash.
    fn escape(&mut self, start: usize, text: &mut String) -> Result<(), ExprError> {
        let Some(c) = self.bump() else {
            return Err(self.error(start, "unterminated string"));
        };
        match c {
            'n' => text.push('\n'),
            't' => text.push('\t'),
            'r' => text.push('\r'),
            'b' => text.push('\u{8}'),
            'f' => text.push('\u{c}'),
            'v' => text.push('\u{b}'),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => text.push('\0'),
            'x' => text.push(self.hex_char(start, 2)?),
            'u' => self.unicode_escape(start, text)?,
            // A backslash before a line break continues the string on the next line.
            '\n' => {}
            '\r' => {
                if self.peek() == Some('\n') {
                    self.bump();
                }
            }
            c if c.is_ascii_digit() => {
                return Err(self.error(start, "octal escapes are not supported"));
            }
            c => text.push(c),
        }
        Ok(())
    }

    /// `\uXXXX`, joining a surrogate pair written as two escapes.
    fn unicode_escape(&mut self, start: usize, text: &mut String) -> Result<(), ExprError> {
        let high = self.hex_unit(start)?;
        if !(0xD800..0xDC00).contains(&high) {
            let c = char::from_u32(high)
                .ok_or_else(|| self.error(start, "a lone surrogate in a string"))?;
            text.push(c);
            return Ok(());
        }
        if !self.source[self.pos..].starts_with("\\u") {
            return Err(self.error(start, "a lone surrogate in a string"));
        }
        self.pos += 2;
        let low = self.hex_unit(start)?;
        let c = char::decode_utf16([high as u16, low as u16])
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| self.error(start, "a lone surrogate in a string"))?;
        text.push(c);
        Ok(())
    }

    fn hex_unit(&mut self, start: usize) -> Result<u32, ExprError> {
        let digits: String = self.source[self.pos..].chars().take(4).collect();
        if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.error(start, "malformed \\u escape"));
        }
        self.pos += 4;
        u32::from_str_radix(&digits, 16).map_err(|_| self.error(start, "malformed \\u escape"))
    }

    fn hex_char(&mut self, start: usize, len: usize) -> Result<char, ExprError> {
        let digits: String = self.source[self.pos..].chars().take(len).collect();
        if digits.len() != len || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.error(start, "malformed \\x escape"));
        }
        self.pos += len;
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error(start, "malformed \\x escape"))
    }

    /// `/pattern/flags`: the pattern ends at the first `/` that is neither escaped nor inside
    /// a character class, as in JavaScript. The pattern itself is checked later.
    fn regex(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        self.bump();
        let body = self.pos;
        let mut in_class = false;
        loop {
            match self.bump() {
                None | Some('\n' | '\r') => {
                    return Err(self.error(start, "unterminated regular expression"));
                }
                Some('\\') => {
                    if self.bump().is_none() {
                        return Err(self.error(start, "unterminated regular expression"));
                    }
                }
                Some('[') => in_class = true,
                Some(']') => in_class = false,
                Some('/') if !in_class => break,
                Some(_) => {}
            }
        }
        let pattern = self.source[body..self.pos - 1].to_string();
        let flags = self.take_while(is_ident_part).to_string();
        Ok(Tok::Regex { pattern, flags })
    }

    fn punct(&mut self) -> Result<Tok, ExprError> {
        let rest = &self.source[self.pos..];
        let at = self.pos;
        if rest.starts_with("**") {
            return Err(self.error(at, "`**` is not supported"));
        }
        match PUNCTUATION.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                self.pos += p.len();
                Ok(Tok::Punct(p))
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                Err(self.error(at, format!("unexpected `{c}`")))
            }
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(source: &str) -> Vec<Tok> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn numbers_strings_and_names() {
        assert_eq!(
            toks("1.5e2 'a\\'b' \"\\u0041\\x42\" $uid"),
            vec![
                Tok::Num(150.0),
                Tok::Str("a'b".into()),
                Tok::Str("AB".into()),
                Tok::Ident("$uid".into()),
                Tok::End
            ]
        );
        assert_eq!(
            toks("0x1F .5"),
            vec![Tok::Num(31.0), Tok::Num(0.5), Tok::End]
        );
    }

    #[test]
    fn a_slash_divides_after_an_operand_and_starts_a_regex_elsewhere() {
        assert_eq!(
            toks("a / 2"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("/"),
                Tok::Num(2.0),
                Tok::End
            ]
        );
        assert_eq!(
            toks("x(/a[/]b\\//i)"),
            vec![
                Tok::Ident("x".into()),
                Tok::Punct("("),
                Tok::Regex {
                    pattern: "a[/]b\\/".into(),
                    flags: "i".into()
                },
                Tok::Punct(")"),
                Tok::End
            ]
        );
    }

    #[test]
    fn longest_operator_first() {
        assert_eq!(
            toks("a!==b"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("!=="),
                Tok::Ident("b".into()),
                Tok::End
            ]
        );
    }

    #[test]
    fn what_javascript_rejects_is_rejected() {
        for bad in [
            "'open", "a = 1", "2**2", "3in", "a & b", "a; b", "'\\01'", "/abc",
        ] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }
}
