//! The marker comment: `# {"$imagepolicy": "<namespace>:<name>[:tag|:name|:digest]"}`.

use std::collections::BTreeMap;
use std::fmt;

use sluice_api::image::ImageRef;

/// The JSON key of a marker, as kyaml's short-hand reference reads it.
pub const MARKER_KEY: &str = "$imagepolicy";

/// Which part of the policy's `latestRef` a marker writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkerField {
    /// `name:tag[@digest]`.
    Image,
    Tag,
    Name,
    Digest,
}

/// A parsed marker: the policy it names and the part of the image it writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Marker {
    pub namespace: String,
    pub policy: String,
    pub field: MarkerField,
}

impl Marker {
    /// Parses the text after `#`; `None` when it is not a marker (any other comment). As kyaml
    /// reads it: further leading `#`s are dropped and the JSON object holds only strings.
    pub fn parse_comment(comment: &str) -> Option<Marker> {
        let json = comment.trim_start_matches('#').trim();
        let object: BTreeMap<String, String> = serde_json::from_str(json).ok()?;
        Self::parse_reference(object.get(MARKER_KEY)?)
    }

    /// Parses `<namespace>:<name>[:field]`.
    pub fn parse_reference(reference: &str) -> Option<Marker> {
        let mut parts = reference.split(':');
        let namespace = parts.next().filter(|part| !part.is_empty())?;
        let policy = parts.next().filter(|part| !part.is_empty())?;
        let field = match parts.next() {
            None => MarkerField::Image,
            Some("tag") => MarkerField::Tag,
            Some("name") => MarkerField::Name,
            Some("digest") => MarkerField::Digest,
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Marker {
            namespace: namespace.to_owned(),
            policy: policy.to_owned(),
            field,
        })
    }

    /// The value this marker writes for `image`; `None` for `:digest` without a digest.
    pub fn value_of(&self, image: &ImageRef) -> Option<String> {
        match self.field {
            MarkerField::Image => Some(image.to_string()),
            MarkerField::Tag => Some(image.tag.clone()),
            MarkerField::Name => Some(image.name.clone()),
            MarkerField::Digest => (!image.digest.is_empty()).then(|| image.digest.clone()),
        }
    }
}

/// The setter name Flux reports in `Change.Setter`: `ns:name`, `ns:name:tag`, ...
impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.policy)?;
        match self.field {
            MarkerField::Image => Ok(()),
            MarkerField::Tag => f.write_str(":tag"),
            MarkerField::Name => f.write_str(":name"),
            MarkerField::Digest => f.write_str(":digest"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let marker = Marker::parse_comment(r#" {"$imagepolicy": "flux-system:podinfo"}"#).unwrap();
        assert_eq!(marker.to_string(), "flux-system:podinfo");
        assert_eq!(marker.field, MarkerField::Image);
        for (text, field) in [
            ("a:b:tag", MarkerField::Tag),
            ("a:b:name", MarkerField::Name),
            ("a:b:digest", MarkerField::Digest),
        ] {
            let marker = Marker::parse_reference(text).unwrap();
            assert_eq!((marker.field, marker.to_string().as_str()), (field, text));
        }
        for invalid in ["a", "a:", ":b", "a:b:c", "a:b:tag:x"] {
            assert_eq!(Marker::parse_reference(invalid), None, "{invalid}");
        }
        assert_eq!(Marker::parse_comment("just a comment"), None);
        assert_eq!(Marker::parse_comment(r#"{"$imagepolicy": 3}"#), None);
        assert_eq!(Marker::parse_comment(r#"{"other": "a:b"}"#), None);
        assert_eq!(
            Marker::parse_comment(r#"{"$imagepolicy": "a:b", "n": 1}"#),
            None,
            "kyaml reads the object as map[string]string"
        );
        assert_eq!(
            Marker::parse_comment(r##"# {"$imagepolicy": "a:b", "note": "x"}"##)
                .map(|m| m.to_string()),
            Some("a:b".to_owned()),
            "`##` comments and other string fields are markers for kyaml too"
        );
    }

    #[test]
    fn values() {
        let mut image = ImageRef {
            name: "ghcr.io/org/app".into(),
            tag: "1.2.3".into(),
            digest: String::new(),
        };
        let marker = |field| Marker {
            namespace: "ns".into(),
            policy: "p".into(),
            field,
        };
        assert_eq!(
            marker(MarkerField::Image).value_of(&image).unwrap(),
            "ghcr.io/org/app:1.2.3"
        );
        assert_eq!(marker(MarkerField::Digest).value_of(&image), None);
        image.digest = "sha256:ab".into();
        assert_eq!(
            marker(MarkerField::Image).value_of(&image).unwrap(),
            "ghcr.io/org/app:1.2.3@sha256:ab"
        );
        assert_eq!(marker(MarkerField::Tag).value_of(&image).unwrap(), "1.2.3");
        assert_eq!(
            marker(MarkerField::Name).value_of(&image).unwrap(),
            "ghcr.io/org/app"
        );
    }
}
