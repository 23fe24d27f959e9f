//! The status page: one self-contained HTML document (inline CSS, no
//! scripts, no external assets) rendered from [`Status`]; it refreshes
//! itself every 10 seconds.

use std::fmt::Write as _;

use crate::status::{PolicyStatus, RepositoryStatus, Status};

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first 12 characters of a commit id.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2433;background:#f5f7fa}
header{background:#17324d;color:#fff;padding:14px 24px;display:flex;align-items:baseline;gap:16px;flex-wrap:wrap}
header h1{font-size:20px;margin:0}
header .meta{opacity:.8}
main{padding:16px 24px}
h2{font-size:17px;margin:26px 0 8px}
h2 .meta{font-size:13px;font-weight:400;color:#5b6677}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:10px 14px;min-width:180px}
.card b{display:block;font-size:12px;text-transform:uppercase;color:#5b6677;letter-spacing:.04em}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
.ok{background:#d8f3dc;color:#1b5e20}.pending{background:#fff3cd;color:#7a5b00}.bad{background:#fde2e1;color:#9b1c1c}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde3ea}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #edf0f4;vertical-align:top}
th{background:#eef2f7;font-size:12px;text-transform:uppercase;color:#5b6677}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.err{color:#9b1c1c;max-width:32em}
ul.findings{background:#fde2e1;border:1px solid #f5b5b2;border-radius:6px;padding:10px 28px}
"#;

pub fn render(status: &Status) -> String {
    let mut html = String::with_capacity(4096 + status.policies.len() * 512);
    let shard = status
        .shard
        .as_deref()
        .map(|s| format!(" · shard {}", escape(s)))
        .unwrap_or_default();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>crowsnest</title><style>{STYLE}</style></head><body>\
         <header><h1>crowsnest</h1><span class=\"meta\">{version} · {count} repositor{plural}{shard} · started {started}</span></header><main>",
        version = escape(&status.version),
        count = status.repositories.len(),
        plural = if status.repositories.len() == 1 {
            "y"
        } else {
            "ies"
        },
        started = escape(&status.started_at),
    );
    let (ready_class, ready_text) = if status.ready {
        ("ok", "ready")
    } else {
        ("pending", "starting")
    };
    let _ = write!(
        html,
        "<div class=\"cards\"><div class=\"card\"><b>State</b><span class=\"badge {ready_class}\">{ready_text}</span></div></div>"
    );
    for repository in &status.repositories {
        let policies: Vec<&PolicyStatus> = status
            .policies
            .iter()
            .filter(|p| p.repository == repository.name)
            .collect();
        section(&mut html, repository, &policies);
    }
    html.push_str(
        "<p class=\"meta\">JSON: <a href=\"/api/status\">/api/status</a> · \
         metrics: <a href=\"/metrics\">/metrics</a></p></main></body></html>\n",
    );
    html
}

/// One repository: where it writes, its last pass and commit, what holds
/// it back, and its policies.
fn section(html: &mut String, repository: &RepositoryStatus, policies: &[&PolicyStatus]) {
    let (ready_class, ready_text) = match (&repository.last_error, repository.ready) {
        (Some(_), _) => ("bad", "failing"),
        (None, true) => ("ok", "ready"),
        (None, false) => ("pending", "starting"),
    };
    let _ = write!(
        html,
        "<h2>{name} <span class=\"badge {ready_class}\">{ready_text}</span> <span class=\"meta\"><code>{remote}</code> · {branch} → {push}</span></h2>",
        name = escape(&repository.name),
        remote = escape(&repository.remote),
        branch = escape(&repository.branch),
        push = escape(&repository.push_branch),
    );
    let up_to_date = policies.iter().filter(|p| p.up_to_date).count();
    let failing = policies
        .iter()
        .filter(|p| p.last_error.is_some() || !p.findings.is_empty())
        .count();
    let last_pass = repository.last_pass.as_ref().map_or_else(
        || "none yet".to_owned(),
        |p| {
            format!(
                "{} · {} ms · {}",
                escape(&p.finished_at),
                p.duration_ms,
                escape(&p.result)
            )
        },
    );
    let last_commit = repository.last_commit.as_ref().map_or_else(
        || "none yet".to_owned(),
        |c| format!("<code>{}</code> · {}", escape(&short(&c.id)), escape(&c.at)),
    );
    let _ = write!(
        html,
        "<div class=\"cards\">\
         <div class=\"card\"><b>Policies</b>{total} · {up_to_date} up to date · {failing} failing or held back</div>\
         <div class=\"card\"><b>Last pass</b>{last_pass}</div>\
         <div class=\"card\"><b>Last commit</b>{last_commit}</div></div>",
        total = policies.len(),
    );
    if let Some(error) = &repository.last_error {
        let _ = write!(
            html,
            "<p class=\"err\"><span class=\"badge bad\">error</span> {}</p>",
            escape(error)
        );
    }
    if !repository.findings.is_empty() {
        html.push_str("<ul class=\"findings\">");
        for finding in &repository.findings {
            let _ = write!(html, "<li><code>{}</code></li>", escape(finding));
        }
        html.push_str("</ul>");
    }
    html.push_str(
        "<table><thead><tr><th>Policy</th><th>Image</th><th>Current</th><th>Latest</th>\
         <th>Last scan</th><th>Last commit</th><th>Last error</th></tr></thead><tbody>",
    );
    if policies.is_empty() {
        html.push_str("<tr><td colspan=\"7\">No policies watched yet.</td></tr>");
    }
    for p in policies {
        let state = if let Some(opens) = &p.waiting_for_window {
            format!(
                "<span class=\"badge pending\">waiting for window until {}</span>",
                escape(opens)
            )
        } else if p.last_error.is_some() {
            "<span class=\"badge bad\">error</span>".to_owned()
        } else if !p.findings.is_empty() {
            "<span class=\"badge bad\">held back</span>".to_owned()
        } else if p.up_to_date {
            "<span class=\"badge ok\">up to date</span>".to_owned()
        } else {
            "<span class=\"badge pending\">pending</span>".to_owned()
        };
        let promotion = p.promotion.as_ref().map_or_else(String::new, |pr| {
            let soaking = match (&pr.soaking, &pr.eligible_at) {
                (Some(value), Some(at)) => format!(
                    "<br>soaking <code>{}</code> until {}",
                    escape(value),
                    escape(at)
                ),
                _ => String::new(),
            };
            let picked = pr.picked_commit.as_deref().map_or_else(String::new, |c| {
                format!("<br>picked from <code>{}</code>", escape(&short(c)))
            });
            let last = pr.last_promotion.as_ref().map_or_else(
                || "<br>not promoted yet".to_owned(),
                |l| {
                    format!(
                        "<br>last promoted <code>{}</code> in <code>{}</code> at {}",
                        escape(&l.value),
                        escape(&short(&l.commit)),
                        escape(&l.at)
                    )
                },
            );
            format!(
                "<br><span class=\"meta\">promoted from <code>{}</code> ({}){soaking}{picked}{last}</span>",
                escape(&pr.from),
                escape(&pr.repository)
            )
        });
        let _ = write!(
            html,
            "<tr><td><code>{id}</code> {state}{promotion}</td><td><code>{image}</code></td><td>{current}</td>\
             <td><b>{latest}</b></td><td>{scan}</td><td><code>{commit}</code></td><td class=\"err\">{error}</td></tr>",
            id = escape(&p.id),
            image = escape(&p.image),
            current = escape(&p.current.join(", ")),
            latest = match &p.verified {
                Some(v) => format!(
                    "{}<br><span class=\"meta\">verified {}</span>",
                    escape(p.latest.as_deref().unwrap_or("—")),
                    escape(v)
                ),
                None => escape(p.latest.as_deref().unwrap_or("—")),
            },
            scan = escape(p.last_scan.as_deref().unwrap_or("—")),
            commit = escape(&p.last_commit.as_deref().map_or("—".to_owned(), short)),
            error = p
                .last_error
                .iter()
                .chain(&p.tag_moved)
                .chain(&p.findings)
                .chain(&p.unsigned)
                .map(|e| escape(e))
                .collect::<Vec<_>>()
                .join("<br>"),
        );
    }
    html.push_str("</tbody></table>");
}
