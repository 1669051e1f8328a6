//! Unit and property tests of the setters: only the replaced scalar's bytes change.

use proptest::prelude::*;

use super::*;

const NEW: &str = "ghcr.io/org/app:2.0.0";

/// Resolves `ns:app` (and its field forms) to [`NEW`]; `ns:gone` is unresolved; others ignored.
fn resolve(marker: &Marker) -> Resolution {
    match (marker.namespace.as_str(), marker.policy.as_str()) {
        ("ns", "app") => Resolution::Value(match marker.field {
            MarkerField::Image => NEW.to_owned(),
            MarkerField::Tag => "2.0.0".to_owned(),
            MarkerField::Name => "ghcr.io/org/app".to_owned(),
            MarkerField::Digest => "sha256:0123".to_owned(),
        }),
        ("ns", "gone") => Resolution::Unresolved("ImagePolicy 'ns/gone' not found".to_owned()),
        _ => Resolution::Ignore,
    }
}

fn apply(text: &str) -> String {
    update_text(text, &resolve)
        .unwrap()
        .text
        .unwrap_or_else(|| text.to_owned())
}

#[test]
fn block_mapping_value() {
    let text = "spec:\n  image: ghcr.io/org/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n";
    let update = update_text(text, &resolve).unwrap();
    assert_eq!(update.text.unwrap(), text.replace("app:1.0.0", "app:2.0.0"));
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].1.setter, "ns:app");
    assert_eq!(update.changes[0].1.old_value, "ghcr.io/org/app:1.0.0");
}

#[test]
fn quoting_styles_are_kept() {
    let text = concat!(
        "a: 'ghcr.io/org/app:1' # {\"$imagepolicy\": \"ns:app\"}\n",
        "b: \"ghcr.io/org/app:1\" # {\"$imagepolicy\": \"ns:app\"}\n",
        "c: \"1.0\"   #   {\"$imagepolicy\": \"ns:app:tag\"}\n",
    );
    let expected = concat!(
        "a: 'ghcr.io/org/app:2.0.0' # {\"$imagepolicy\": \"ns:app\"}\n",
        "b: \"ghcr.io/org/app:2.0.0\" # {\"$imagepolicy\": \"ns:app\"}\n",
        "c: \"2.0.0\"   #   {\"$imagepolicy\": \"ns:app:tag\"}\n",
    );
    assert_eq!(apply(text), expected);
}

#[test]
fn sequences_flow_and_kustomize_images() {
    let text = concat!(
        "images:\n",
        "- name: app\n",
        "  newName: old/app # {\"$imagepolicy\": \"ns:app:name\"}\n",
        "  newTag: v1 # {\"$imagepolicy\": \"ns:app:tag\"}\n",
        "  digest: sha256:aa # {\"$imagepolicy\": \"ns:app:digest\"}\n",
        "list:\n",
        "  - old:1 # {\"$imagepolicy\": \"ns:app\"}\n",
        "flow: {image: old:1, x: y} # {\"$imagepolicy\": \"ns:app\"}\n",
        "seq: [a, old:1] # {\"$imagepolicy\": \"ns:app\"}\n",
    );
    let expected = concat!(
        "images:\n",
        "- name: app\n",
        "  newName: ghcr.io/org/app # {\"$imagepolicy\": \"ns:app:name\"}\n",
        "  newTag: 2.0.0 # {\"$imagepolicy\": \"ns:app:tag\"}\n",
        "  digest: sha256:0123 # {\"$imagepolicy\": \"ns:app:digest\"}\n",
        "list:\n",
        "  - ghcr.io/org/app:2.0.0 # {\"$imagepolicy\": \"ns:app\"}\n",
        "flow: {image: old:1, x: ghcr.io/org/app:2.0.0} # {\"$imagepolicy\": \"ns:app\"}\n",
        "seq: [a, ghcr.io/org/app:2.0.0] # {\"$imagepolicy\": \"ns:app\"}\n",
    );
    assert_eq!(apply(text), expected);
}

#[test]
fn keys_hashes_in_scalars_and_other_comments_are_untouched() {
    let text = concat!(
        "a: \"x # {\\\"$imagepolicy\\\": \\\"ns:app\\\"}\"\n",
        "b: # {\"$imagepolicy\": \"ns:app\"}\n",
        "  c\n",
        "d: e # not a marker $imagepolicy\n",
        "f: g#{\"$imagepolicy\":\"ns:app\"}\n",
    );
    assert_eq!(update_text(text, &resolve).unwrap(), TextUpdate::default());
}

