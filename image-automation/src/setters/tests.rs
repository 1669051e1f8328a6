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

/// A block scalar marked on its header line (`{NL}` stands for the file's line break): only
/// the chomping indicator and the content change.
fn marked_block() -> impl Strategy<Value = (String, String)> {
    (
        "[a-z]{1,8}",
        prop_oneof![Just("|"), Just(">")],
        prop_oneof![
            Just(""),
            Just("-"),
            Just("+"),
            Just("2"),
            Just("2+"),
            Just("-2")
        ],
        "[a-z0-9][a-z0-9./:-]{0,11}",
        proptest::collection::vec("[a-z0-9 ]{0,8}[a-z0-9]", 0..3),
        " {2,4}",
    )
        .prop_map(|(key, style, indicators, first, more, indent)| {
            let marker = "# {\"$imagepolicy\": \"ns:app\"}";
            let content: String = std::iter::once(first)
                .chain(more)
                .map(|line| format!("{indent}{line}{{NL}}"))
                .collect();
            let stripped = match indicators {
                "" | "2" => format!("{indicators}-"),
                other => other.replace('+', "-"),
            };
            // An indentation indicator sets the content's indentation; more spaces are content.
            let new_indent = if indicators.contains('2') {
                "  "
            } else {
                indent.as_str()
            };
            let line = format!("{key}: {style}{indicators} {marker}{{NL}}{content}");
            let expected =
                format!("{key}: {style}{stripped} {marker}{{NL}}{new_indent}{NEW}{{NL}}");
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
                marked_block(),
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
        let join = |line: String| line.replace("{NL}", newline) + newline;
        let input: String = lines.iter().enumerate().map(|(i, (l, _))| join(numbered(l, i))).collect();
        let expected: String = lines.iter().enumerate().map(|(i, (_, e))| join(numbered(e, i))).collect();
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

/// What the marked scalars of `text` read after the update.
fn values_after(text: &str) -> Vec<String> {
    scan::find_markers(&apply(text))
        .unwrap()
        .into_iter()
        .map(|marked| marked.value)
        .collect()
}

/// Flux (kyaml v0.21.2, checked with a Go program running its setter) writes these as
/// `|-`/`>-` blocks holding exactly the new value; Sluice changes only the header's chomping
/// and the content.
#[test]
fn block_scalars_marked_on_their_header_line_are_updated() {
    let marker = "# {\"$imagepolicy\": \"ns:app\"}";
    let cases = [
        (
            format!("a: | {marker}\n  old:1\nb: x\n"),
            format!("a: |- {marker}\n  {NEW}\nb: x\n"),
        ),
        (
            format!("a: >- {marker}\n  old:1\n"),
            format!("a: >- {marker}\n  {NEW}\n"),
        ),
        (
            format!("a: |+ {marker}\n  old:1\n\n\nb: x\n"),
            format!("a: |- {marker}\n  {NEW}\n\n\nb: x\n"),
        ),
        (
            format!("d:\n  - |2 {marker}\n      old:1\n    x\n"),
            format!("d:\n  - |2- {marker}\n    {NEW}\n"),
        ),
        (
            format!("a: !!str | {marker}\n\n  line 1\n  line 2\n# after\n"),
            format!("a: !!str |- {marker}\n  {NEW}\n# after\n"),
        ),
        (
            format!("a: | {marker}\n\nb: x\n"),
            format!("a: |- {marker}\n  {NEW}\n\nb: x\n"),
        ),
        (
            format!("l:\n- key: > {marker}\r\n- x\r\n"),
            format!("l:\n- key: >- {marker}\r\n    {NEW}\r\n- x\r\n"),
        ),
        (
            format!("l:\n  - |2+ {marker}\n"),
            format!("l:\n  - |- {marker}\n      {NEW}\n"),
        ),
        (
            format!("m: > {marker}\r\n  v\r\n\r\n"),
            format!("m: >- {marker}\r\n  {NEW}\r\n\r\n"),
        ),
        (
            format!("e: >+ {marker}\n  old:1 \t"),
            format!("e: >- {marker}\n  {NEW}"),
        ),
        (
            format!("t: | {marker}\n  old:1  \r\n  more \nb: x\n"),
            format!("t: |- {marker}\n  {NEW}\nb: x\n"),
        ),
        (
            format!("k: >+ {marker}\n     \n  \nb: x\n"),
            format!("k: >- {marker}\n  {NEW}\n\n  \nb: x\n"),
        ),
        (
            format!("a: >+ {marker}\n \n   old:1\nb: x\n"),
            format!("a: >- {marker}\n   {NEW}\nb: x\n"),
        ),
        (
            format!("? k\n:   image: >+ {marker}\nb: x\n"),
            format!("? k\n:   image: >- {marker}\n      {NEW}\nb: x\n"),
        ),
        (
            format!("c: | {marker}\r  old:1\r\r  more\rb: x\r"),
            format!("c: |- {marker}\r  {NEW}\rb: x\r"),
        ),
        (
            format!("c: | {marker}\r"),
            format!("c: |- {marker}\r  {NEW}\r"),
        ),
        (
            format!("l:\n  - name: p\n    image: >+ {marker}\n    "),
            format!("l:\n  - name: p\n    image: >- {marker}\n      {NEW}\n    "),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(apply(&text), expected, "{text:?}");
        assert_eq!(values_after(&text), [NEW], "{text:?}");
    }
}

/// Flux double-quotes a value YAML 1.1 would not read as a string, in place of the block.
#[test]
fn non_string_values_are_double_quoted_as_flux_does() {
    let marker = "# {\"$imagepolicy\": \"ns:app:tag\"}";
    let resolve_tag = |tag: &'static str| {
        move |marker: &Marker| match marker.field {
            MarkerField::Tag => Resolution::Value(tag.to_owned()),
            _ => Resolution::Ignore,
        }
    };
    let text = format!("a: v1 {marker}\nb: 'v1' {marker}\nc: | {marker}\n  v1\n  more\nd: x\n");
    let update = update_text(&text, &resolve_tag("123")).unwrap();
    assert_eq!(
        update.text.unwrap(),
        format!("a: \"123\" {marker}\nb: '123' {marker}\nc: \"123\" {marker}\nd: x\n")
    );
    let update = update_text(&text, &resolve_tag("2024-01-15")).unwrap();
    assert!(update.text.unwrap().starts_with("a: \"2024-01-15\""));
    let update = update_text(&text, &resolve_tag("v1.2")).unwrap();
    assert!(update.text.unwrap().starts_with("a: v1.2 "));
}

#[test]
fn block_lines_of_blanks_past_the_indentation_are_content_and_replaced() {
    let marker = " # {\"$imagepolicy\": \"ns:app\"}";
    let cases = [
        ("|", "  x\n     \n", "  ghcr.io/org/app:2.0.0\n"),
        ("|", " \n  x\n   \t\n  \n", "  ghcr.io/org/app:2.0.0\n  \n"),
        ("|", "  \t\n", "  ghcr.io/org/app:2.0.0\n"),
        ("|2", "     \n", "  ghcr.io/org/app:2.0.0\n"),
        (">", "  x\n   \n  y\n\n", "  ghcr.io/org/app:2.0.0\n\n"),
    ];
    for (header, body, new_body) in cases {
        let text = format!("a: {header}{marker}\n{body}b: c\n");
        let header = format!("{header}-");
        let expected = format!("a: {header}{marker}\n{new_body}b: c\n");
        assert_eq!(apply(&text), expected, "{text:?}");
    }
}

/// Fuzz findings: as many marked blocks before as after an update that resolves every marker,
/// each reading the new value, and a second update changes nothing. (A `|` inside a block's
/// content marks nothing.)
#[test]
fn fuzz_findings_of_marked_blocks_read_the_new_value() {
    let findings = [
        ("block-scalar-multi-line-content.yaml", 2),
        ("block-scalar-keep-blank-header-line.yaml", 2),
        ("block-scalar-lone-carriage-returns.yaml", 1),
        ("block-scalar-leading-blank-narrower-than-content.yaml", 3),
        ("block-scalar-header-inside-top-level-block.yaml", 0),
        ("block-scalar-question-mark-line.yaml", 1),
        ("block-scalar-repeated-header-lines-inside-block.yaml", 0),
    ];
    for (finding, marked_blocks) in findings {
        let path = format!(
            "{}/../fuzz/seeds/setters/{finding}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let marked = |text: &str| -> Vec<scan::MarkedScalar> {
            scan::find_markers(text)
                .unwrap()
                .into_iter()
                .filter(|scalar| scalar.block_header.is_some())
                .collect()
        };
        assert_eq!(marked(&text).len(), marked_blocks, "{finding}");
        let every = |_: &Marker| Resolution::Value(NEW.to_owned());
        let update = update_text(&text, &every).unwrap();
        let updated = update.text.unwrap_or_else(|| text.clone());
        let blocks = marked(&updated);
        assert_eq!(blocks.len(), marked_blocks, "{finding}: {updated:?}");
        assert!(
            blocks.iter().all(|scalar| scalar.value == NEW),
            "{finding}: {updated:?}"
        );
        assert!(update_text(&updated, &every).unwrap().text.is_none());
    }
}

#[test]
fn lone_carriage_returns_break_lines_as_in_yaml() {
    let marker = "# {\"$imagepolicy\": \"ns:app\"}";
    let text = format!("a: old:1 {marker}\rb: 'old:1' {marker}\rc: x\r");
    let expected = format!("a: {NEW} {marker}\rb: '{NEW}' {marker}\rc: x\r");
    assert_eq!(apply(&text), expected);
    let lines: Vec<_> = scan::find_markers(&text)
        .unwrap()
        .iter()
        .map(|marked| marked.line)
        .collect();
    assert_eq!(lines, [1, 2]);
}
