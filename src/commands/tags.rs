//! `crowsnest tags`: which tag a policy picks from a repository's tags (or a
//! tag list), and why every other tag lost.
//!
//! Exit codes (PRODUCT.md §4): 0 a tag was picked, 1 none matched (or the
//! registry failed), 2 an invalid policy, range, pattern or usage.
//!
//! Where the tags come from is [`list_tags`], the one function that knows:
//! a file, stdin, or a registry (with the registry settings of `--config`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{Exit, OrderArg, TagsArgs};
use crate::model::ImageName;
use crate::policy::{
    self, Decision, Exclusions, Order, PolicyError, Range, Rule, Selector, Summary, TagFilter,
    Verdict,
};

/// Why `crowsnest tags` could not run.
#[derive(Debug, thiserror::Error)]
pub enum TagsError {
    #[error("{path}: cannot read the tag list: {source}")]
    ReadTags {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read the policy file: {source}")]
    ReadPolicy {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{file} has no policy named {name:?}; it has: {available}")]
    NoSuchPolicy {
        file: String,
        name: String,
        available: String,
    },
    #[error("{file} holds several policies ({available}); pick one with --policy {file}:NAME")]
    SeveralPolicies { file: String, available: String },
    #[error("{file} holds no policies")]
    NoPolicies { file: String },
    #[error("invalid {flag} {text:?}: {message}")]
    InvalidFlag {
        flag: &'static str,
        text: String,
        message: String,
    },
    #[error("invalid IMAGE {image:?}: {message}")]
    InvalidImage { image: String, message: String },
    #[error("give an IMAGE or --tags-from FILE")]
    NoSource,
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// The policy's verify keys or trusted root cannot be read.
    #[error("{0}")]
    Verify(String),
}

impl TagsError {
    /// A registry that failed is 1; everything about the command line or
    /// its files is 2.
    fn exit(&self) -> Exit {
        match self {
            TagsError::Registry(_) => Exit::Failed,
            _ => Exit::Usage,
        }
    }
}

/// Where the tags come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSource {
    /// A file with one tag per line.
    File(PathBuf),
    /// Standard input, one tag per line (`--tags-from -`).
    Stdin,
    /// A registry repository, with registry settings from an optional daemon config.
    Registry {
        image: ImageName,
        config: Option<PathBuf>,
    },
}

impl TagSource {
    fn from_args(args: &TagsArgs) -> Result<TagSource, TagsError> {
        match (&args.tags_from, &args.image) {
            (Some(from), _) if from == "-" => Ok(TagSource::Stdin),
            (Some(from), _) => Ok(TagSource::File(PathBuf::from(from))),
            (None, Some(image)) => Ok(TagSource::Registry {
                image: ImageName::parse(image).map_err(|e| TagsError::InvalidImage {
                    image: image.clone(),
                    message: e.to_string(),
                })?,
                config: args.config.clone(),
            }),
            (None, None) => Err(TagsError::NoSource),
        }
    }
}

/// The lines of `text`, split where `str::lines` splits them (a trailing
/// `\r` stays on its line; callers trim), found with `memchr`: a tag list
/// can hold 100,000 lines.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain(std::iter::once(text.len()));
    let mut start = 0;
    ends.map(move |end| {
        let line = &text[start..end];
        start = end + 1;
        line
    })
}

/// One tag per line; surrounding whitespace and empty lines are dropped.
pub fn parse_tag_list(text: &str) -> Vec<&str> {
    lines(text)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The tags of a tag list read from `path`. A line longer than 128 bytes
/// (the OCI limit) or with a byte outside printable ASCII (control
/// characters, escapes, bidi overrides) is reported on stderr, escaped and
/// shortened, and left out, so a hostile list can neither be picked from
/// nor write to the terminal. The rest of the OCI grammar is not enforced
/// here: lists of semver strings with `+build` metadata are a fair test of
/// a policy even though registries spell `+` as `_`.
fn valid_tags<'t>(path: &str, text: &'t str) -> Vec<&'t str> {
    let mut tags = Vec::new();
    let mut refused = 0usize;
    for (i, line) in lines(text).enumerate() {
        let tag = line.trim();
        if tag.is_empty() {
            continue;
        }
        if tag.len() <= 128 && tag.bytes().all(|b| b.is_ascii_graphic()) {
            tags.push(tag);
            continue;
        }
        refused += 1;
        if refused <= 5 {
            let mut shown: String = tag.chars().take(40).collect();
            if shown.len() < tag.len() {
                shown.push('…');
            }
            eprintln!(
                "warning: {path}:{}: {shown:?} ({} bytes) is not a tag: longer than 128 bytes or not printable ASCII; ignored",
                i + 1,
                tag.len()
            );
        }
    }
    if refused > 5 {
        eprintln!("warning: {path}: {refused} invalid tags ignored in all");
    }
    tags
}

