//! Listing refs over smart HTTP in process, as go-git (Flux) does: one GET of the protocol-v0
//! advertisement and no `git` processes. Anything unusual is left to `git ls-remote`.

use std::sync::OnceLock;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{RequestBuilder, StatusCode};
use sluice_secrets::redact;

use crate::pktline::{self, Packet};
use crate::{GitError, GitRemote};

/// The content type of a smart-HTTP upload-pack advertisement.
const ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";

/// One client for every request (building one loads the TLS roots); like the sandboxed `git`,
/// it ignores proxy environment variables, and it follows no redirects.
pub(crate) fn client() -> Option<&'static reqwest::Client> {
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
    pub(crate) fn lists_in_process(&self) -> bool {
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
        self.advertisement().await.ok().flatten().map(|a| a.refs)
    }

    /// The remote's v0 advertisement; `None` when not listed in process or not understood,
    /// an error when the server refuses the credentials or does not answer in time.
    pub(crate) async fn advertisement(&self) -> Result<Option<Advertisement>, GitError> {
        if !self.lists_in_process() {
            return Ok(None);
        }
        let url = format!(
            "{}/info/refs?service=git-upload-pack",
            self.url.trim_end_matches('/')
        );
        let Some(client) = client() else {
            return Ok(None);
        };
        let request = self.authorized(client.get(url));
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Err(GitError::Timeout(self.timeout)),
            Err(_) => return Ok(None),
        };
        self.check_status(response.status())?;
        if !response.status().is_success() || !has_content_type(&response, ADVERTISEMENT) {
            return Ok(None);
        }
        match response.bytes().await {
            Ok(body) => Ok(parse_advertisement(&body)),
            Err(error) if error.is_timeout() => Err(GitError::Timeout(self.timeout)),
            Err(_) => Ok(None),
        }
    }

    /// `request` with the credentials' authorization header and the operation timeout.
    pub(crate) fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        let request = request.timeout(self.timeout);
        match self.credentials.authorization_header() {
            Some(header) => match header.split_once(": ") {
                Some((_, value)) => request.header(AUTHORIZATION, value),
                None => request,
            },
            None => request,
        }
    }

    /// 401 and 403 as the CLI reports them; other statuses are left to the caller.
    pub(crate) fn check_status(&self, status: StatusCode) -> Result<(), GitError> {
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let message = format!(
                "authentication failed for '{}': HTTP {}",
                crate::remote::display_url(&self.url),
                status.as_u16()
            );
            return Err(GitError::Authentication(format!(
                "{}; check the credentials in spec.secretRef",
                redact(&message, &self.credentials.redactions())
            )));
        }
        Ok(())
    }
}

/// A v0 upload-pack advertisement: the refs and the server's capabilities.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Advertisement {
    /// `(sha, ref)` pairs, peeled tags as `<ref>^{}`.
    pub refs: Vec<(String, String)>,
    pub capabilities: Vec<String>,
}

impl Advertisement {
    pub(crate) fn supports(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    /// The sha advertised for `name`.
    pub(crate) fn sha(&self, name: &str) -> Option<&str> {
        self.refs
            .iter()
            .find(|(_, n)| n == name)
            .map(|(sha, _)| sha.as_str())
    }
}

/// Whether the response has exactly this content type.
pub(crate) fn has_content_type(response: &reqwest::Response, expected: &str) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

/// Parses the pkt-lines of a v0 advertisement: the service line, a flush, the refs, a flush.
fn parse_advertisement(body: &[u8]) -> Option<Advertisement> {
    let mut rest = body;
    let mut refs = Vec::new();
    let mut capabilities = None;
    let mut flushes = 0;
    let mut service_seen = false;
    while flushes < 2 {
        let (packet, tail) = pktline::next(rest)?;
        rest = tail;
        let Packet::Data(payload) = packet else {
            flushes += 1;
            continue;
        };
        let line = pktline::text(payload)?;
        if flushes == 0 {
            service_seen = line == "# service=git-upload-pack";
            continue;
        }
        let mut fields = line.split('\0');
        let (sha, name) = fields.next()?.split_once(' ')?;
        if let Some(listed) = fields.next().filter(|_| capabilities.is_none()) {
            capabilities = Some(listed.split(' ').map(str::to_owned).collect());
        }
        if name != "capabilities^{}" {
            refs.push((sha.to_owned(), name.to_owned()));
        }
    }
    service_seen.then(|| Advertisement {
        refs,
        capabilities: capabilities.unwrap_or_default(),
    })
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
        let advertisement = parse_advertisement(body.as_bytes()).unwrap();
        assert_eq!(advertisement.capabilities, ["multi_ack", "side-band-64k"]);
        let refs = advertisement.refs;
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
        let empty = parse_advertisement(empty.as_bytes()).unwrap();
        assert!(empty.refs.is_empty());
        assert!(empty.supports("agent=git"));
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
