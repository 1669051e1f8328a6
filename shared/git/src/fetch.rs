//! A shallow fetch and checkout in process over smart HTTP, as go-git (Flux) does: the v0
//! advertisement GET, then one stateless upload-pack POST for the wanted object at depth 1.

use std::path::Path;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sluice_secrets::redact;

use crate::advertisement::{Advertisement, client, has_content_type};
use crate::objects::{self, parse_hex};
use crate::pack::{self, ObjectId, PackError};
use crate::pktline::{self, Packet};
use crate::tree::{self, TreeError};
use crate::{CheckedOut, CheckedOutTag, GitError, GitRemote, ResolvedRef};

const REQUEST: &str = "application/x-git-upload-pack-request";
const RESULT: &str = "application/x-git-upload-pack-result";
/// At most this many response bytes; larger repositories are fetched by `git`.
const MAX_RESPONSE: usize = 32 << 20;
/// The capabilities asked for when the server offers them; `thin-pack` never is.
const OPTIONAL_CAPABILITIES: &[&str] = &["ofs-delta", "no-progress"];

/// Why the in-process checkout stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InProcessError {
    /// A failure to report as it is.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Something the in-process path does not handle; `git` takes over.
    #[error("{0}")]
    Unsupported(String),
}

impl From<PackError> for InProcessError {
    fn from(error: PackError) -> Self {
        Self::Unsupported(error.to_string())
    }
}

impl From<TreeError> for InProcessError {
    fn from(error: TreeError) -> Self {
        Self::Unsupported(error.to_string())
    }
}

fn unsupported(reason: &str) -> InProcessError {
    InProcessError::Unsupported(reason.to_owned())
}

impl GitRemote {
    /// Fetches `resolved` at depth 1 and writes its tree into `dir` (which must not exist),
    /// without a `.git` directory.
    pub(crate) async fn checkout_in_process(
        &self,
        resolved: &ResolvedRef,
        dir: &Path,
    ) -> Result<CheckedOut, InProcessError> {
        let advertisement = self
            .advertisement()
            .await?
            .ok_or_else(|| unsupported("no v0 advertisement"))?;
        let want = wanted(&advertisement, resolved)?.to_owned();
        let want_id = parse_hex(want.as_bytes()).ok_or_else(|| unsupported("bad object id"))?;
        let response = self.upload_pack(&advertisement, &want).await?;
        let redactions = self.credentials.redactions();
        let dir = dir.to_owned();
        let (commit, subject, committed_at) =
            tokio::task::spawn_blocking(move || unpack(&response, want_id, &dir, &redactions))
                .await
                .map_err(|e| InProcessError::Unsupported(format!("unpacking stopped: {e}")))??;
        let tag = resolved
            .fetch
            .starts_with("refs/tags/")
            .then(|| CheckedOutTag {
                name: resolved
                    .name
                    .clone()
                    .unwrap_or_else(|| resolved.fetch.clone()),
                object: (want != commit).then(|| want.clone()),
            });
        Ok(CheckedOut {
            revision: resolved.revision(&commit),
            commit,
            subject,
            committed_at,
            tag,
        })
    }

    /// POSTs a v0 shallow fetch of `want` and returns the raw response.
    async fn upload_pack(
        &self,
        advertisement: &Advertisement,
        want: &str,
    ) -> Result<Vec<u8>, InProcessError> {
        let mut capabilities = vec!["side-band-64k", "shallow"];
        if !capabilities.iter().all(|c| advertisement.supports(c)) {
            return Err(unsupported("the server lacks side-band-64k or shallow"));
        }
        capabilities.extend(
            OPTIONAL_CAPABILITIES
                .iter()
                .filter(|c| advertisement.supports(c)),
        );
        if advertisement
            .capabilities
            .iter()
            .any(|c| c.starts_with("agent="))
        {
            capabilities.push("agent=git/sluice");
        }
        let body = [
            pktline::encode(&format!("want {want} {}\n", capabilities.join(" "))),
            pktline::encode("deepen 1\n"),
            "0000".to_owned(),
            pktline::encode("done\n"),
        ]
        .concat();
        let url = format!("{}/git-upload-pack", self.url.trim_end_matches('/'));
        let client = client().ok_or_else(|| unsupported("no HTTP client"))?;
        let request = client
            .post(url)
            .header(CONTENT_TYPE, REQUEST)
            .header(ACCEPT, RESULT)
            .body(body);
        let mut response = self
            .authorized(request)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        self.check_status(response.status())?;
        if !response.status().is_success() || !has_content_type(&response, RESULT) {
            return Err(unsupported("unexpected upload-pack response"));
        }
        let mut received = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if received.len() + chunk.len() > MAX_RESPONSE {
                return Err(unsupported("the pack exceeds the in-process limit"));
            }
            received.extend_from_slice(&chunk);
        }
        Ok(received)
    }

    /// A timeout as the CLI reports it; other transport failures are retried by `git`.
    fn transport(&self, error: &reqwest::Error) -> InProcessError {
        if error.is_timeout() {
            return GitError::Timeout(self.timeout).into();
        }
        unsupported("transport failure")
    }
}

