//! Firebase's regular expressions (the `/…/` of `matches`), translated to the `regex` crate.
//!
//! Firebase accepts a subset of JavaScript's syntax (its "Security Rules Regular Expressions"
//! page): literal characters, `.`, `\d \w \s \D \W \S`, `\` before any other character
//! meaning that character literally, classes `[…]` and `[^…]` with ranges, groups `(…)`,
//! alternatives `a|b`, the quantifiers `* + ? {n} {n,} {n,m}`, `^` only as the first
//! character and `$` only as the last, and the one flag `i`. Anything else is an error when
//! the rules load, as Firebase refuses to deploy it.
//!
//! The translation keeps JavaScript's meaning where the crates differ: `.` does not match
//! line terminators, `\d` and `\w` are ASCII, `\s` is JavaScript's list of spaces. Groups
//! become non-capturing: only whether a string matches is ever asked.

use regex::{Regex, RegexBuilder};

use crate::limits::{MAX_REGEX_BYTES, MAX_REGEX_REPEAT};

/// JavaScript's `\s`: its white space and line terminators.
const SPACES: &str =
    r"\t\n\x0B\x0C\r \xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";

/// The pattern of `/pattern/flags` compiled, or why Firebase would refuse it.
pub(crate) fn compile(pattern: &str, flags: &str) -> Result<Regex, String> {
    let case_insensitive = match flags {
        "" => false,
        "i" => true,
        other => {
            return Err(format!(
                "unsupported regular expression flags `{other}`: only `i` is supported"
            ))
        }
    };
    let translated = translate(pattern)?;
    let source = if case_insensitive {
        format!("(?i){translated}")
    } else {
        translated
    };
    RegexBuilder::new(&source)
        .size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "the regular expression compiles to more than {limit} bytes (MAX_REGEX_BYTES)"
            ),
            other => format!("invalid regular expression: {other}"),
        })
}

/// The pattern in the `regex` crate's syntax.
fn translate(pattern: &str) -> Result<String, String> {
    let mut chars: Vec<char> = pattern.chars().collect();
    let starts = chars.first() == Some(&'^');
    if starts {
        chars.remove(0);
    }
    let ends = ends_with_anchor(&chars);
    if ends {
        chars.pop();
    }
    let mut parser = Parser { chars, pos: 0 };
    let body = parser.alternatives(0)?;
    if let Some(c) = parser.peek() {
        return Err(format!("unexpected `{c}` in the regular expression"));
    }
    let mut out = String::new();
    if starts {
        out.push('^');
    }
    out.push_str(&body);
    if ends {
        out.push('$');
    }
    Ok(out)
}

