//! Git access over smart HTTP(S) in process or through the `git` CLI (HTTP(S) and SSH): ref
//! resolution with one round trip and shallow checkouts, with credentials from a Flux Secret.
//!
//! Credentials travel through environment-scoped git config and 0600 files in a per-operation
//! temporary directory, never on the command line, and are redacted from any output.
//!
//! - [`credentials`]: [`GitCredentials`] from a Secret;
//! - [`remote`]: [`GitRemote`], the sandboxed `git` runner;
//! - [`refs`]: [`RefSelector`] (Flux's `spec.ref` precedence) and [`ResolvedRef`]; plain
//!   HTTP(S) refs are listed in process (`advertisement`), anything else by `git ls-remote`;
//! - [`checkout`]: shallow, sparse and submodule checkouts; plain HTTP(S) checkouts without
//!   `.git` are fetched in process (`fetch`: `pktline`, `pack`, `delta`, `objects`, `tree`);
//! - [`push`]: commits as an author and pushes to branches or refspecs with push options;
//! - [`signing`]: OpenPGP-signed commits with a key from a Secret;
//! - [`tags`]: SemVer selection among tags.

mod advertisement;
pub mod checkout;
pub mod credentials;
mod delta;
pub mod error;
mod fetch;
mod objects;
mod pack;
mod pktline;
pub mod push;
pub mod refs;
pub mod remote;
pub mod signing;
pub mod tags;
mod tree;

pub use checkout::{CheckedOut, CheckedOutTag, CheckoutOptions};
pub use credentials::GitCredentials;
pub use error::GitError;
pub use push::{CommitAuthor, PushTarget};
pub use refs::{DEFAULT_BRANCH, RefSelector, ResolvedRef, is_full_commit_id};
pub use remote::{GitRemote, display_url};
pub use signing::{CommitSigner, OpenPgpSigner, SshSigner};
pub use tags::{highest_matching_tag, parse_tag_version};
