//! Calico's label selector language (`libcalico-go/lib/selector`): parse, evaluate against a
//! label map, print in Calico's canonical form.
//!
//! Grammar (as Calico's recursive-descent parser):
//! ```text
//! selector := ε | or
//! or       := and ('||' and)*
//! and      := op ('&&' op)*
//! op       := '!'* ( 'all()' | 'global()' | 'has(' label ')' | '(' or ')'
//!                  | label ('==' | '!=' | 'contains' | 'starts with' | 'ends with') string
//!                  | label ('in' | 'not in') '{' [string (',' string)* [',']] '}' )
//! ```
//! An empty selector selects everything. `k != 'v'` and `k not in {…}` also match objects
//! without `k`; `contains`, `starts with` and `ends with` need the label.

mod tokenizer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

pub use tokenizer::MAX_LABEL_LENGTH;
use tokenizer::{Token, tokenize};

use crate::error::SelectorError;

/// Read access to a set of labels.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A parsed selector expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    All,
    Global,
    Has(String),
    Eq(String, String),
    Ne(String, String),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    pub fn evaluate<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(k) => labels.label(k).is_some(),
            Expr::Eq(k, v) => labels.label(k) == Some(v.as_str()),
            Expr::Ne(k, v) => labels.label(k) != Some(v.as_str()),
            Expr::Contains(k, v) => labels.label(k).is_some_and(|l| l.contains(v.as_str())),
            Expr::StartsWith(k, v) => labels.label(k).is_some_and(|l| l.starts_with(v.as_str())),
            Expr::EndsWith(k, v) => labels.label(k).is_some_and(|l| l.ends_with(v.as_str())),
            Expr::In(k, set) => labels.label(k).is_some_and(|l| set.contains(l)),
            Expr::NotIn(k, set) => labels.label(k).is_none_or(|l| !set.contains(l)),
            Expr::Not(e) => !e.evaluate(labels),
            Expr::And(es) => es.iter().all(|e| e.evaluate(labels)),
            Expr::Or(es) => es.iter().any(|e| e.evaluate(labels)),
        }
    }
}

/// Quotes like Calico: `"` unless the value contains `"`, then `'`.
fn quote(s: &str) -> String {
    if s.contains('"') {
        format!("'{s}'")
    } else {
        format!("\"{s}\"")
    }
}

impl fmt::Display for Expr {
    /// Calico's canonical text (`Selector.String()`): `&&`/`||` groups in parentheses, values
    /// in double quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |f: &mut fmt::Formatter<'_>, k: &str, op: &str, vs: &BTreeSet<String>| {
            let items: Vec<String> = vs.iter().map(|v| quote(v)).collect();
            write!(f, "{k} {op} {{{}}}", items.join(", "))
        };
        let group = |f: &mut fmt::Formatter<'_>, es: &[Expr], sep: &str| {
            let items: Vec<String> = es.iter().map(ToString::to_string).collect();
            write!(f, "({})", items.join(sep))
        };
        match self {
            Expr::All => f.write_str("all()"),
            Expr::Global => f.write_str("global()"),
            Expr::Has(k) => write!(f, "has({k})"),
            Expr::Eq(k, v) => write!(f, "{k} == {}", quote(v)),
            Expr::Ne(k, v) => write!(f, "{k} != {}", quote(v)),
            Expr::Contains(k, v) => write!(f, "{k} contains {}", quote(v)),
            Expr::StartsWith(k, v) => write!(f, "{k} starts with {}", quote(v)),
            Expr::EndsWith(k, v) => write!(f, "{k} ends with {}", quote(v)),
            Expr::In(k, vs) => set(f, k, "in", vs),
            Expr::NotIn(k, vs) => set(f, k, "not in", vs),
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::And(es) => group(f, es, " && "),
            Expr::Or(es) => group(f, es, " || "),
        }
    }
}

/// A parsed selector with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    source: String,
    expr: Expr,
}

