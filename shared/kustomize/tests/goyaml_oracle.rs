//! `go_yaml_v2_stream` against the real thing: kustomize's `AsYaml` (sigs.k8s.io/yaml on go-yaml v2,
//! the versions Flux's kustomize-controller is built with), run as the pinned `jsontoyaml` binary.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};
use sluice_kustomize::go_yaml_v2_stream;

/// Go's output for each stream of objects, from one oracle process.
fn oracle(streams: &[Vec<Value>]) -> Vec<String> {
    let binary = sluice_e2e::tools::binary("jsontoyaml").expect("jsontoyaml builds");
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("jsontoyaml starts");
    let input: String = streams
        .iter()
        .map(|stream| format!("{}\n", Value::Array(stream.clone())))
        .collect();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("jsontoyaml runs");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin written");
    assert!(output.status.success(), "jsontoyaml failed");
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    let mut outputs: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(outputs.pop().as_deref(), Some(""), "output ends with a NUL");
    outputs
}

/// Asserts each stream prints as Go prints it, naming the first that differs.
fn assert_same(streams: &[Vec<Value>]) {
    let expected = oracle(streams);
    assert_eq!(expected.len(), streams.len());
    for (stream, go) in streams.iter().zip(expected) {
        let ours = go_yaml_v2_stream(stream);
        assert_eq!(ours, go, "objects: {}", Value::Array(stream.clone()));
    }
}

/// Strings whose quoting, folding or block style depends on a go-yaml v2 rule.
const TRICKY: &[&str] = &[
    "true",
    "True",
    "TRUE",
    "false",
    "yes",
    "Yes",
    "no",
    "NO",
    "on",
    "On",
    "off",
    "y",
    "Y",
    "n",
    "N",
    "null",
    "Null",
    "NULL",
    "~",
    "",
    "0x1F",
    "0X1f",
    "0o17",
    "0b101",
    "-0b101",
    "012",
    "08",
    "0",
    "-0",
    "+1",
    "-",
    "+",
    "1e3",
    "1E3",
    "1e+3",
    "1e999",
    ".5",
    ".5e999",
    "._5",
    ".5_5",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "1.",
    "1.2.3",
    ".",
    "..",
    "...",
    "---",
    "--- a",
    "... a",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "+0x8000000000000000",
    "0xFFFFFFFFFFFFFFFF",
    "-0x8000000000000001",
    ".inf",
    "-.Inf",
    "+.INF",
    ".nan",
    ".NaN",
    "inf",
    "nan",
    "2024-01-02",
    "2024-1-2",
    "2024-02-30",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-01-02T10:00:00Z",
    "2024-01-02t10:00:00Z",
    "2024-01-02T10:00:00+01:00",
    "2024-01-02T10:00:00.123456789Z",
    "2024-01-02 10:00:00",
    "2024-01-02 10:00:00Z",
    "2024-01-02T25:00:00Z",
    "2024-01-02T10:00",
    "20240-01-02",
    "12:30",
    "1:2:3",
    "1:60",
    "190:20:30.15",
    "-1:30",
    "12:30:",
    "a: b",
    "a:b",
    "a :b",
    ":a",
    ": a",
    "?a",
    "? a",
    "- a",
    "-a",
    "a #b",
    "a#b",
    "#x",
    "*",
    "&",
    "!",
    "%",
    "@",
    "`",
    "|",
    ">",
    "'",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "a,b",
    "a[b]",
    "<<",
    "=",
    " a",
    "a ",
    " ",
    "  ",
    "a  b",
    "\ta",
    "a\t",
    "a\tb",
    "é",
    "日本語",
    "😀",
    "a😀b",
    "\u{A0}",
    "a\u{A0}b",
    "\u{2028}",
    "a\u{2028}b",
    "\u{FEFF}x",
    "\u{FEFF}x y",
    "a\u{FEFF}b",
    "\r",
    "a\rb",
    "\0",
    "\u{1}\u{7}\u{8}\u{b}\u{c}\u{1b}\u{1f}",
    "back\\slash",
    "quote\"d",
    "it's",
    "'quoted'",
    "\n",
    "\n\n",
    "a\n",
    "a\n\n",
    "a\nb",
    "a\nb\n",
    "\na",
    " a\nb",
    "a \nb",
    "a\n b",
    "a\n\n b\n",
    "line1\nline2\n\n\n",
    "a\r\nb\n",
    "tab\tin\nblock",
    "trailing space \nx",
    "x\n ",
    "😀\nx",
    "word word word word word word word word word word word word word word word word word",
    "averyveryverylongwordwithoutanyspacesthatgoesonandonandonpastthewidthofeightycolumnsfor sure",
    "spaces  at  the  fold  spaces  at  the  fold  spaces  at  the  fold  spaces  at  the  fold  x",
    "#quoted because of the hash at the start, and long enough to need folding past eighty columns",
    "true but long: a plain string that has a colon-space inside and runs past eighty columns wide",
    "\ta double quoted string with a tab that is long enough to be folded at the eightieth column x",
    "it's a single quoted string? no, it's plain, but 'quotes' inside and long enough to be folded",
    " leading space makes it single quoted and it is long enough to be folded at eighty columns y",
];

