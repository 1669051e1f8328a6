//! `.gitignore`-syntax exclusion rules for artifacts: `spec.ignore`, `.sourceignore` files and
//! Flux's default exclusions.

use std::path::Path;

use regex::{RegexSet, RegexSetBuilder};

/// Version-control files never archived.
pub const VCS_PATTERNS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/// Flux's default exclusions, used when no `spec.ignore` and no `.sourceignore` file exist.
pub const DEFAULT_EXCLUSIONS: &[&str] = &[
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    ".goreleaser.yml",
    ".sops.yaml",
    ".flux.yaml",
];

/// Name of the per-directory ignore file.
pub const SOURCE_IGNORE_FILE: &str = ".sourceignore";

/// Most bytes of ignore patterns (`.sourceignore` files and `spec.ignore` together).
pub const MAX_PATTERN_BYTES: usize = 64 << 10;
/// Most pattern lines, compiled together into one matcher.
pub const MAX_RULES: usize = 1_000;

/// Reading or compiling the ignore rules failed.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("reading ignore file {path} failed: {source}; check the file is readable UTF-8 text")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "ignore patterns exceed {MAX_RULES} rules or {MAX_PATTERN_BYTES} bytes; shorten .sourceignore and spec.ignore"
    )]
    TooLarge,
    #[error("ignore patterns could not be compiled together: {0}; simplify them")]
    Compile(#[from] regex::Error),
}

/// What a pattern line decides when it matches.
#[derive(Debug, Clone, Copy)]
struct Rule {
    negated: bool,
    directory_only: bool,
}

/// An ordered rule list where the last matching rule decides, compiled into one set.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
    patterns: Vec<String>,
    bytes: usize,
    set: Option<RegexSet>,
}

impl IgnoreRules {
    /// Rules for a source tree: VCS patterns plus, when `spec_ignore` is set or any
    /// `.sourceignore` exists, those patterns; otherwise Flux's default exclusions.
    pub fn for_tree(root: &Path, spec_ignore: Option<&str>) -> Result<Self, IgnoreError> {
        let mut custom = Self::default();
        load_source_ignore_files(root, "", &mut custom)?;
        if let Some(text) = spec_ignore {
            custom.add_lines(text, "")?;
        }
        let mut rules = Self::default();
        rules.add_lines(&VCS_PATTERNS.join("\n"), "")?;
        if custom.rules.is_empty() {
            rules.add_lines(&DEFAULT_EXCLUSIONS.join("\n"), "")?;
        } else {
            if rules.rules.len() + custom.rules.len() > MAX_RULES {
                return Err(IgnoreError::TooLarge);
            }
            rules.rules.extend(custom.rules);
            rules.patterns.extend(custom.patterns);
        }
        rules.compile()?;
        Ok(rules)
    }

    /// Adds the pattern lines of `text`, relative to directory `base` ("" for the root).
    pub fn add_lines(&mut self, text: &str, base: &str) -> Result<(), IgnoreError> {
        self.bytes = self.bytes.saturating_add(text.len());
        if self.bytes > MAX_PATTERN_BYTES {
            return Err(IgnoreError::TooLarge);
        }
        for (rule, pattern) in text.lines().filter_map(|line| compile(line, base)) {
            if self.rules.len() >= MAX_RULES {
                return Err(IgnoreError::TooLarge);
            }
            self.rules.push(rule);
            self.patterns.push(pattern);
        }
        self.set = None;
        Ok(())
    }

    /// Compiles the patterns into one matcher (needed once after the last `add_lines`).
    pub fn compile(&mut self) -> Result<(), IgnoreError> {
        let set = RegexSetBuilder::new(&self.patterns)
            .size_limit(64 << 20)
            .dfa_size_limit(16 << 20)
            .build()?;
        self.set = Some(set);
        Ok(())
    }

    /// Whether `path` (relative, `/`-separated) is excluded; `is_dir` for directories.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let Some(set) = &self.set else {
            return false;
        };
        set.matches(path)
            .iter()
            .rev()
            .map(|index| self.rules[index])
            .find(|rule| is_dir || !rule.directory_only)
            .is_some_and(|rule| !rule.negated)
    }
}

