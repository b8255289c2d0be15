//! Splits an expression into tokens, each with its byte offset. Never panics: every
//! malformed input is a [`SyntaxError`] at the offending offset.

use serde_json::Number;

use super::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Number(Number),
    Str(String),
    Ident(String),
    Capture(String),
    Op(Op),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Colon,
    Question,
    End,
}

/// Operators with two characters or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
    And,
    Or,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub at: usize,
}

/// The tokens of `source`, ending with [`Tok::End`].
pub(crate) fn tokens(source: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer { source, pos: 0 };
    let mut out = Vec::new();
    loop {
        lexer.skip_space();
        let at = lexer.pos;
        let Some(c) = lexer.peek() else {
            out.push(Token { tok: Tok::End, at });
            return Ok(out);
        };
        let tok = lexer.token(c)?;
        out.push(Token { tok, at });
    }
}

struct Lexer<'a> {
    source: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.source[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.source[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset: at,
            message: message.into(),
        }
    }

    fn token(&mut self, c: char) -> Result<Tok, SyntaxError> {
        let at = self.pos;
        if c.is_ascii_digit() {
            return self.number();
        }
        if c.is_ascii_alphabetic() || c == '_' {
            return Ok(Tok::Ident(self.name()));
        }
        if c == '\'' || c == '"' {
            return self.string(c);
        }
        if c == '$' {
            self.bump();
            let name = self.name();
            if name.is_empty() {
                return Err(self.error(at, "`$` must be followed by a capture name"));
            }
            return Ok(Tok::Capture(name));
        }
        self.punctuation(c, at)
    }

    fn punctuation(&mut self, c: char, at: usize) -> Result<Tok, SyntaxError> {
        let next = self.peek_second();
        let two = |op| (2, Tok::Op(op));
        let (len, tok) = match (c, next) {
            ('=', Some('=')) => two(Op::Eq),
            ('!', Some('=')) => two(Op::Ne),
            ('<', Some('=')) => two(Op::Le),
            ('>', Some('=')) => two(Op::Ge),
            ('&', Some('&')) => two(Op::And),
            ('|', Some('|')) => two(Op::Or),
            ('=', _) => return Err(self.error(at, "`=` is not an operator; compare with `==`")),
            ('&', _) => return Err(self.error(at, "`&` is not an operator; use `&&`")),
            ('|', _) => return Err(self.error(at, "`|` is not an operator; use `||`")),
            ('<', _) => (1, Tok::Op(Op::Lt)),
            ('>', _) => (1, Tok::Op(Op::Gt)),
            ('!', _) => (1, Tok::Op(Op::Not)),
            ('+', _) => (1, Tok::Op(Op::Plus)),
            ('-', _) => (1, Tok::Op(Op::Minus)),
            ('*', _) => (1, Tok::Op(Op::Star)),
            ('/', _) => (1, Tok::Op(Op::Slash)),
            ('%', _) => (1, Tok::Op(Op::Percent)),
            ('(', _) => (1, Tok::LParen),
            (')', _) => (1, Tok::RParen),
            ('[', _) => (1, Tok::LBracket),
            (']', _) => (1, Tok::RBracket),
            ('{', _) => (1, Tok::LBrace),
            ('}', _) => (1, Tok::RBrace),
            (',', _) => (1, Tok::Comma),
            ('.', _) => (1, Tok::Dot),
            (':', _) => (1, Tok::Colon),
            ('?', _) => (1, Tok::Question),
            (other, _) => return Err(self.error(at, format!("unexpected character {other:?}"))),
        };
        for _ in 0..len {
            self.bump();
        }
        Ok(tok)
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        self.source[start..self.pos].to_string()
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        self.digits();
        let mut float = false;
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.bump();
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            float = true;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error(start, "a number's exponent needs digits"));
            }
            self.digits();
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            return Err(self.error(start, "a number may not run into a name"));
        }
        let text = &self.source[start..self.pos];
        self.parse_number(text, float, start)
    }

    fn parse_number(&self, text: &str, float: bool, at: usize) -> Result<Tok, SyntaxError> {
        if !float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Tok::Number(Number::from(n)));
            }
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Tok::Number)
            .ok_or_else(|| self.error(at, format!("{text} is not a finite number")))
    }

    fn string(&mut self, quote: char) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error(start, "string is not closed"));
            };
            match c {
                c if c == quote => return Ok(Tok::Str(out)),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let at = self.pos - 1;
        let Some(c) = self.bump() else {
            return Err(self.error(at, "string is not closed"));
        };
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            '\\' | '\'' | '"' | '/' => c,
            'u' => return self.unicode_escape(at),
            other => return Err(self.error(at, format!("unknown escape `\\{other}`"))),
        })
    }

    /// `\uXXXX` (four hex digits) or `\u{X…}` (one to six).
    fn unicode_escape(&mut self, at: usize) -> Result<char, SyntaxError> {
        let braced = self.peek() == Some('{');
        if braced {
            self.bump();
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) && self.pos - start < 6 {
            self.bump();
        }
        let hex = &self.source[start..self.pos];
        let well_formed = if braced {
            !hex.is_empty() && self.bump() == Some('}')
        } else {
            hex.len() == 4
        };
        let code = u32::from_str_radix(hex, 16).ok().filter(|_| well_formed);
        code.and_then(char::from_u32)
            .ok_or_else(|| self.error(at, "bad unicode escape: use \\uXXXX or \\u{X…}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(source: &str) -> Vec<Tok> {
        tokens(source).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_operators_names_and_literals() {
        assert_eq!(
            toks("data.x >= 10 && $uid != 'a'"),
            vec![
                Tok::Ident("data".into()),
                Tok::Dot,
                Tok::Ident("x".into()),
                Tok::Op(Op::Ge),
                Tok::Number(10.into()),
                Tok::Op(Op::And),
                Tok::Capture("uid".into()),
                Tok::Op(Op::Ne),
                Tok::Str("a".into()),
                Tok::End,
            ]
        );
    }

    #[test]
    fn numbers_integers_floats_and_exponents() {
        assert_eq!(toks("1")[0], Tok::Number(1.into()));
        assert_eq!(toks("1.5")[0], Tok::Number(Number::from_f64(1.5).unwrap()));
        assert_eq!(
            toks("2e3")[0],
            Tok::Number(Number::from_f64(2000.0).unwrap())
        );
        // `1.x` is member access on 1, not a float.
        assert_eq!(toks("1.x")[1], Tok::Dot);
        assert!(tokens("1e").is_err());
        assert!(tokens("12abc").is_err());
        assert!(tokens("1e999").is_err());
    }

    #[test]
    fn strings_with_escapes() {
        assert_eq!(toks(r#"'it\'s'"#)[0], Tok::Str("it's".into()));
        assert_eq!(toks(r#""a\nb""#)[0], Tok::Str("a\nb".into()));
        assert_eq!(toks(r"'\u00e9\u{1F600}'")[0], Tok::Str("é😀".into()));
        assert!(tokens("'open").is_err());
        assert!(tokens(r"'\q'").is_err());
        assert!(tokens(r"'\u12'").is_err());
        assert!(tokens(r"'\u{D800}'").is_err());
        assert!(tokens("'\\").is_err());
    }

    #[test]
    fn errors_carry_the_offset() {
        let error = tokens("a = b").unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(error.message.contains("=="));
        assert_eq!(tokens("a # b").unwrap_err().offset, 2);
        assert_eq!(tokens("$ x").unwrap_err().offset, 0);
    }
}