/// Whether the last character is a `$` that is not escaped.
fn ends_with_anchor(chars: &[char]) -> bool {
    if chars.last() != Some(&'$') {
        return false;
    }
    let backslashes = chars[..chars.len() - 1]
        .iter()
        .rev()
        .take_while(|c| **c == '\\')
        .count();
    backslashes % 2 == 0
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

/// One member of a class `[…]`.
enum Item {
    Char(char),
    Range(char, char),
    Class(char),
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn alternatives(&mut self, depth: usize) -> Result<String, String> {
        let mut out = self.sequence(depth)?;
        while self.peek() == Some('|') {
            self.bump();
            out.push('|');
            out.push_str(&self.sequence(depth)?);
        }
        Ok(out)
    }

    /// Atoms with their quantifiers, up to `|`, `)` or the end; never empty (Firebase
    /// refuses `(a|)`).
    fn sequence(&mut self, depth: usize) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            out.push_str(&self.atom(depth)?);
            out.push_str(&self.quantifier()?);
        }
        if out.is_empty() {
            return Err("empty alternative or group in the regular expression".into());
        }
        Ok(out)
    }

    fn atom(&mut self, depth: usize) -> Result<String, String> {
        let Some(c) = self.bump() else {
            return Err("the regular expression ends too early".into());
        };
        match c {
            '(' => self.group(depth),
            '[' => self.class(),
            '.' => Ok(r"[^\n\r\x{2028}\x{2029}]".into()),
            '\\' => match self.bump() {
                Some(e @ ('d' | 'D' | 'w' | 'W' | 's' | 'S')) => Ok(class_escape(e)),
                Some(e) => Ok(regex::escape(e.encode_utf8(&mut [0; 4]))),
                None => Err("the regular expression ends with a lone `\\`".into()),
            },
            '^' => Err("`^` can only be the first character of a regular expression".into()),
            '$' => Err("`$` can only be the last character of a regular expression".into()),
            '*' | '+' | '?' => Err(format!("nothing to repeat before `{c}`")),
            '{' => Err("`{` must be escaped outside a repetition like `{2,3}`".into()),
            c => Ok(regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }

    fn group(&mut self, depth: usize) -> Result<String, String> {
        if depth >= crate::limits::MAX_EXPRESSION_DEPTH {
            return Err("the regular expression nests groups too deeply".into());
        }
        let inner = self.alternatives(depth + 1)?;
        if self.bump() != Some(')') {
            return Err("unclosed `(` in the regular expression".into());
        }
        Ok(format!("(?:{inner})"))
    }

    fn quantifier(&mut self) -> Result<String, String> {
        let mut out = match self.peek() {
            Some(c @ ('*' | '+' | '?')) => {
                self.bump();
                c.to_string()
            }
            Some('{') => {
                self.bump();
                self.repetition()?
            }
            _ => return Ok(String::new()),
        };
        // A `?` after a quantifier makes it lazy: the same strings match.
        if self.peek() == Some('?') {
            self.bump();
            out.push('?');
        }
        if let Some(c @ ('*' | '+' | '?' | '{')) = self.peek() {
            return Err(format!("nothing to repeat before `{c}`"));
        }
        Ok(out)
    }

    /// `{n}`, `{n,}` or `{n,m}`, after the `{`.
    fn repetition(&mut self) -> Result<String, String> {
        let min = self.count()?;
        let max = if self.peek() == Some(',') {
            self.bump();
            if self.peek() == Some('}') {
                None
            } else {
                Some(self.count()?)
            }
        } else {
            Some(min)
        };
        if self.bump() != Some('}') {
            return Err("malformed repetition `{…}` in the regular expression".into());
        }
        match max {
            None => Ok(format!("{{{min},}}")),
            Some(max) if max < min => Err(format!("repetition `{{{min},{max}}}` is backwards")),
            Some(max) if max == min => Ok(format!("{{{min}}}")),
            Some(max) => Ok(format!("{{{min},{max}}}")),
        }
    }

    fn count(&mut self) -> Result<u32, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        match digits.parse::<u32>() {
            Ok(n) if n <= MAX_REGEX_REPEAT => Ok(n),
            Ok(_) | Err(_) if !digits.is_empty() => Err(format!(
                "repetition count {digits} is more than {MAX_REGEX_REPEAT} (MAX_REGEX_REPEAT)"
            )),
            _ => Err("malformed repetition `{…}` in the regular expression".into()),
        }
    }

    /// A class `[…]` or `[^…]`, after the `[`.
    fn class(&mut self) -> Result<String, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.bump();
        }
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unclosed `[` in the regular expression".into()),
                Some(']') => {
                    self.bump();
                    break;
                }
                Some(_) => items.push(self.class_item()?),
            }
        }
        if items.is_empty() {
            return Err("empty class `[]` in the regular expression".into());
        }
        let mut out = String::from(if negated { "[^" } else { "[" });
        for item in items {
            match item {
                Item::Char(c) => out.push_str(&hex(c)),
                Item::Range(a, b) => out.push_str(&format!("{}-{}", hex(a), hex(b))),
                Item::Class(e) => out.push_str(&class_member(e)),
            }
        }
        out.push(']');
        Ok(out)
    }

    fn class_item(&mut self) -> Result<Item, String> {
        let first = self.class_char()?;
        let Item::Char(start) = first else {
            return Ok(first);
        };
        let is_range = self.peek() == Some('-') && self.chars.get(self.pos + 1) != Some(&']');
        if !is_range {
            return Ok(first);
        }
        self.bump();
        match self.class_char()? {
            Item::Char(end) if end >= start => Ok(Item::Range(start, end)),
            Item::Char(end) => Err(format!("range `{start}-{end}` is backwards")),
            _ => Err("a range in a class cannot end with `\\d`, `\\w` or `\\s`".into()),
        }
    }

    fn class_char(&mut self) -> Result<Item, String> {
        match self.bump() {
            Some('\\') => match self.bump() {
                Some(e @ ('d' | 'D' | 'w' | 'W' | 's' | 'S')) => Ok(Item::Class(e)),
                Some(e) => Ok(Item::Char(e)),
                None => Err("unclosed `[` in the regular expression".into()),
            },
            Some(c) => Ok(Item::Char(c)),
            None => Err("unclosed `[` in the regular expression".into()),
        }
    }
}