fn load_source_ignore_files(
    dir: &Path,
    base: &str,
    rules: &mut IgnoreRules,
) -> Result<(), IgnoreError> {
    let io_error = |path: &Path, source| IgnoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = dir.join(SOURCE_IGNORE_FILE);
    // A regular file only: a committed symbolic link is not followed out of the checkout.
    if std::fs::symlink_metadata(&file).is_ok_and(|metadata| metadata.is_file()) {
        let metadata = std::fs::metadata(&file).map_err(|e| io_error(&file, e))?;
        if metadata.len() > MAX_PATTERN_BYTES as u64 {
            return Err(IgnoreError::TooLarge);
        }
        let text = std::fs::read_to_string(&file).map_err(|e| io_error(&file, e))?;
        rules.add_lines(&text, base)?;
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error(dir, e))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let file_type = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !file_type.is_dir() || name == ".git" {
            continue;
        }
        let child_base = if base.is_empty() {
            name
        } else {
            format!("{base}/{name}")
        };
        load_source_ignore_files(&entry.path(), &child_base, rules)?;
    }
    Ok(())
}

/// A pattern line's rule and its regex source; `None` for blank lines and comments.
fn compile(line: &str, base: &str) -> Option<(Rule, String)> {
    let mut pattern = line.trim_end_matches([' ', '\t', '\r']);
    if pattern.is_empty() || pattern.starts_with('#') {
        return None;
    }
    let negated = pattern.starts_with('!');
    if negated || pattern.starts_with("\\!") || pattern.starts_with("\\#") {
        pattern = &pattern[1..];
    }
    let directory_only = pattern.ends_with('/');
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() {
        return None;
    }
    let anchored = pattern.contains('/');
    let pattern = pattern.trim_start_matches('/');
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("{}/", regex::escape(base))
    };
    let body = glob_to_regex(pattern);
    let source = if anchored {
        format!("^{prefix}{body}$")
    } else {
        format!("^{prefix}(?:.*/)?{body}$")
    };
    regex_syntax_ok(&source).then_some((
        Rule {
            negated,
            directory_only,
        },
        source,
    ))
}

/// Whether `source` parses, so one malformed line is skipped instead of failing the set.
fn regex_syntax_ok(source: &str) -> bool {
    regex::Regex::new(source).is_ok()
}

fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                if at_segment_start && chars.get(i + 2) == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
            }
            '*' => {
                out.push_str("[^/]*");
                i += 1;
            }
            '?' => {
                out.push_str("[^/]");
                i += 1;
            }
            '[' => match chars[i + 1..].iter().position(|&c| c == ']') {
                Some(end) => {
                    let class: String = chars[i + 1..i + 1 + end].iter().collect();
                    let class = match class.strip_prefix('!') {
                        Some(rest) => format!("^{rest}"),
                        None => class,
                    };
                    out.push('[');
                    out.push_str(&class.replace('\\', "\\\\"));
                    out.push(']');
                    i += end + 2;
                }
                None => {
                    out.push_str("\\[");
                    i += 1;
                }
            },
            '\\' if i + 1 < chars.len() => {
                out.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
            }
            c => {
                out.push_str(&regex::escape(&c.to_string()));
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        let mut rules = IgnoreRules::default();
        rules.add_lines(text, "").unwrap();
        rules.compile().unwrap();
        rules
    }

    #[test]
    fn unanchored_patterns_match_at_any_depth() {
        let rules = rules("*.png\nsecret.txt\n");
        assert!(rules.is_excluded("a.png", false));
        assert!(rules.is_excluded("deep/dir/a.png", false));
        assert!(rules.is_excluded("x/secret.txt", false));
        assert!(!rules.is_excluded("a.pngx", false));
    }

    #[test]
    fn anchored_and_directory_patterns() {
        let rules = rules("/only-root.yaml\nbuild/\ndocs/*.md\n");
        assert!(rules.is_excluded("only-root.yaml", false));
        assert!(!rules.is_excluded("sub/only-root.yaml", false));
        assert!(rules.is_excluded("build", true));
        assert!(!rules.is_excluded("build", false));
        assert!(rules.is_excluded("docs/a.md", false));
        assert!(!rules.is_excluded("docs/x/a.md", false));
    }

    #[test]
    fn negation_re_includes_and_last_match_wins() {
        let rules = rules("*.yaml\n!keep.yaml\n");
        assert!(rules.is_excluded("drop.yaml", false));
        assert!(!rules.is_excluded("keep.yaml", false));
    }

    #[test]
    fn double_star_spans_directories() {
        let rules = rules("a/**/z.txt\n**/tmp\nlogs/**\n");
        assert!(rules.is_excluded("a/z.txt", false));
        assert!(rules.is_excluded("a/b/c/z.txt", false));
        assert!(rules.is_excluded("x/y/tmp", true));
        assert!(rules.is_excluded("logs/1/2", false));
    }

    #[test]
    fn nested_base_scopes_patterns() {
        let mut rules = IgnoreRules::default();
        rules.add_lines("*.txt\n/top.yaml\n", "sub").unwrap();
        rules.compile().unwrap();
        assert!(rules.is_excluded("sub/a.txt", false));
        assert!(rules.is_excluded("sub/deeper/a.txt", false));
        assert!(!rules.is_excluded("a.txt", false));
        assert!(rules.is_excluded("sub/top.yaml", false));
        assert!(!rules.is_excluded("sub/x/top.yaml", false));
    }

    #[test]
    fn defaults_apply_only_without_custom_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = IgnoreRules::for_tree(dir.path(), None).unwrap();
        assert!(defaults.is_excluded("logo.png", false));
        assert!(defaults.is_excluded(".git", true));
        assert!(defaults.is_excluded(".github", true));

        let custom = IgnoreRules::for_tree(dir.path(), Some("*.md")).unwrap();
        assert!(!custom.is_excluded("logo.png", false));
        assert!(custom.is_excluded("README.md", false));
        assert!(custom.is_excluded(".git", true));

        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/.sourceignore"), "*.yaml\n").unwrap();
        let nested = IgnoreRules::for_tree(dir.path(), None).unwrap();
        assert!(nested.is_excluded("sub/a.yaml", false));
        assert!(!nested.is_excluded("a.yaml", false));
        assert!(!nested.is_excluded("logo.png", false));
    }

    #[test]
    fn oversized_ignore_patterns_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lines: String = (0..MAX_RULES + 1).map(|i| format!("f{i}\n")).collect();
        std::fs::write(dir.path().join(".sourceignore"), &lines).unwrap();
        assert!(matches!(
            IgnoreRules::for_tree(dir.path(), None),
            Err(IgnoreError::TooLarge)
        ));
        std::fs::write(
            dir.path().join(".sourceignore"),
            "x".repeat(MAX_PATTERN_BYTES + 1),
        )
        .unwrap();
        assert!(matches!(
            IgnoreRules::for_tree(dir.path(), None),
            Err(IgnoreError::TooLarge)
        ));
        let spec: String = (0..MAX_RULES).map(|i| format!("s{i}\n")).collect();
        std::fs::remove_file(dir.path().join(".sourceignore")).unwrap();
        assert!(IgnoreRules::for_tree(dir.path(), Some(&spec)).is_err());
    }

    #[test]
    fn many_rules_match_through_one_compiled_set() {
        let text: String = (0..MAX_RULES - 10)
            .map(|i| format!("dir{i}/**/*.tmp\n"))
            .collect();
        let rules = rules(&format!("{text}!dir7/keep.tmp\n"));
        let started = std::time::Instant::now();
        for i in 0..MAX_RULES - 10 {
            assert!(rules.is_excluded(&format!("dir{i}/a/b/x.tmp"), false));
        }
        assert!(!rules.is_excluded("dir7/keep.tmp", false));
        assert!(!rules.is_excluded("other/x.tmp", false));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_symlinked_sourceignore_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("rules"), "*.yaml\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("rules"),
            dir.path().join(".sourceignore"),
        )
        .unwrap();
        let rules = IgnoreRules::for_tree(dir.path(), None).unwrap();
        assert!(!rules.is_excluded("a.yaml", false));
        assert!(rules.is_excluded("logo.png", false));
    }
}
