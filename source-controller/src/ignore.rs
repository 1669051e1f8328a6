//! `.gitignore`-syntax exclusion rules for artifacts: `spec.ignore`, `.sourceignore` files and
//! Flux's default exclusions.

use std::path::Path;

use regex::Regex;

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

/// Reading `.sourceignore` files failed.
#[derive(Debug, thiserror::Error)]
#[error("reading ignore file {path} failed: {source}; check the file is readable UTF-8 text")]
pub struct IgnoreError {
    path: String,
    source: std::io::Error,
}

/// One compiled pattern line.
#[derive(Debug, Clone)]
struct Rule {
    regex: Regex,
    negated: bool,
    directory_only: bool,
}

/// An ordered rule list where the last matching rule decides.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    /// Rules for a source tree: VCS patterns plus, when `spec_ignore` is set or any
    /// `.sourceignore` exists, those patterns; otherwise Flux's default exclusions.
    pub fn for_tree(root: &Path, spec_ignore: Option<&str>) -> Result<Self, IgnoreError> {
        let mut custom = Self::default();
        load_source_ignore_files(root, "", &mut custom)?;
        if let Some(text) = spec_ignore {
            custom.add_lines(text, "");
        }
        let mut rules = Self::default();
        rules.add_lines(&VCS_PATTERNS.join("\n"), "");
        if custom.rules.is_empty() {
            rules.add_lines(&DEFAULT_EXCLUSIONS.join("\n"), "");
        } else {
            rules.rules.extend(custom.rules);
        }
        Ok(rules)
    }

    /// Rules from `spec.ignore` only (VCS patterns plus the given text), for unpacked OCI layers.
    pub fn from_spec(spec_ignore: Option<&str>) -> Self {
        let mut rules = Self::default();
        rules.add_lines(&VCS_PATTERNS.join("\n"), "");
        if let Some(text) = spec_ignore {
            rules.add_lines(text, "");
        }
        rules
    }

    /// Adds the pattern lines of `text`, relative to directory `base` ("" for the root).
    pub fn add_lines(&mut self, text: &str, base: &str) {
        self.rules
            .extend(text.lines().filter_map(|line| compile(line, base)));
    }

    /// Whether `path` (relative, `/`-separated) is excluded; `is_dir` for directories.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.directory_only && !is_dir {
                continue;
            }
            if rule.regex.is_match(path) {
                excluded = !rule.negated;
            }
        }
        excluded
    }
}

fn load_source_ignore_files(
    dir: &Path,
    base: &str,
    rules: &mut IgnoreRules,
) -> Result<(), IgnoreError> {
    let io_error = |path: &Path, source| IgnoreError {
        path: path.display().to_string(),
        source,
    };
    let file = dir.join(SOURCE_IGNORE_FILE);
    if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(|e| io_error(&file, e))?;
        rules.add_lines(&text, base);
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

fn compile(line: &str, base: &str) -> Option<Rule> {
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
    Regex::new(&source).ok().map(|regex| Rule {
        regex,
        negated,
        directory_only,
    })
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
        rules.add_lines(text, "");
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
        rules.add_lines("*.txt\n/top.yaml\n", "sub");
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
}