/// What [`list_tags`] read: the text of a tag list, split and checked by
/// [`TagList::tags`] without copying a tag, or a registry's tags.
pub enum TagList {
    Text {
        path: String,
        text: String,
    },
    Registry {
        tags: Vec<String>,
        /// The client that listed them (its auth already settled) and the
        /// config it came from, for further requests such as signatures.
        client: crate::registry::Registry,
        config: Option<Box<crate::config::Config>>,
    },
}

impl TagList {
    /// The tags in the order listed (ties go to the first). For a tag list,
    /// the lines that are not tags are reported on stderr (see
    /// [`valid_tags`]); call this once.
    pub fn tags(&self) -> Vec<&str> {
        match self {
            TagList::Text { path, text } => valid_tags(path, text),
            TagList::Registry { tags, .. } => tags.iter().map(String::as_str).collect(),
        }
    }
}

/// The tags of `source`.
pub async fn list_tags(source: &TagSource) -> Result<TagList, TagsError> {
    match source {
        TagSource::File(path) => {
            let text =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| TagsError::ReadTags {
                        path: path.display().to_string(),
                        source,
                    })?;
            Ok(TagList::Text {
                path: path.display().to_string(),
                text,
            })
        }
        TagSource::Stdin => {
            let read = tokio::task::spawn_blocking(|| {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            let text = read.map_err(|source| TagsError::ReadTags {
                path: "-".into(),
                source,
            })?;
            Ok(TagList::Text {
                path: "-".into(),
                text,
            })
        }
        TagSource::Registry { image, config } => {
            let config = config
                .as_deref()
                .map(crate::config::Config::load)
                .transpose()?
                .map(Box::new);
            let registries = config.as_ref().map(|c| c.registries.clone());
            let client = crate::registry::Registry::new(&registries.unwrap_or_default())?;
            Ok(TagList::Registry {
                tags: client.list_tags(image).await?,
                client,
                config,
            })
        }
    }
}

/// The rule, filter and exclusions the command applies, and words for them.
#[derive(Debug)]
struct Chosen {
    rule: Rule,
    filter: Option<TagFilter>,
    exclusions: Exclusions,
    /// `policy apps:podinfo (policies/app.yaml:1:1)`, `--semver ">=1"`, ...
    label: String,
    /// The policy's `verify` and the file it was read from.
    verify: Option<(crate::policy::Verify, PathBuf)>,
}

impl Chosen {
    fn selector(&self) -> Selector<'_> {
        Selector {
            rule: &self.rule,
            filter: self.filter.as_ref(),
            exclusions: &self.exclusions,
        }
    }
}

fn order(arg: OrderArg) -> Order {
    match arg {
        OrderArg::Asc => Order::Asc,
        OrderArg::Desc => Order::Desc,
    }
}

/// Splits `FILE[:NAME]`: the longest prefix that is an existing file wins,
/// so file names with `:` and names like `ns:name` both work.
fn split_policy_arg(arg: &str) -> (PathBuf, Option<String>) {
    if Path::new(arg).is_file() {
        return (PathBuf::from(arg), None);
    }
    for (i, _) in arg.match_indices(':') {
        if Path::new(&arg[..i]).is_file() {
            return (PathBuf::from(&arg[..i]), Some(arg[i + 1..].to_owned()));
        }
    }
    match arg.split_once(':') {
        Some((file, name)) if !file.is_empty() => (PathBuf::from(file), Some(name.to_owned())),
        _ => (PathBuf::from(arg), None),
    }
}

