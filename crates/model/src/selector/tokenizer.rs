//! Tokens of Calico's selector language, split the way Calico's tokenizer does
//! (`libcalico-go/lib/selector/tokenizer/tokenizer.go`): operators after a label are words
//! (`in`, `not in`, `contains`, `starts with`, `ends with`), strings take `"` or `'`, and only
//! spaces and tabs separate tokens.

/// Longest label Calico accepts.
pub const MAX_LABEL_LENGTH: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Label(String),
    Str(String),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    Not,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Global,
    Has(String),
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Label(l) => format!("label {l:?}"),
            Token::Str(s) => format!("string {s:?}"),
            Token::LBrace => "'{'".into(),
            Token::RBrace => "'}'".into(),
            Token::Comma => "','".into(),
            Token::Eq => "'=='".into(),
            Token::Ne => "'!='".into(),
            Token::In => "'in'".into(),
            Token::Not => "'!'".into(),
            Token::NotIn => "'not in'".into(),
            Token::Contains => "'contains'".into(),
            Token::StartsWith => "'starts with'".into(),
            Token::EndsWith => "'ends with'".into(),
            Token::All => "'all()'".into(),
            Token::Global => "'global()'".into(),
            Token::Has(l) => format!("'has({l})'"),
            Token::LParen => "'('".into(),
            Token::RParen => "')'".into(),
            Token::And => "'&&'".into(),
            Token::Or => "'||'".into(),
            Token::Eof => "end of selector".into(),
        }
    }
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

fn trim_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

fn word_boundary(s: &str) -> bool {
    s.bytes().next().is_none_or(|c| !ident_char(c))
}

/// Strips `prefix` if what follows is not an identifier character.
fn cut_word<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix).filter(|rest| word_boundary(rest))
}

/// Strips the words of a multi-word operator (`starts with`), spaces between them allowed.
fn cut_words<'a>(s: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = s;
    for w in words {
        rest = trim_ws(rest.strip_prefix(w)?);
    }
    word_boundary(rest).then_some(rest)
}

fn cut_ident(s: &str) -> Result<(&str, &str), String> {
    let n = s.bytes().take_while(|c| ident_char(*c)).count();
    if n == 0 {
        let what = s
            .chars()
            .next()
            .map(|c| format!("{c:?}"))
            .unwrap_or_else(|| "end".into());
        return Err(format!("expected identifier, found {what}"));
    }
    if n > MAX_LABEL_LENGTH {
        return Err(format!("label too long: {}", &s[..n]));
    }
    Ok((&s[..n], &s[n..]))
}

/// Splits a selector into tokens, ending with [`Token::Eof`].
pub fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut s = input;
    loop {
        s = trim_ws(s);
        let Some(first) = s.bytes().next() else {
            tokens.push(Token::Eof);
            return Ok(tokens);
        };
        let after_label = matches!(tokens.last(), Some(Token::Label(_)));
        s = match first {
            b'(' => {
                tokens.push(Token::LParen);
                &s[1..]
            }
            b')' => {
                tokens.push(Token::RParen);
                &s[1..]
            }
            b'"' | b'\'' => {
                let q = first as char;
                let body = &s[1..];
                let end = body.find(q).ok_or_else(|| "unterminated string".to_string())?;
                tokens.push(Token::Str(body[..end].to_string()));
                &body[end + 1..]
            }
            b'{' => {
                tokens.push(Token::LBrace);
                &s[1..]
            }
            b'}' => {
                tokens.push(Token::RBrace);
                &s[1..]
            }
            b',' => {
                tokens.push(Token::Comma);
                &s[1..]
            }
            b'=' => {
                let rest = s.strip_prefix("==").ok_or("expected ==")?;
                tokens.push(Token::Eq);
                rest
            }
            b'!' => {
                if let Some(rest) = s.strip_prefix("!=") {
                    tokens.push(Token::Ne);
                    rest
                } else {
                    tokens.push(Token::Not);
                    &s[1..]
                }
            }
            b'&' => {
                let rest = s.strip_prefix("&&").ok_or("expected &&")?;
                tokens.push(Token::And);
                rest
            }
            b'|' => {
                let rest = s.strip_prefix("||").ok_or("expected ||")?;
                tokens.push(Token::Or);
                rest
            }
            _ if after_label => {
                let ops: [(&[&str], Token); 5] = [
                    (&["contains"], Token::Contains),
                    (&["starts", "with"], Token::StartsWith),
                    (&["ends", "with"], Token::EndsWith),
                    (&["not", "in"], Token::NotIn),
                    (&["in"], Token::In),
                ];
                let mut found = None;
                for (words, tok) in ops {
                    let rest = if words.len() == 1 {
                        cut_word(s, words[0])
                    } else {
                        cut_words(s, words)
                    };
                    if let Some(rest) = rest {
                        found = Some((rest, tok));
                        break;
                    }
                }
                let Some((rest, tok)) = found else {
                    let Some(Token::Label(l)) = tokens.last() else {
                        unreachable!("after_label checked the last token")
                    };
                    return Err(format!("expected operator after label {l:?}"));
                };
                tokens.push(tok);
                rest
            }
            _ => {
                if let Some(rest) = s.strip_prefix("has(") {
                    let (ident, rest) = cut_ident(trim_ws(rest))?;
                    let rest = trim_ws(rest)
                        .strip_prefix(')')
                        .ok_or("no closing ')' after has(")?;
                    tokens.push(Token::Has(ident.to_string()));
                    rest
                } else if let Some(rest) = s.strip_prefix("all(") {
                    let rest = trim_ws(rest)
                        .strip_prefix(')')
                        .ok_or("no closing ')' after all(")?;
                    tokens.push(Token::All);
                    rest
                } else if let Some(rest) = s.strip_prefix("global(") {
                    let rest = trim_ws(rest)
                        .strip_prefix(')')
                        .ok_or("no closing ')' after global(")?;
                    tokens.push(Token::Global);
                    rest
                } else {
                    let (ident, rest) = cut_ident(s)?;
                    tokens.push(Token::Label(ident.to_string()));
                    rest
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_after_labels() {
        let t = tokenize("a starts  with 'x' && b not in {\"y\", 'z'} || !has( c )").unwrap();
        assert_eq!(
            t,
            vec![
                Token::Label("a".into()),
                Token::StartsWith,
                Token::Str("x".into()),
                Token::And,
                Token::Label("b".into()),
                Token::NotIn,
                Token::LBrace,
                Token::Str("y".into()),
                Token::Comma,
                Token::Str("z".into()),
                Token::RBrace,
                Token::Or,
                Token::Not,
                Token::Has("c".into()),
                Token::Eof,
            ]
        );
    }

    #[test]
    fn word_operators_need_a_boundary() {
        // `inx` is not `in` followed by `x`.
        assert!(tokenize("a inx {}").is_err());
        assert_eq!(tokenize("a == 'b'").unwrap()[1], Token::Eq);
        assert_eq!(tokenize("a = 'b'").unwrap_err(), "expected ==");
        assert_eq!(tokenize("a & b").unwrap_err(), "expected &&");
        assert_eq!(tokenize("'abc").unwrap_err(), "unterminated string");
        assert_eq!(
            tokenize("a b").unwrap_err(),
            "expected operator after label \"a\""
        );
    }
}
