//! The `reconcile.fluxcd.io/requestedAt` handshake.

use std::collections::BTreeMap;

use super::RECONCILE_REQUESTED_AT_ANNOTATION;

/// Outcome of comparing the `requestedAt` annotation with `status.lastHandledReconcileAt`.
///
/// The value is an opaque token: any new value asks for one reconcile; the controller records it when done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileRequest<'a> {
    /// Whether the token differs from the last handled one, i.e. a reconcile was asked for.
    pub requested: bool,
    /// The annotation value to record in `status.lastHandledReconcileAt`; `None` without annotation.
    pub token: Option<&'a str>,
}

impl<'a> ReconcileRequest<'a> {
    /// Evaluates the handshake from an object's annotations and its `lastHandledReconcileAt`.
    pub fn evaluate(
        annotations: Option<&'a BTreeMap<String, String>>,
        last_handled: Option<&str>,
    ) -> Self {
        let token = annotations
            .and_then(|annotations| annotations.get(RECONCILE_REQUESTED_AT_ANNOTATION))
            .map(String::as_str);
        let requested = token.is_some_and(|token| Some(token) != last_handled);
        Self { requested, token }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(
            RECONCILE_REQUESTED_AT_ANNOTATION.to_owned(),
            value.to_owned(),
        )])
    }

    #[test]
    fn no_annotation_means_no_request_and_nothing_to_record() {
        let request = ReconcileRequest::evaluate(None, Some("old"));
        assert_eq!(
            request,
            ReconcileRequest {
                requested: false,
                token: None
            }
        );
        let empty = BTreeMap::new();
        assert_eq!(ReconcileRequest::evaluate(Some(&empty), None).token, None);
    }

    #[test]
    fn new_token_is_a_request() {
        let annotations = annotations("2026-01-01T00:00:00Z");
        let request = ReconcileRequest::evaluate(Some(&annotations), None);
        assert!(request.requested);
        assert_eq!(request.token, Some("2026-01-01T00:00:00Z"));

        let request = ReconcileRequest::evaluate(Some(&annotations), Some("earlier"));
        assert!(request.requested);
    }

    #[test]
    fn handled_token_is_not_a_request_but_is_still_recorded() {
        let annotations = annotations("abc");
        let request = ReconcileRequest::evaluate(Some(&annotations), Some("abc"));
        assert!(!request.requested);
        assert_eq!(request.token, Some("abc"));
    }
}