async fn load_policy(arg: &str) -> Result<policy::Policy, TagsError> {
    let (path, name) = split_policy_arg(arg);
    let file = path.display().to_string();
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| TagsError::ReadPolicy {
            path: file.clone(),
            source,
        })?;
    let mut policies = policy::parse_policy_file(&file, &text)?;
    let available = || {
        policies
            .iter()
            .map(|p| p.id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        None => match policies.len() {
            0 => Err(TagsError::NoPolicies { file }),
            1 => Ok(policies.remove(0)),
            _ => Err(TagsError::SeveralPolicies {
                available: available(),
                file,
            }),
        },
        Some(name) => {
            let matching: Vec<usize> = policies
                .iter()
                .enumerate()
                .filter(|(_, p)| p.id.name == name || p.id.to_string() == name)
                .map(|(i, _)| i)
                .collect();
            match matching.as_slice() {
                [one] => Ok(policies.remove(*one)),
                [] => Err(TagsError::NoSuchPolicy {
                    available: available(),
                    file,
                    name,
                }),
                _ => Err(TagsError::SeveralPolicies {
                    available: available(),
                    file,
                }),
            }
        }
    }
}

/// The rule: `--policy FILE[:NAME]` (NAME is `name` or `namespace:name`,
/// optional when the file holds one policy), `--semver`, `--alphabetical`
/// or `--numerical`; without any, semver `*` (the highest release).
/// `--filter`/`--extract` replace the policy's `filterTags`. Exclusions are
/// the policy's, or the default list.
async fn choose(args: &TagsArgs) -> Result<Chosen, TagsError> {
    let invalid = |flag: &'static str, text: &str, e: policy::SyntaxError| TagsError::InvalidFlag {
        flag,
        text: text.to_owned(),
        message: e.message,
    };
    let mut chosen = if let Some(arg) = &args.policy {
        let policy = load_policy(arg).await?;
        Chosen {
            label: format!("policy {} ({})", policy.id, policy.declared_at),
            rule: policy.rule,
            filter: policy.filter,
            exclusions: policy.exclusions,
            verify: policy.verify.map(|v| (v, split_policy_arg(arg).0)),
        }
    } else {
        let (rule, label) = if let Some(range) = &args.semver {
            let parsed = Range::parse(range).map_err(|e| invalid("--semver range", range, e))?;
            (Rule::Semver(parsed), format!("--semver {range:?}"))
        } else if let Some(o) = args.alphabetical {
            let o = order(o);
            (Rule::Alphabetical(o), format!("--alphabetical {o}"))
        } else if let Some(o) = args.numerical {
            let o = order(o);
            (Rule::Numerical(o), format!("--numerical {o}"))
        } else {
            let any = Range::parse("*").expect("`*` is a range");
            (
                Rule::Semver(any),
                "semver \"*\" (no policy given: the highest release)".to_owned(),
            )
        };
        Chosen {
            rule,
            filter: None,
            exclusions: Exclusions::default(),
            label,
            verify: None,
        }
    };
    if let Some(pattern) = &args.filter {
        let filter = TagFilter::new(pattern).map_err(|e| invalid("--filter", pattern, e))?;
        let filter = match &args.extract {
            Some(template) => filter
                .with_extract(template)
                .map_err(|e| invalid("--extract", template, e))?,
            None => filter,
        };
        chosen.filter = Some(filter);
    }
    Ok(chosen)
}

pub async fn run(args: TagsArgs) -> Exit {
    match execute(&args).await {
        Ok((output, exit)) => {
            print!("{output}");
            exit
        }
        Err(error) => {
            super::report(&error);
            error.exit()
        }
    }
}

