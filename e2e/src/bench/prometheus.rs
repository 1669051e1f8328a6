//! Prometheus text parsing: apiserver request counters and a controller's own `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Error, Result};

/// The apiserver's request counter, labelled by verb, resource, code and more.
pub const APISERVER_REQUESTS: &str = "apiserver_request_total";

/// One sample of the text exposition format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The value of `label`, empty when absent.
    pub fn label(&self, label: &str) -> &str {
        self.labels.get(label).map_or("", String::as_str)
    }
}

/// Parses one sample line (`name{a="b"} 1.5 [timestamp]`); `None` for comments and junk.
pub fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_owned();
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end + 1..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// Parses `a="b",c="d"}` and returns the labels and what follows the closing brace.
fn parse_labels(text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let quoted = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let (value, after) = unquote(quoted)?;
        labels.insert(key, value);
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
}

/// Reads an escaped label value up to its closing quote; returns it and the text after.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[index + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

/// Every sample named `name` in `text`.
pub fn samples_named<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = Sample> + 'a {
    text.lines()
        .filter_map(parse_sample)
        .filter(move |sample| sample.name == name)
}

/// The sum of every sample named `name`; 0 when there is none.
pub fn sum(text: &str, name: &str) -> f64 {
    samples_named(text, name).map(|s| s.value).sum()
}

/// Sample lines whose metric name contains any of `needles`.
pub fn lines_with_name_containing<'a>(text: &'a str, needles: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            parse_sample(line).is_some_and(|s| needles.iter().any(|n| s.name.contains(n)))
        })
        .collect()
}

/// Sums samples named `name` per value of `label` (e.g. reconciles per object name).
pub fn sum_by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for sample in samples_named(text, name) {
        *sums.entry(sample.label(label).to_owned()).or_insert(0.0) += sample.value;
    }
    sums
}

