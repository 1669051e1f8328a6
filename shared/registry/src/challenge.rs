//! `WWW-Authenticate` challenges (RFC 7235) as registries send them, and the `Link` header
//! (RFC 8288) that points to the next page of a tag list.

/// What a registry asks for when it answers 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=…,service=…,scope=…`: fetch a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// `Basic realm=…`: send the username and password with every request.
    Basic,
}

impl Challenge {
    /// The first Bearer or Basic challenge in a `WWW-Authenticate` value; `None` for others.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header
            .trim_start()
            .split_once(' ')
            .unwrap_or((header.trim(), ""));
        let params = auth_params(params);
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Self::Bearer {
                realm: param("realm")?,
                service: param("service"),
                scope: param("scope"),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Some(Self::Basic)
        } else {
            None
        }
    }
}

/// `key=value` and `key="quoted, value"` pairs separated by commas.
fn auth_params(input: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = input.trim_start_matches([' ', ',']);
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted),
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.push((key, value));
        rest = remaining.trim_start_matches([' ', ',']);
    }
    params
}

/// The content of a quoted string (after its opening quote) and what follows its closing quote.
fn quoted_string(input: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = input.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return (value, &input[index + 1..]),
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            c => value.push(c),
        }
    }
    (value, "")
}

/// The target of the `rel="next"` link in a `Link` header value, as written (maybe relative).
pub fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .filter_map(|param| param.split_once('='))
            .any(|(key, value)| {
                key.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
            .then_some(target)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bearer_challenge_with_quoted_comma() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:team/app:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://a/t, error=\"invalid_token\""),
            Some(Challenge::Bearer {
                realm: "https://a/t".into(),
                service: None,
                scope: None
            })
        );
    }

    #[test]
    fn basic_other_and_malformed_challenges() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Basic"), Some(Challenge::Basic));
        assert_eq!(Challenge::parse(r#"Negotiate abc"#), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
        assert_eq!(Challenge::parse(""), None);
    }

    #[test]
    fn next_link_forms() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/prev>; rel="prev", <https://r/next>;rel=next"#),
            Some("https://r/next")
        );
        assert_eq!(
            next_link(r#"<https://r/p>; rel="prefetch next""#),
            Some("https://r/p")
        );
        assert_eq!(next_link(r#"<https://r/prev>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    proptest! {
        #[test]
        fn bearer_parameters_round_trip(
            realm in "https://[a-z.]{1,12}/[a-zA-Z0-9/_.-]{0,12}",
            service in "[ -!#-\\[\\]-~]{0,20}",
            scope in "repository:[a-z0-9/_-]{1,20}:(pull|pull,push)",
        ) {
            let escaped = service.replace('\\', "\\\\").replace('"', "\\\"");
            let header = format!(r#"Bearer realm="{realm}", service="{escaped}",scope="{scope}""#);
            prop_assert_eq!(
                Challenge::parse(&header),
                Some(Challenge::Bearer { realm, service: Some(service), scope: Some(scope) })
            );
        }

        #[test]
        fn parsers_never_panic(header in ".{0,80}") {
            let _ = Challenge::parse(&header);
            let _ = next_link(&header);
        }
    }
}