/// The object to want: the ref's advertised object, or a commit the server lets us fetch.
fn wanted<'a>(
    advertisement: &'a Advertisement,
    resolved: &'a ResolvedRef,
) -> Result<&'a str, InProcessError> {
    let fetch = resolved.fetch.as_str();
    if parse_hex(fetch.as_bytes()).is_none() {
        return advertisement
            .sha(fetch)
            .ok_or_else(|| unsupported("the ref is not advertised under that name"));
    }
    // upload-pack only accepts the refs' own objects, not their peeled `^{}` commits.
    let fetchable = advertisement
        .refs
        .iter()
        .any(|(sha, name)| sha == fetch && !name.ends_with("^{}"))
        || advertisement.supports("allow-reachable-sha1-in-want")
        || advertisement.supports("allow-any-sha1-in-want");
    fetchable
        .then_some(fetch)
        .ok_or_else(|| unsupported("the commit is not a ref tip"))
}

/// Reads the pack from `response` and writes the wanted commit's tree into `dir`; returns the
/// commit's id, subject and committer time. Blocking.
fn unpack(
    response: &[u8],
    want: ObjectId,
    dir: &Path,
    redactions: &[String],
) -> Result<(String, String, Option<i64>), InProcessError> {
    let pack = demultiplex(response, redactions)?;
    let objects = pack::read(&pack)?;
    let commit_id = objects::peel_to_commit(&objects, want)
        .ok_or_else(|| unsupported("the wanted commit is not in the pack"))?;
    let commit =
        objects::commit(&objects, &commit_id).ok_or_else(|| unsupported("malformed commit"))?;
    tree::write(&objects, &commit.tree, dir)?;
    Ok((hex::encode(commit_id), commit.subject, commit.committed_at))
}

/// The pack from an upload-pack response: shallow lines, `NAK`, then side-band packets
/// (1 pack data, 2 progress, 3 an error) up to a flush.
pub(crate) fn demultiplex(
    response: &[u8],
    redactions: &[String],
) -> Result<Vec<u8>, InProcessError> {
    let malformed = || unsupported("malformed upload-pack response");
    let mut rest = response;
    loop {
        let (packet, tail) = pktline::next(rest).ok_or_else(malformed)?;
        rest = tail;
        let Packet::Data(payload) = packet else {
            continue;
        };
        let line = pktline::text(payload).ok_or_else(malformed)?;
        if line == "NAK" || line.starts_with("ACK ") {
            break;
        }
        if let Some(message) = line.strip_prefix("ERR ") {
            let message = redact(message, redactions);
            return Err(InProcessError::Unsupported(format!(
                "the server refused: {message}"
            )));
        }
        if !(line.starts_with("shallow ") || line.starts_with("unshallow ")) {
            return Err(malformed());
        }
    }
    let mut pack = Vec::new();
    while let Some((packet, tail)) = pktline::next(rest) {
        rest = tail;
        let Packet::Data(payload) = packet else {
            return Ok(pack);
        };
        match payload.split_first() {
            Some((1, data)) => pack.extend_from_slice(data),
            Some((2, _)) => {}
            Some((3, message)) => {
                let message = String::from_utf8_lossy(message);
                return Err(GitError::Operation(redact(message.trim(), redactions)).into());
            }
            _ => return Err(malformed()),
        }
    }
    Err(malformed())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn band(channel: u8, data: &[u8]) -> Vec<u8> {
        let mut packet = format!("{:04x}", data.len() + 5).into_bytes();
        packet.push(channel);
        packet.extend_from_slice(data);
        packet
    }

    #[test]
    fn demultiplexes_pack_progress_and_errors() {
        let head = [
            pktline::encode(&format!("shallow {}\n", "a".repeat(40))),
            "0000".to_owned(),
            pktline::encode("NAK\n"),
        ]
        .concat()
        .into_bytes();
        let ok = [
            head.clone(),
            band(2, b"counting"),
            band(1, b"PA"),
            band(1, b"CK"),
        ]
        .concat();
        let ok = [ok, b"0000".to_vec()].concat();
        assert_eq!(demultiplex(&ok, &[]).unwrap(), b"PACK");
        let failed = [head.clone(), band(3, b"pack-objects died: token s3cret")].concat();
        let error = demultiplex(&failed, &["s3cret".to_owned()]).unwrap_err();
        assert!(
            matches!(&error, InProcessError::Git(GitError::Operation(m)) if !m.contains("s3cret"))
        );
        let refused = pktline::encode("ERR upload-pack: not our ref\n");
        assert!(matches!(
            demultiplex(refused.as_bytes(), &[]),
            Err(InProcessError::Unsupported(_))
        ));
        assert!(demultiplex(&head, &[]).is_err(), "no flush after the pack");
    }

    proptest! {
        #[test]
        fn random_responses_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = demultiplex(&bytes, &[]);
        }
    }
}
