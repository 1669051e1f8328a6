//! Listing refs over smart HTTP in process, as go-git (Flux) does: one GET of the protocol-v0
//! advertisement and no `git` processes. Anything unusual is left to `git ls-remote`.

use std::sync::OnceLock;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::GitRemote;

/// The content type of a smart-HTTP upload-pack advertisement.
const ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";

/// One client for every listing (building one loads the TLS roots); like the sandboxed `git`,
/// it ignores proxy environment variables, and it follows no redirects.
fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("git/sluice")
                .build()
                .ok()
        })
        .as_ref()
}

impl GitRemote {
    /// Plain HTTP(S) with at most an authorization header; a CA, client certificate, proxy or
    /// credentials in the URL are left to `git`.
    fn lists_in_process(&self) -> bool {
        let credentials = &self.credentials;
        let authority = self
            .url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
        (self.url.starts_with("http://") || self.url.starts_with("https://"))
            && authority.is_some_and(|a| !a.contains('@'))
            && credentials.ca.is_none()
            && credentials.client_cert.is_none()
            && self.proxy.is_none()
    }

    /// The advertised `(sha, ref)` pairs, peeled tags as `<ref>^{}`; `None` when not listed in
    /// process or the answer is not a clean advertisement, so `git` retries and reports.
    pub(crate) async fn advertised_refs(&self) -> Option<Vec<(String, String)>> {
        if !self.lists_in_process() {
            return None;
        }
        let url = format!(
            "{}/info/refs?service=git-upload-pack",
            self.url.trim_end_matches('/')
        );
        let mut request = client()?.get(url).timeout(self.timeout);
        if let Some(header) = self.credentials.authorization_header() {
            let (_, value) = header.split_once(": ")?;
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.ok()?;
        let smart = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == ADVERTISEMENT.as_bytes());
        if !response.status().is_success() || !smart {
            return None;
        }
        parse_advertisement(&response.bytes().await.ok()?)
    }
}

/// Parses the pkt-lines of a v0 advertisement: the service line, a flush, the refs, a flush.
fn parse_advertisement(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut rest = body;
    let mut refs = Vec::new();
    let mut flushes = 0;
    let mut service_seen = false;
    while flushes < 2 {
        let length = usize::from_str_radix(std::str::from_utf8(rest.get(..4)?).ok()?, 16).ok()?;
        if length == 0 {
            flushes += 1;
            rest = &rest[4..];
            continue;
        }
        let line = std::str::from_utf8(rest.get(4..length)?).ok()?;
        rest = &rest[length..];
        let line = line.strip_suffix('\n').unwrap_or(line);
        if flushes == 0 {
            service_seen = line == "# service=git-upload-pack";
            continue;
        }
        let (sha, name) = line.split('\0').next()?.split_once(' ')?;
        if name != "capabilities^{}" {
            refs.push((sha.to_owned(), name.to_owned()));
        }
    }
    service_seen.then_some(refs)
}

/// `git ls-remote`'s pattern match: the ref is the pattern or ends with `/<pattern>`.
pub(crate) fn tail_matches(name: &str, pattern: &str) -> bool {
    name == pattern
        || name
            .strip_suffix(pattern)
            .is_some_and(|head| head.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &str) -> String {
        format!("{:04x}{line}", line.len() + 4)
    }

    #[test]
    fn parses_refs_and_peeled_tags() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let body = [
            pkt("# service=git-upload-pack\n"),
            "0000".to_owned(),
            pkt(&format!("{a} HEAD\0multi_ack side-band-64k\n")),
            pkt(&format!("{a} refs/heads/main\n")),
            pkt(&format!("{b} refs/tags/v1\n")),
            pkt(&format!("{a} refs/tags/v1^{{}}\n")),
            "0000".to_owned(),
        ]
        .concat();
        let refs = parse_advertisement(body.as_bytes()).unwrap();
        let names: Vec<&str> = refs.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            ["HEAD", "refs/heads/main", "refs/tags/v1", "refs/tags/v1^{}"]
        );
        assert_eq!(refs[2].0, b);
    }

    #[test]
    fn empty_repository_and_malformed_answers() {
        let zero = "0".repeat(40);
        let empty = [
            pkt("# service=git-upload-pack\n"),
            "0000".to_owned(),
            pkt(&format!("{zero} capabilities^{{}}\0agent=git\n")),
            "0000".to_owned(),
        ]
        .concat();
        assert_eq!(parse_advertisement(empty.as_bytes()), Some(vec![]));
        assert_eq!(parse_advertisement(b"<html>"), None);
        assert_eq!(parse_advertisement(b"0000"), None);
    }

    #[test]
    fn tail_match_like_ls_remote() {
        assert!(tail_matches("refs/heads/main", "refs/heads/main"));
        assert!(tail_matches("refs/heads/main", "main"));
        assert!(!tail_matches("refs/heads/xmain", "main"));
        assert!(!tail_matches("refs/tags/v1^{}", "refs/tags/v1"));
    }
}