impl Selector {
    /// Parses a selector; the empty selector selects everything.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let err = |reason: String| SelectorError {
            selector: text.to_string(),
            reason,
        };
        let tokens = tokenize(text).map_err(err)?;
        let expr = if tokens[0] == Token::Eof {
            Expr::All
        } else {
            let mut p = Parser {
                tokens: &tokens,
                pos: 0,
            };
            let e = p.or().map_err(err)?;
            if p.peek() != &Token::Eof {
                return Err(err(format!(
                    "unexpected {} at end of selector",
                    p.peek().describe()
                )));
            }
            e
        };
        Ok(Selector {
            source: text.to_string(),
            expr,
        })
    }

    /// Whether the labels match.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.expr.evaluate(labels)
    }

    /// The text the selector was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether the selector text uses `global()` anywhere.
    pub fn uses_global(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::Global => true,
                Expr::Not(e) => walk(e),
                Expr::And(es) | Expr::Or(es) => es.iter().any(walk),
                _ => false,
            }
        }
        walk(&self.expr)
    }
}

impl fmt::Display for Selector {
    /// The canonical form (see [`Expr`]'s `Display`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

/// Whether the selector is `global()` and nothing else (whitespace aside), as Calico's
/// validator checks a rule's `namespaceSelector` by its tokens.
pub fn is_global_alone(text: &str) -> bool {
    tokenize(text).is_ok_and(|t| t == [Token::Global, Token::Eof])
}

/// Parses `text` and evaluates it against `labels` in one go.
pub fn matches<L: Labels + ?Sized>(text: &str, labels: &L) -> Result<bool, SelectorError> {
    Ok(Selector::parse(text)?.matches(labels))
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The tokenizer always ends with Eof and the parser never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t != Token::Eof {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.peek() == &Token::Or {
            self.next();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.op()?];
        while self.peek() == &Token::And {
            self.next();
            items.push(self.op()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Token::Str(s) => Ok(s),
            t => Err(format!("expected a quoted string, found {}", t.describe())),
        }
    }

    fn set(&mut self) -> Result<BTreeSet<String>, String> {
        if self.next() != Token::LBrace {
            return Err("expected set literal '{…}'".into());
        }
        let mut set = BTreeSet::new();
        while let Token::Str(s) = self.peek() {
            set.insert(s.clone());
            self.next();
            if self.peek() == &Token::Comma {
                self.next();
            } else {
                break;
            }
        }
        match self.next() {
            Token::RBrace => Ok(set),
            t => Err(format!("expected '}}', found {}", t.describe())),
        }
    }

    fn op(&mut self) -> Result<Expr, String> {
        let mut negated = false;
        while self.peek() == &Token::Not {
            self.next();
            negated = !negated;
        }
        let e = match self.next() {
            Token::All => Expr::All,
            Token::Global => Expr::Global,
            Token::Has(k) => Expr::Has(k),
            Token::LParen => {
                let e = self.or()?;
                match self.next() {
                    Token::RParen => e,
                    t => return Err(format!("expected ')', found {}", t.describe())),
                }
            }
            Token::Label(k) => match self.next() {
                Token::Eq => Expr::Eq(k, self.string()?),
                Token::Ne => Expr::Ne(k, self.string()?),
                Token::Contains => Expr::Contains(k, self.string()?),
                Token::StartsWith => Expr::StartsWith(k, self.string()?),
                Token::EndsWith => Expr::EndsWith(k, self.string()?),
                Token::In => Expr::In(k, self.set()?),
                Token::NotIn => Expr::NotIn(k, self.set()?),
                Token::Eof => return Err("unexpected end of string looking for op".into()),
                t => {
                    return Err(format!(
                        "expected == or != after label {k:?}, found {}",
                        t.describe()
                    ));
                }
            },
            Token::Eof => return Err("unexpected end of string looking for op".into()),
            t => return Err(format!("unexpected {}", t.describe())),
        };
        Ok(if negated { Expr::Not(Box::new(e)) } else { e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(sel: &str, l: &[(&str, &str)]) -> bool {
        matches(sel, &labels(l)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn evaluation() {
        let l = [("role", "worker"), ("zone", "eu-west-1a"), ("x.io/y", "z")];
        assert!(m("", &l));
        assert!(m("all()", &l));
        assert!(m("global()", &l));
        assert!(m("has(role)", &l));
        assert!(!m("!has(role)", &l));
        assert!(m("!has(gpu)", &l));
        assert!(m("role == 'worker'", &l));
        assert!(m("role == \"worker\"", &l));
        assert!(!m("role != 'worker'", &l));
        assert!(m("gpu != 'yes'", &l), "!= matches a missing label");
        assert!(m("role in {'a', 'worker'}", &l));
        assert!(!m("gpu in {'a'}", &l));
        assert!(m("gpu not in {'a'}", &l), "not in matches a missing label");
        assert!(!m("role not in {'worker'}", &l));
        assert!(m("zone contains 'west'", &l));
        assert!(!m("gpu contains ''", &l), "contains needs the label");
        assert!(m("zone starts with 'eu-'", &l));
        assert!(m("zone ends with '1a'", &l));
        assert!(m("x.io/y == 'z'", &l));
        assert!(m("role == 'x' || zone ends with 'a'", &l));
        assert!(!m("role == 'worker' && zone == 'us'", &l));
        assert!(m("!(role == 'x' || zone == 'y')", &l));
        assert!(m("!!has(role)", &l));
        assert!(m("(role == 'worker') && (has(zone) || has(nope))", &l));
        assert!(!m("role in {}", &[("role", "")]));
        assert!(m("a in {'1',}", &[("a", "1")]), "trailing comma in a set");
    }

    #[test]
    fn precedence_and_binds_tighter() {
        // a || b && c  ==  a || (b && c)
        assert!(m("has(a) || has(b) && has(c)", &[("a", "")]));
        assert!(!m("(has(a) || has(b)) && has(c)", &[("a", "")]));
    }

    #[test]
    fn canonical_text() {
        let s = Selector::parse("a=='x'&&b in {'z','y'} || !has(c)").unwrap();
        assert_eq!(s.to_string(), r#"((a == "x" && b in {"y", "z"}) || !has(c))"#);
        assert_eq!(
            Selector::parse("k == 'say \"hi\"'").unwrap().to_string(),
            r#"k == 'say "hi"'"#
        );
        assert_eq!(Selector::parse("").unwrap().to_string(), "all()");
        assert_eq!(s.source(), "a=='x'&&b in {'z','y'} || !has(c)");
    }

    #[test]
    fn parse_errors_are_clear() {
        let cases = [
            ("a ==", "expected a quoted string, found end of selector"),
            ("a == b", "expected a quoted string, found label \"b\""),
            ("(has(a)", "expected ')', found end of selector"),
            ("has(a) has(b)", "unexpected 'has(b)' at end of selector"),
            ("a in 'x'", "expected set literal '{…}'"),
            ("a in {'x'", "expected '}', found end of selector"),
            ("&& a", "unexpected '&&'"),
            ("has(", "expected identifier, found end"),
            ("all(", "no closing ')' after all("),
            ("a", "unexpected end of string looking for op"),
            ("!", "unexpected end of string looking for op"),
            ("a == 'x' ||", "unexpected end of string looking for op"),
        ];
        for (sel, want) in cases {
            let e = Selector::parse(sel).unwrap_err();
            assert_eq!(e.reason, want, "selector {sel:?}");
            assert_eq!(e.selector, sel);
        }
        assert!(Selector::parse(&"a".repeat(513)).is_err());
    }

    #[test]
    fn global_detection() {
        assert!(is_global_alone(" global( ) "));
        assert!(!is_global_alone("(global())"));
        assert!(!is_global_alone("global() && has(a)"));
        assert!(Selector::parse("global() && has(a)").unwrap().uses_global());
        assert!(!Selector::parse("all()").unwrap().uses_global());
    }
}