/// Everything but the printing: the text for stdout (warnings go to stderr)
/// and the exit code.
async fn execute(args: &TagsArgs) -> Result<(String, Exit), TagsError> {
    let chosen = choose(args).await?;
    let source = TagSource::from_args(args)?;
    let listed = list_tags(&source).await?;
    let tags = listed.tags();
    let selector = chosen.selector();
    let exit = |picked: bool| if picked { Exit::Ok } else { Exit::Failed };
    let verified = match (&chosen.verify, &source, &listed) {
        (
            Some((verify, file)),
            TagSource::Registry { image, .. },
            TagList::Registry { client, config, .. },
        ) => Some((verify, file, image, client, config)),
        (Some(_), _, _) => {
            eprintln!(
                "warning: the policy's verify is not checked for tags read from a file (name the image to read them from its registry)"
            );
            None
        }
        (None, _, _) => None,
    };
    // With verify, the signature check rewrites verdicts: every tag is shown.
    if !args.json && !args.all && verified.is_none() {
        // The common case stays cheap: no sentence per tag.
        let summary = selector.summarize(&tags, SHOWN);
        warn_not_numeric(&summary.counts);
        let text = render_summary(&summary, tags.len(), &chosen.label);
        return Ok((text, exit(summary.selected.is_some())));
    }
    let mut decision = selector.explain(&tags);
    if let Some((verify, file, image, client, config)) = verified {
        let trust = super::signatures::trust(
            verify,
            super::signatures::Keys::Checkout(&super::signatures::checkout_root(file)),
            config.as_ref().and_then(|c| c.trusted_root.as_deref()),
        )
        .map_err(TagsError::Verify)?;
        super::signatures::check(&mut decision, &selector, image, &trust, client).await?;
    }
    if !args.json {
        let skipped = decision.count(Verdict::NotNumeric);
        warn_not_numeric(&[(Verdict::NotNumeric, skipped)]);
    }
    let output = if args.json {
        let mut json = serde_json::to_string_pretty(&decision).expect("a decision serializes");
        json.push('\n');
        json
    } else {
        render_all(&decision, &chosen.label)
    };
    Ok((output, exit(decision.selected.is_some())))
}