/// A character written so that no class syntax can misread it.
fn hex(c: char) -> String {
    format!(r"\x{{{:X}}}", u32::from(c))
}

/// The members of `\d`, `\w` or `\s` (lower case), for use inside a class.
fn class_body(e: char) -> &'static str {
    match e.to_ascii_lowercase() {
        'd' => "0-9",
        'w' => "0-9A-Za-z_",
        _ => SPACES,
    }
}

/// `\d`…`\S` inside a class: a nested class, which the `regex` crate unites.
fn class_member(e: char) -> String {
    if e.is_ascii_uppercase() {
        format!("[^{}]", class_body(e))
    } else {
        format!("[{}]", class_body(e))
    }
}

/// `\d`…`\S` on their own: exact even under the `i` flag, as in JavaScript.
fn class_escape(e: char) -> String {
    format!("(?-i:{})", class_member(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, flags: &str, text: &str) -> bool {
        compile(pattern, flags).unwrap().is_match(text)
    }

    #[test]
    fn firebase_documented_examples() {
        assert!(matches("a", "", "ba"));
        assert!(!matches("^a", "", "ba"));
        assert!(matches("a", "", "ab"));
        assert!(!matches("a$", "", "ab"));
        assert!(matches("^a*$", "", "") && matches("^a*$", "", "aaa") && !matches("^a*$", "", "b"));
        assert!(matches("^a+$", "", "aaa") && !matches("^a+$", "", ""));
        assert!(matches("^a?$", "", "a") && !matches("^a?$", "", "aa"));
        assert!(matches("........", "", "Firebase"));
        assert!(matches("(ab)*", "", "abab"));
        assert!(matches("a|bc", "", "ac") && matches("a|bc", "", "bc"));
        assert!(matches("[akz]", "", "aaa") && !matches("^[akz]*$", "", "abc"));
        assert!(matches("[^akz]", "", "b"));
        assert!(matches("^[a-z]{2,3}$", "", "abc") && !matches("^[a-z]{2,3}$", "", "abcd"));
        assert!(matches("^foo", "", "foobar"));
        assert!(matches("BAR", "i", "bar"));
        assert!(matches("\\{foo}", "", "{foo}"));
    }

    #[test]
    fn classes_are_javascript_classes() {
        assert!(matches("^\\d+$", "", "0123") && !matches("\\d", "", "٣"));
        assert!(matches("^\\w+$", "", "a_Z9") && !matches("\\w", "", "é"));
        assert!(matches("^\\s$", "", "\u{a0}") && !matches("\\S", "", " "));
        assert!(!matches(".", "", "\n") && matches("^.$", "", "é"));
        assert!(matches("^[\\d-]+$", "", "12-3") && matches("^[a\\]]+$", "", "a]"));
        assert!(matches("^[\\W]$", "", "-") && !matches("^[\\W]$", "", "a"));
        assert!(
            matches("^\\.\\n$", "", ".n"),
            "an escaped letter is that letter"
        );
        assert!(!matches("^\\w$", "i", "\u{17F}"), "\\w stays ASCII under i");
        // Literal letters under `i` fold as Unicode does (JavaScript's non-Unicode `i` would
        // not match these): a documented difference (ORACLE.md).
        assert!(matches("^s$", "i", "\u{17F}") && matches("^k$", "i", "\u{212A}"));
    }

    #[test]
    fn what_firebase_refuses_is_refused() {
        for (pattern, flags) in [
            ("bar", "ig"),
            ("bar", "g"),
            ("(^foo$|bar)", ""),
            ("^(foo|)$", ""),
            ("a^b", ""),
            ("a$b", ""),
            ("*a", ""),
            ("a**", ""),
            ("a{2", ""),
            ("a{3,2}", ""),
            ("a{1001}", ""),
            ("[]", ""),
            ("[z-a]", ""),
            ("(a", ""),
            ("a)", ""),
            ("{", ""),
            ("^", ""),
        ] {
            assert!(compile(pattern, flags).is_err(), "/{pattern}/{flags}");
        }
    }

    #[test]
    fn an_escaped_dollar_at_the_end_is_a_dollar() {
        assert!(matches("a\\$", "", "a$"));
        assert!(!matches("a\\$", "", "a"));
        assert!(matches("^a\\\\$", "", "a\\"));
    }

    #[test]
    fn a_huge_program_is_refused() {
        let err = compile("(\\w{1000}){1000}", "").unwrap_err();
        assert!(err.contains("MAX_REGEX_BYTES"), "{err}");
    }
}
