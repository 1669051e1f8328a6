//! Selector matching: anchored regular expressions for id parts, and Kubernetes label selector
//! syntax (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`) for labels and annotations.

use std::collections::BTreeMap;

use regex::Regex;

/// A regular expression that must match a whole value; an empty pattern matches everything.
pub(crate) struct AnchoredRegex(Option<Regex>);

impl AnchoredRegex {
    pub fn new(pattern: &str) -> Result<AnchoredRegex, String> {
        if pattern.is_empty() {
            return Ok(AnchoredRegex(None));
        }
        Regex::new(&format!("^(?:{pattern})$"))
            .map(|r| AnchoredRegex(Some(r)))
            .map_err(|e| format!("invalid regular expression `{pattern}`: {e}"))
    }

    pub fn matches(&self, value: &str) -> bool {
        self.0.as_ref().is_none_or(|r| r.is_match(value))
    }
}

#[derive(Debug, PartialEq)]
enum Operator {
    Exists,
    DoesNotExist,
    Equals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
}

#[derive(Debug)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Default)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut lexer = Lexer {
            chars: text.chars().collect(),
            at: 0,
        };
        let mut requirements = Vec::new();
        if lexer.peek_token().is_none() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(
                lexer
                    .requirement()
                    .map_err(|e| format!("invalid selector `{text}`: {e}"))?,
            );
            match lexer.token() {
                None => break,
                Some(Token::Comma) => continue,
                Some(other) => {
                    return Err(format!("invalid selector `{text}`: unexpected {other:?}"));
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator {
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::Equals | Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotEquals | Operator::NotIn => {
                    value.is_none_or(|v| !r.values.contains(v))
                }
                Operator::GreaterThan | Operator::LessThan => {
                    let (Some(Ok(have)), Some(Ok(want))) = (
                        value.map(|v| v.parse::<i64>()),
                        r.values.first().map(|v| v.parse::<i64>()),
                    ) else {
                        return false;
                    };
                    if r.operator == Operator::GreaterThan {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Comma,
    Open,
    Close,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Greater,
    Less,
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    fn peek_token(&mut self) -> Option<Token> {
        let at = self.at;
        let token = self.token();
        self.at = at;
        token
    }

    fn token(&mut self) -> Option<Token> {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
        let c = *self.chars.get(self.at)?;
        let next = self.chars.get(self.at + 1).copied();
        let (token, width) = match (c, next) {
            (',', _) => (Token::Comma, 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('!', Some('=')) => (Token::NotEquals, 2),
            ('!', _) => (Token::Not, 1),
            ('=', Some('=')) => (Token::DoubleEquals, 2),
            ('=', _) => (Token::Equals, 1),
            ('>', _) => (Token::Greater, 1),
            ('<', _) => (Token::Less, 1),
            _ => {
                let start = self.at;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(|c| !c.is_whitespace() && !",()!=<>".contains(*c))
                {
                    self.at += 1;
                }
                return Some(Token::Word(self.chars[start..self.at].iter().collect()));
            }
        };
        self.at += width;
        Some(token)
    }

    fn word(&mut self) -> Result<String, String> {
        match self.token() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expected a key or value, found {other:?}")),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.peek_token() == Some(Token::Not) {
            self.token();
            let key = self.word()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        let key = self.word()?;
        let requirement = |operator, values| {
            Ok(Requirement {
                key: key.clone(),
                operator,
                values,
            })
        };
        match self.peek_token() {
            None | Some(Token::Comma) => requirement(Operator::Exists, Vec::new()),
            Some(Token::Equals | Token::DoubleEquals) => {
                self.token();
                requirement(Operator::Equals, vec![self.optional_value()])
            }
            Some(Token::NotEquals) => {
                self.token();
                requirement(Operator::NotEquals, vec![self.optional_value()])
            }
            Some(Token::Greater) => {
                self.token();
                requirement(Operator::GreaterThan, vec![self.word()?])
            }
            Some(Token::Less) => {
                self.token();
                requirement(Operator::LessThan, vec![self.word()?])
            }
            Some(Token::Word(w)) if w == "in" || w == "notin" => {
                self.token();
                let operator = if w == "in" {
                    Operator::In
                } else {
                    Operator::NotIn
                };
                requirement(operator, self.value_set()?)
            }
            Some(other) => Err(format!("unexpected {other:?} after key `{key}`")),
        }
    }

    /// A value after `=`/`!=`, which may be empty.
    fn optional_value(&mut self) -> String {
        match self.peek_token() {
            Some(Token::Word(w)) => {
                self.token();
                w
            }
            _ => String::new(),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        if self.token() != Some(Token::Open) {
            return Err("expected `(`".to_string());
        }
        let mut values = Vec::new();
        loop {
            match self.token() {
                Some(Token::Close) => return Ok(values),
                Some(Token::Comma) => {
                    if self.peek_token() == Some(Token::Close)
                        || self.peek_token() == Some(Token::Comma)
                    {
                        values.push(String::new());
                    }
                }
                Some(Token::Word(w)) => values.push(w),
                other => return Err(format!("unexpected {other:?} in value set")),
            }
        }
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

    #[test]
    fn label_selectors_match() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (selector, expected) in [
            ("", true),
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("tier notin (front)", false),
            ("!missing", true),
            ("missing", false),
            ("app", true),
        ] {
            assert_eq!(
                LabelSelector::parse(selector).unwrap().matches(&l),
                expected,
                "{selector}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn regexes_are_anchored() {
        assert!(AnchoredRegex::new("web").unwrap().matches("web"));
        assert!(!AnchoredRegex::new("web").unwrap().matches("web2"));
        assert!(AnchoredRegex::new("web.*").unwrap().matches("web2"));
        assert!(AnchoredRegex::new("").unwrap().matches("anything"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_selectors_never_panics(text in ".{0,40}") {
            let _ = LabelSelector::parse(&text);
            let _ = AnchoredRegex::new(&text);
        }
    }
}

/// A selector field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSelector(String);

/// The parts of a target selector, as kustomize's and Flux's `target` fields name them.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelectorFields<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub label_selector: &'a str,
    pub annotation_selector: &'a str,
}

/// A target selector with kustomize's semantics (anchored regular expressions for the id
/// parts, label selector syntax for labels and annotations), matched against JSON objects.
pub struct ObjectSelector {
    parts: [AnchoredRegex; 5],
    labels: LabelSelector,
    annotations: LabelSelector,
}

impl ObjectSelector {
    /// Parses every part; an empty part matches everything.
    pub fn new(fields: SelectorFields<'_>) -> Result<ObjectSelector, InvalidSelector> {
        let regex = |pattern: &str| AnchoredRegex::new(pattern).map_err(InvalidSelector);
        Ok(ObjectSelector {
            parts: [
                regex(fields.group)?,
                regex(fields.version)?,
                regex(fields.kind)?,
                regex(fields.name)?,
                regex(fields.namespace)?,
            ],
            labels: LabelSelector::parse(fields.label_selector).map_err(InvalidSelector)?,
            annotations: LabelSelector::parse(fields.annotation_selector)
                .map_err(InvalidSelector)?,
        })
    }

    /// Whether the Kubernetes object `object` is selected.
    pub fn matches(&self, object: &serde_json::Value) -> bool {
        let text = |pointer: &str| object.pointer(pointer).and_then(|v| v.as_str());
        let api_version = text("/apiVersion").unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let values = [
            group,
            version,
            text("/kind").unwrap_or_default(),
            text("/metadata/name").unwrap_or_default(),
            text("/metadata/namespace").unwrap_or_default(),
        ];
        let map = |pointer: &str| -> BTreeMap<String, String> {
            object
                .pointer(pointer)
                .and_then(|v| v.as_object())
                .map(|entries| {
                    entries
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        self.parts
            .iter()
            .zip(values)
            .all(|(part, value)| part.matches(value))
            && self.labels.matches(&map("/metadata/labels"))
            && self.annotations.matches(&map("/metadata/annotations"))
    }
}