#[test]
fn unresolved_markers_are_reported_and_left_alone() {
    let text = concat!(
        "a: old:1 # {\"$imagepolicy\": \"ns:gone\"}\n",
        "b: old:1 # {\"$imagepolicy\": \"other:app\"}\n",
        "c: old:1 # {\"$imagepolicy\": \"ns:app\"}\n",
    );
    let update = update_text(text, &resolve).unwrap();
    assert_eq!(update.unresolved.len(), 1);
    assert_eq!(update.unresolved[0].0, 1);
    assert_eq!(update.unresolved[0].1.to_string(), "ns:gone");
    let expected = text.replacen("c: old:1", "c: ghcr.io/org/app:2.0.0", 1);
    assert_eq!(update.text.unwrap(), expected);
}

#[test]
fn objects_of_multi_document_files() {
    let text = concat!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n",
        "spec:\n  image: old:1 # {\"$imagepolicy\": \"ns:app\"}\n",
        "---\n",
        "kind: HelmRelease\nmetadata: {name: chart}\n",
        "values:\n  image:\n    tag: v1 # {\"$imagepolicy\": \"ns:app:tag\"}\n",
    );
    let update = update_text(text, &resolve).unwrap();
    let objects: Vec<_> = update.changes.iter().map(|(o, _)| o.clone()).collect();
    assert_eq!(objects[0].kind, "Deployment");
    assert_eq!(objects[0].api_version, "apps/v1");
    assert_eq!(
        (objects[0].namespace.as_str(), objects[0].name.as_str()),
        ("prod", "web")
    );
    assert_eq!(
        (objects[1].kind.as_str(), objects[1].name.as_str()),
        ("HelmRelease", "chart")
    );
}

#[test]
fn unchanged_value_is_no_change_and_parse_errors_are_errors() {
    let text = "a: ghcr.io/org/app:2.0.0 # {\"$imagepolicy\": \"ns:app\"}\n";
    assert_eq!(update_text(text, &resolve).unwrap(), TextUpdate::default());
    let broken = "a: [b # {\"$imagepolicy\": \"ns:app\"}\n";
    assert!(matches!(
        update_text(broken, &resolve),
        Err(SetterError::Parse { .. })
    ));
}

/// A YAML line that is never marked: comments, keys, quoted scalars with `#`.
fn filler_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}: [a-z][a-z0-9./:-]{0,10}[a-z0-9]".prop_map(|s| s),
        "# [ -~]{0,30}".prop_map(|s| s),
        "[a-z]{1,8}: '[a-z #:]{0,10}'".prop_map(|s| s),
        "[a-z]{1,8}: \"[a-z #:]{0,10}\" # note".prop_map(|s| s),
        Just(String::new()),
    ]
}

/// A marked line and the value it should hold afterwards.
fn marked_line() -> impl Strategy<Value = (String, String)> {
    let quote = prop_oneof![Just(""), Just("'"), Just("\"")];
    (
        "[a-z]{1,8}",
        "[a-z0-9][a-z0-9./-]{0,11}(:[a-z0-9.]{1,6})?",
        quote,
        " {1,3}",
    )
        .prop_map(|(key, old, quote, gap)| {
            let line = format!("{key}: {quote}{old}{quote}{gap}# {{\"$imagepolicy\": \"ns:app\"}}");
            let expected =
                format!("{key}: {quote}{NEW}{quote}{gap}# {{\"$imagepolicy\": \"ns:app\"}}");
            (line, expected)
        })
}

proptest! {
    /// Whatever surrounds them (comments, quoted `#`, CRLF), only the marked scalars change.
    #[test]
    fn only_marked_scalars_change(
        lines in proptest::collection::vec(
            prop_oneof![
                filler_line().prop_map(|l| (l.clone(), l)),
                marked_line(),
            ],
            1..30,
        ),
        crlf in any::<bool>(),
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        // Keys must be unique in a mapping: number them.
        let numbered = |line: &str, index: usize| {
            if line.is_empty() || line.starts_with('#') { line.to_owned() } else { format!("k{index}{line}") }
        };
        let input: String = lines.iter().enumerate().map(|(i, (l, _))| numbered(l, i) + newline).collect();
        let expected: String = lines.iter().enumerate().map(|(i, (_, e))| numbered(e, i) + newline).collect();
        prop_assert_eq!(apply(&input), expected);
    }
}

#[test]
fn an_empty_value_is_reported_not_written_into_its_neighbour() {
    let text = concat!(
        "a: {key} # {\"$imagepolicy\": \"ns:app:tag\"}\n",
        "b: # {\"$imagepolicy\": \"ns:app\"}\n",
        "c: [x, ] # {\"$imagepolicy\": \"ns:app:tag\"}\n",
    );
    let update = update_text(text, &resolve).unwrap();
    assert_eq!(
        update.text.as_deref(),
        Some(text.replace("[x, ]", "[2.0.0, ]").as_str()),
        "only the flow sequence's item is written"
    );
    let lines: Vec<usize> = update.unresolved.iter().map(|u| u.0).collect();
    assert_eq!(lines, [1, 2]);
    assert!(update.unresolved[0].2.contains("empty"));
}
