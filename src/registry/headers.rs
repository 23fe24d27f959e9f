//! Pure parsers for the response headers the distribution protocol leans
//! on: `Link` (pagination), `WWW-Authenticate` (the auth challenge) and
//! `Retry-After` (rate limiting).

use std::time::{Duration, SystemTime};

use url::Url;

/// The URL of the `rel="next"` entry of a `Link` header, resolved against
/// the URL of the page that carried it (registries send relative links).
/// `Ok(None)` when there is no next entry.
pub(crate) fn next_link(header: &str, base: &Url) -> Result<Option<Url>, String> {
    for entry in split_outside_quotes(header, ',') {
        let entry = entry.trim();
        let Some(rest) = entry.strip_prefix('<') else {
            continue;
        };
        let Some((target, params)) = rest.split_once('>') else {
            return Err(format!("Link header entry {entry:?} has no closing '>'"));
        };
        let is_next = split_outside_quotes(params, ';').any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return base
                .join(target.trim())
                .map(Some)
                .map_err(|e| format!("Link header target {target:?} is not a URL: {e}"));
        }
    }
    Ok(None)
}

/// Splits on `separator` except inside double quotes.
fn split_outside_quotes(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                pieces.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces.into_iter()
}

/// What a 401 asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    /// The token flow: fetch a token from `realm` for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value; `None` for schemes crowsnest does not
/// speak (or garbage).
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for param in split_outside_quotes(params, ',') {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm.filter(|r| !r.is_empty())?,
        service,
        scope,
    })
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if escaped || c != '\\' {
                    out.push(c);
                    escaped = false;
                } else {
                    escaped = true;
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date, relative to `now`.
pub(crate) fn retry_after(header: &str, now: SystemTime) -> Option<Duration> {
    let header = header.trim();
    if let Ok(seconds) = header.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(header).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_resolve_against_the_page() {
        let base = Url::parse("https://quay.io/v2/org/app/tags/list?n=100").unwrap();
        let cases = [
            (
                r#"</v2/org/app/tags/list?n=100&last=v1.2>; rel="next""#,
                Some("https://quay.io/v2/org/app/tags/list?n=100&last=v1.2"),
            ),
            (
                r#"<https://quay.io/v2/org/app/tags/list?last=b>; rel=next"#,
                Some("https://quay.io/v2/org/app/tags/list?last=b"),
            ),
            (
                r#"</prev>; rel="prev", </v2/x/tags/list?last=a%2Cb>; rel="next""#,
                Some("https://quay.io/v2/x/tags/list?last=a%2Cb"),
            ),
            (r#"</v2/x/tags/list?last=z>; rel="prev""#, None),
            ("", None),
        ];
        for (header, want) in cases {
            let got = next_link(header, &base).unwrap().map(|u| u.to_string());
            assert_eq!(got.as_deref(), want, "{header}");
        }
        assert!(next_link("<unterminated; rel=next", &base).is_err());
    }

    #[test]
    fn challenges_parse_quoted_commas_and_case() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/node:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="https://ghcr.io/token""#),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: None,
                scope: None,
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