/// The deliberate difference from Flux, said out loud.
fn warn_not_numeric(counts: &[(Verdict, usize)]) {
    let skipped = counts
        .iter()
        .find(|(v, _)| *v == Verdict::NotNumeric)
        .map_or(0, |(_, n)| *n);
    if skipped > 0 {
        let what = if skipped == 1 {
            "tag is not a number and was"
        } else {
            "tags are not numbers and were"
        };
        eprintln!("warning: {skipped} {what} skipped (Flux would fail this policy)");
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// How many tags rank above the pick but lost that the summary lists.
const SHOWN: usize = 10;

/// "2 lower than the pick, 1 outside the range, ...", largest first.
fn counts(summary: &Summary) -> String {
    let mut counts: Vec<(Verdict, usize)> = summary
        .counts
        .iter()
        .copied()
        .filter(|(v, n)| *v != Verdict::Selected && *n > 0)
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pick, the tags that rank above it but lost (the usual "why wasn't
/// my tag picked?"), and counts per verdict.
fn render_summary(summary: &Summary, total: usize, label: &str) -> String {
    let mut out = String::new();
    let tally = counts(summary);
    let Some(pick) = &summary.pick else {
        let _ = writeln!(
            out,
            "no tag matched {label} (from {})",
            plural(total, "tag")
        );
        if !tally.is_empty() {
            let _ = writeln!(out, "verdicts: {tally}");
        }
        let _ = writeln!(out, "run with --all to see every tag's verdict");
        return out;
    };
    let _ = writeln!(
        out,
        "selected {} by {label} (from {})",
        pick.tag,
        plural(total, "tag")
    );
    if let Some(value) = &pick.value {
        let _ = writeln!(out, "  ordered by the extracted value {value}");
    }
    if !summary.above.is_empty() {
        let _ = writeln!(out, "ranked above it but lost:");
        let width = summary.above.iter().map(|c| c.tag.len()).max().unwrap_or(0);
        for c in &summary.above {
            let _ = writeln!(out, "  {:width$}  {}: {}", c.tag, c.verdict, c.detail);
        }
        if summary.above_total > summary.above.len() {
            let _ = writeln!(
                out,
                "  ... and {} more",
                summary.above_total - summary.above.len()
            );
        }
    }
    if !tally.is_empty() {
        let _ = writeln!(out, "verdicts: {tally}");
        let _ = writeln!(out, "run with --all to see every tag's verdict");
    }
    out
}

/// Every tag with its verdict, aligned, in the order listed, and the pick.
fn render_all(decision: &Decision, label: &str) -> String {
    let mut out = render_table(decision);
    match &decision.selected {
        Some(tag) => {
            let _ = writeln!(out, "\nselected {tag} by {label}");
        }
        None => {
            let _ = writeln!(out, "\nno tag matched {label}");
        }
    }
    out
}

/// Every tag with its verdict, aligned, in the order listed.
pub(crate) fn render_table(decision: &Decision) -> String {
    let extracted = decision.candidates.iter().any(|c| c.value.is_some());
    let mut rows: Vec<Vec<&str>> = Vec::with_capacity(decision.candidates.len() + 1);
    let mut header = vec!["TAG"];
    if extracted {
        header.push("VALUE");
    }
    header.extend(["VERDICT", "DETAIL"]);
    rows.push(header);
    for c in &decision.candidates {
        let mut row = vec![c.tag.as_str()];
        if extracted {
            row.push(c.value.as_deref().unwrap_or("-"));
        }
        row.extend([c.verdict.describe(), c.detail.as_str()]);
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|col| rows.iter().map(|r| r[col].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (col, cell) in row.iter().enumerate() {
            if col + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:width$}  ", width = widths[col]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_drop_blank_lines_and_whitespace() {
        assert_eq!(
            parse_tag_list("1.0.0\r\n\n  v1.2.0 \n\t\n"),
            ["1.0.0", "v1.2.0"]
        );
    }

    #[test]
    fn lines_split_where_str_lines_does() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "a\rb\n",
            "\n\na\n\n",
            "é\n\u{2028}x\r",
            "1.0.0\r\n\n  v1.2.0 \n\t\n",
        ] {
            // `str::lines` drops the empty line after a final `\n` and
            // strips `\r` before it; callers trim, so compare trimmed lines
            // and allow that one extra empty line.
            let ours: Vec<&str> = lines(text).map(str::trim).collect();
            let std: Vec<&str> = text.lines().map(str::trim).collect();
            let extra = usize::from(text.ends_with('\n') || text.is_empty());
            assert_eq!(ours.len(), std.len() + extra, "{text:?}");
            assert_eq!(ours[..std.len()], std[..], "{text:?}");
            assert!(ours[std.len()..].iter().all(|l| l.is_empty()), "{text:?}");
        }
    }

    #[test]
    fn invalid_lines_are_left_out_and_numbered_as_listed() {
        let text = "1.0.0\n\n  1.1.0\r\nbad\u{1b}tag\n1.2.0";
        assert_eq!(valid_tags("list", text), ["1.0.0", "1.1.0", "1.2.0"]);
    }

    #[test]
    fn policy_arguments_split_at_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a:b.yaml");
        std::fs::write(&file, "").unwrap();
        let f = file.display().to_string();
        assert_eq!(split_policy_arg(&f), (file.clone(), None));
        assert_eq!(
            split_policy_arg(&format!("{f}:apps:podinfo")),
            (file, Some("apps:podinfo".to_owned()))
        );
        assert_eq!(
            split_policy_arg("missing.yaml:x"),
            (PathBuf::from("missing.yaml"), Some("x".to_owned()))
        );
    }

    #[test]
    fn summary_explains_the_tags_above_the_pick() {
        let rule = Rule::Semver(Range::parse(">=6.0.0 <7.0.0").unwrap());
        let exclusions = Exclusions::default();
        let selector = Selector {
            rule: &rule,
            filter: None,
            exclusions: &exclusions,
        };
        let list = [
            "6.1.0",
            "6.2.0",
            "7.0.0",
            "6.3.0-rc.1",
            "latest",
            "5.0.0",
            "6.0.0",
        ];
        let summary = selector.summarize(&list, SHOWN);
        let text = render_summary(&summary, list.len(), "--semver \">=6.0.0 <7.0.0\"");
        assert_eq!(
            text,
            "selected 6.2.0 by --semver \">=6.0.0 <7.0.0\" (from 7 tags)\n\
             ranked above it but lost:\n  \
             7.0.0       outside the range: 7.0.0 does not satisfy >=6.0.0 <7.0.0\n  \
             6.3.0-rc.1  prerelease not allowed: 6.3.0-rc.1 is a prerelease and the part of >=6.0.0 <7.0.0 it satisfies names no prerelease (a bound like -0 admits them)\n\
             verdicts: 2 lower than the pick, 2 outside the range, 1 prerelease not allowed, 1 not a version\n\
             run with --all to see every tag's verdict\n"
        );
    }
}
