//! `GET /v2/<name>/tags/list`, page by page through `Link: <…>; rel="next"`, within [`Limits`].

use reqwest::header::LINK;
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::challenge::next_link;
use crate::session::Session;
use crate::{Limits, RegistryError};

#[derive(Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// Every tag of the session's repository, in the registry's order.
pub(crate) async fn list(
    session: &mut Session<'_>,
    repository: &str,
    limits: &Limits,
) -> Result<Vec<String>, RegistryError> {
    let mut url = session.url(&format!(
        "/v2/{repository}/tags/list?n={}",
        limits.page_size
    ))?;
    let mut tags = Vec::new();
    for _ in 0..limits.max_pages {
        let response = session
            .send(Method::GET, url.clone(), "application/json", "the tag list")
            .await?;
        let next = response
            .headers()
            .get(LINK)
            .and_then(|value| value.to_str().ok())
            .and_then(next_link)
            .map(|link| same_origin_next(session, &url, link))
            .transpose()?;
        let body = session.body(response, limits.max_page_bytes).await?;
        let page: TagPage = serde_json::from_slice(&body)
            .map_err(|e| session.invalid(format!("the tag list is not valid JSON: {e}")))?;
        tags.extend(page.tags.unwrap_or_default());
        if tags.len() > limits.max_tags {
            return Err(session.invalid(format!(
                "{repository} has more than {} tags, the limit of this client; remove old tags from the registry",
                limits.max_tags
            )));
        }
        match next {
            Some(next) => url = next,
            None => return Ok(tags),
        }
    }
    Err(session.invalid(format!(
        "the tag list of {repository} has more than {} pages, the limit of this client",
        limits.max_pages
    )))
}

/// The next page's URL, refused when its scheme, host or port differ from the current page's.
fn same_origin_next(
    session: &Session<'_>,
    current: &Url,
    link: &str,
) -> Result<Url, RegistryError> {
    let next = current
        .join(link)
        .map_err(|_| session.invalid(format!("the next-page link '{link}' is not a URL")))?;
    if next.origin() != current.origin() {
        return Err(session.invalid(format!(
            "the next-page link points to {}, not to {}; refusing to follow a tag list to another host",
            next.origin().ascii_serialization(),
            current.origin().ascii_serialization()
        )));
    }
    Ok(next)
}