fn tricky_objects() -> Vec<Value> {
    TRICKY
        .iter()
        .map(|s| {
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": { "value": s, *s: "as key", "list": [s, [s, [s]], {"in": s}] },
                "deep": { "a": { "b": { "c": { "d": [ { "e": s } ] } } } },
            })
        })
        .collect()
}

#[test]
fn tricky_strings_print_as_go_prints_them() {
    let objects = tricky_objects();
    let streams: Vec<Vec<Value>> = objects.chunks(3).map(<[Value]>::to_vec).collect();
    assert_same(&streams);
}

/// Go's key order is no total order (`v10` < `v1beta1` < `v2` < `v10`), so Go itself sorts such key
/// sets by chance; these keys are ordered consistently.
#[test]
fn keys_sort_as_go_sorts_them() {
    let keys = [
        "a10",
        "a9",
        "a09",
        "a1",
        "a",
        "A",
        "b",
        "B",
        "80",
        "8",
        "9",
        "10",
        "100",
        "_",
        "-",
        ".",
        "x-",
        "x_",
        "x.",
        "",
        " ",
        "Z",
        "z",
        "ä",
        "é",
        "app",
        "apps",
        "a100",
        "a010",
        "a001",
        "port8080",
        "port80",
        "port443",
        "spec",
        "status",
        "apiVersion",
        "kind",
        "metadata",
    ];
    let map: Map<String, Value> = keys.iter().map(|k| (k.to_string(), json!(k))).collect();
    assert_same(&[vec![Value::Object(map)]]);
}

#[test]
fn numbers_print_as_go_prints_them() {
    let floats = [
        0.5,
        1e21,
        1e-5,
        100000000.0,
        1.0,
        -0.0,
        0.1,
        1e20,
        1e19,
        1.5e19,
        9.3e18,
        -9.3e18,
        -1e19,
        1e-7,
        0.0001,
        0.00001,
        123456.5,
        1234567.5,
        std::f64::consts::PI,
        5e-324,
        1.7976931348623157e308,
        2.5e-300,
        -1e22,
        1e6,
        999999.5,
        1e-4,
    ];
    let mut values: Vec<Value> = floats
        .iter()
        .filter_map(|f| Number::from_f64(*f).map(Value::Number))
        .collect();
    values.extend([
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
    ]);
    values.extend([json!(true), json!(false), Value::Null]);
    let object = json!({ "values": values, "nested": { "n": 1.5, "m": [[1, 2], [], {}] } });
    assert_same(&[vec![object]]);
}

#[test]
fn collections_print_as_go_prints_them() {
    let objects = [
        json!({}),
        json!({ "a": {}, "b": [], "c": [{}], "d": [[]], "e": [[[1]]], "f": [{ "g": [] }] }),
        json!({ "list": [[1, 2], [3, [4, 5]], [{ "a": 1, "b": [2] }]], "m": { "n": { "o": [{}] } } }),
        json!({ "k": [ { "a": 1 }, { "b": { "c": [ "x", { "d": "e" } ] } } ] }),
        json!({ "x".repeat(129): { "y": 1 }, "z".repeat(128): [1], "multi\nline key": ["v"] }),
        json!({ "a\nb": { "c": "d" }, "long key ".repeat(20): "v", "k\u{2028}k": "v" }),
    ];
    assert_same(&[objects[..3].to_vec(), objects[3..].to_vec()]);
}

/// Pieces that exercise the resolver, the indicators and the folding when strung together.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9]{1,12}",
        2 => prop::sample::select(vec![
            " ", "  ", "\t", "\n", "\r", ": ", ":", " #", "#", "- ", "-", "'", "\"", "\\", ",",
            "[", "]", "{", "}", "&", "*", "!", "|", ">", "%", "@", "`", "?", "~", ".", "_",
            "0x", "0b", "0o", "e", "E", "+", "1e3", "12:30", "2024-01-02", "true", "null",
            "yes", "é", "😀", "\u{A0}", "\u{2028}", "\u{0}", "\u{1b}", "\u{FEFF}",
            "---", "...", "<<",
        ])
        .prop_map(str::to_string),
        1 => "[0-9._eE+-]{1,6}",
    ]
}

fn json_string() -> impl Strategy<Value = String> {
    prop::collection::vec(string_piece(), 0..12).prop_map(|pieces| pieces.concat())
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        (-30i32..30, -1000i64..1000).prop_filter_map("finite", |(e, m)| {
            Number::from_f64(m as f64 * 10f64.powi(e) / 7.0).map(Value::Number)
        }),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys Go orders consistently: a digit-free part and an optional number, or a number alone.
fn json_key() -> impl Strategy<Value = String> {
    let word = prop::collection::vec(string_piece(), 0..6).prop_map(|pieces| {
        pieces
            .concat()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    });
    (word, prop::option::of("[0-9]{1,4}"))
        .prop_map(|(word, number)| format!("{word}{}", number.unwrap_or_default()))
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(json_key(), json_value(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random objects, one oracle process per batch of streams.
    #[test]
    fn random_objects_print_as_go_prints_them(
        streams in prop::collection::vec(prop::collection::vec(json_object(), 1..4), 1..24)
    ) {
        let expected = oracle(&streams);
        for (stream, go) in streams.iter().zip(expected) {
            prop_assert_eq!(go_yaml_v2_stream(stream), go);
        }
    }
}