/// GETs a `/metrics` page over plain HTTP (a controller's metrics endpoint).
pub async fn scrape(url: &str) -> Result<String> {
    let failed = |e: reqwest::Error| Error::Setup(format!("scraping {url} failed: {e}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(failed)?;
    let response = client.get(url).send().await.map_err(failed)?;
    response
        .error_for_status()
        .map_err(failed)?
        .text()
        .await
        .map_err(failed)
}

/// `apiserver_request_total`, summed over every label but verb and resource(/subresource).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiRequests {
    counts: BTreeMap<(String, String), f64>,
}

impl ApiRequests {
    /// Sums the counter in an apiserver `/metrics` page.
    pub fn parse(text: &str) -> Self {
        let mut counts = BTreeMap::new();
        for sample in samples_named(text, APISERVER_REQUESTS) {
            let resource = match sample.label("subresource") {
                "" => sample.label("resource").to_owned(),
                sub => format!("{}/{sub}", sample.label("resource")),
            };
            *counts
                .entry((sample.label("verb").to_owned(), resource))
                .or_insert(0.0) += sample.value;
        }
        Self { counts }
    }

    /// Reads the apiserver's `/metrics` with `client` (needs a privileged user).
    pub async fn scrape(client: &kube::Client) -> Result<Self> {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .map_err(|e| Error::Setup(format!("building the /metrics request: {e}")))?;
        Ok(Self::parse(&client.request_text(request).await?))
    }

    /// The requests made after `before` was taken.
    pub fn since(&self, before: &Self) -> Self {
        let counts = self
            .counts
            .iter()
            .map(|(key, after)| {
                let earlier = before.counts.get(key).copied().unwrap_or(0.0);
                (key.clone(), (after - earlier).max(0.0))
            })
            .filter(|(_, delta)| *delta > 0.0)
            .collect();
        Self { counts }
    }

    /// Counts per verb, in verb order.
    pub fn by_verb(&self) -> BTreeMap<String, f64> {
        let mut verbs = BTreeMap::new();
        for ((verb, _), count) in &self.counts {
            *verbs.entry(verb.clone()).or_insert(0.0) += count;
        }
        verbs
    }

    /// Non-watch counts per `verb resource`, largest first.
    pub fn top_resources(&self, limit: usize) -> Vec<(String, f64)> {
        let mut top: Vec<(String, f64)> = self
            .counts
            .iter()
            .filter(|((verb, _), _)| !is_watch(verb))
            .map(|((verb, resource), count)| (format!("{verb} {resource}"), *count))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(limit);
        top
    }

    /// Every request except long-running WATCH and WATCHLIST ones.
    pub fn total_requests(&self) -> f64 {
        self.sum_where(|verb| !is_watch(verb))
    }

    /// WATCH and WATCHLIST requests.
    pub fn total_watches(&self) -> f64 {
        self.sum_where(is_watch)
    }

    /// `key: value` lines: totals, per-`apps` averages, verbs and the `top` resources.
    pub fn report(&self, prefix: &str, apps: usize, top: usize) -> Vec<(String, String)> {
        let per_app = self.total_requests() / apps.max(1) as f64;
        let mut lines = vec![
            (
                format!("{prefix}requests"),
                format!("{}", self.total_requests()),
            ),
            (format!("{prefix}requests per app"), format!("{per_app:.1}")),
            (
                format!("{prefix}watches ended (counted when a watch closes)"),
                format!("{}", self.total_watches()),
            ),
        ];
        for (verb, count) in self.by_verb() {
            lines.push((format!("{prefix}verb {verb}"), format!("{count}")));
        }
        for (resource, count) in self.top_resources(top) {
            lines.push((format!("{prefix}top {resource}"), format!("{count}")));
        }
        lines
    }

    fn sum_where(&self, keep: impl Fn(&str) -> bool) -> f64 {
        self.counts
            .iter()
            .filter(|((verb, _), _)| keep(verb))
            .map(|(_, count)| count)
            .sum()
    }
}

/// Whether `verb` is a long-running watch rather than a request.
pub fn is_watch(verb: &str) -> bool {
    matches!(verb, "WATCH" | "WATCHLIST")
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: &str = r#"# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="GET",version="v1"} 12
apiserver_request_total{code="404",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="GET",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="services",scope="resource",subresource="",verb="APPLY",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="kustomize.toolkit.fluxcd.io",resource="kustomizations",scope="resource",subresource="status",verb="PATCH",version="v1"} 7
apiserver_request_total{code="0",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="",verb="WATCH",version="v1"} 2
apiserver_request_duration_seconds_count{verb="GET"} 99
"#;

    #[test]
    fn parses_labels_with_escapes_and_timestamps() {
        let sample = parse_sample(r#"m{a="x\"y",b="1\\2", c="n\n"} 2.5 1700000000"#).unwrap();
        assert_eq!(sample.name, "m");
        assert_eq!(sample.label("a"), "x\"y");
        assert_eq!(sample.label("b"), "1\\2");
        assert_eq!(sample.label("c"), "n\n");
        assert_eq!(sample.value, 2.5);
        let bare = parse_sample("process_cpu_seconds_total 1e3").unwrap();
        assert_eq!(
            (bare.name.as_str(), bare.value),
            ("process_cpu_seconds_total", 1000.0)
        );
        assert!(parse_sample("# EOF").is_none());
        assert!(parse_sample("m{a=\"unterminated} 1").is_none());
        assert_eq!(
            parse_sample("b_bucket{le=\"+Inf\"} +Inf").unwrap().value,
            f64::INFINITY
        );
    }

    #[test]
    fn sums_apiserver_requests_by_verb_and_resource() {
        let requests = ApiRequests::parse(APISERVER);
        let verbs = requests.by_verb();
        assert_eq!(verbs["GET"], 15.0);
        assert_eq!(verbs["WATCH"], 2.0);
        assert_eq!(requests.total_requests(), 26.0);
        assert_eq!(requests.total_watches(), 2.0);
        let top = requests.top_resources(2);
        assert_eq!(top[0], ("GET deployments".to_owned(), 15.0));
        assert_eq!(top[1], ("PATCH kustomizations/status".to_owned(), 7.0));
    }

    #[test]
    fn delta_keeps_only_new_requests() {
        let before = ApiRequests::parse(APISERVER);
        let after = ApiRequests::parse(&APISERVER.replace("} 12", "} 20"));
        let delta = after.since(&before);
        assert_eq!(delta.total_requests(), 8.0);
        assert_eq!(delta.by_verb().len(), 1);
        assert_eq!(delta.since(&delta), ApiRequests::default());
        let report = delta.report("api ", 4, 1);
        assert_eq!(report[0], ("api requests".to_owned(), "8".to_owned()));
        assert_eq!(report[1].1, "2.0");
        assert_eq!(report.last().unwrap().0, "api top GET deployments");
    }

    #[test]
    fn finds_metrics_by_name() {
        let text = "# TYPE x counter\nrest_client_throttle_seconds_count 3\nkube_client_requests_total{verb=\"GET\"} 5\nother 1\n";
        let lines = lines_with_name_containing(text, &["kube_client", "throttle"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(sum(APISERVER, APISERVER_REQUESTS), 28.0);
        assert_eq!(sum(APISERVER, "missing"), 0.0);
        let by_verb = sum_by_label(APISERVER, APISERVER_REQUESTS, "verb");
        assert_eq!((by_verb["GET"], by_verb["PATCH"]), (15.0, 7.0));
    }
}
