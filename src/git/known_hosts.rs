//! OpenSSH `known_hosts` files, read the way `ssh` reads them, to decide
//! whether the host key an SSH server presents is the one we expect.
//!
//! Supported: comma-separated host patterns with `*` and `?` wildcards and
//! `!` negation, `[host]:port` names for non-standard ports, hashed names
//! (`|1|salt|hmac`, as `ssh-keygen -H` writes them), `@revoked` lines.
//! `@cert-authority` lines are read but never match: the SSH library
//! crowsnest uses does not present host certificates, so such a host needs
//! a plain key line. There is no "accept anything" mode.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Digest;

use super::GitError;

/// A parsed `known_hosts` file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// `(negated, lower-case pattern)` pairs.
    Patterns(Vec<(bool, String)>),
    Hashed {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// What the file says about a host and the key it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host lists exactly this key.
    Known,
    /// The key is listed as `@revoked`.
    Revoked,
    /// The host is listed, but with other keys (of these types).
    Mismatch { known_types: Vec<String> },
    /// No line names this host.
    Unknown,
}

impl KnownHosts {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<KnownHosts, GitError> {
        let text = std::fs::read_to_string(path).map_err(|source| GitError::ReadSecret {
            what: "the known hosts file (git.auth.knownHostsFile)",
            path: path.to_owned(),
            source,
        })?;
        KnownHosts::parse(path, &text)
    }

    /// Parses known_hosts text; `path` is for messages. A malformed line is
    /// an error naming its line number: this file decides whom we trust.
    pub fn parse(path: &Path, text: &str) -> Result<KnownHosts, GitError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| GitError::KnownHosts {
                path: path.to_owned(),
                message: format!("line {}: {message}", index + 1),
            };
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => return Err(bad(format!("unknown marker {m}"))),
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
                return Err(bad(
                    "expected `hosts key-type base64-key`, as ssh-keyscan prints".into(),
                ));
            };
            let key = STANDARD
                .decode(key_b64)
                .map_err(|e| bad(format!("the key is not valid base64: {e}")))?;
            if blob_key_type(&key).as_deref() != Some(key_type) {
                return Err(bad(format!(
                    "the key does not hold a {key_type} key (is the line truncated?)"
                )));
            }
            let hosts = if let Some(hashed) = first.strip_prefix("|1|") {
                let (salt, hash) = hashed
                    .split_once('|')
                    .ok_or_else(|| bad("hashed host name is not |1|salt|hash".into()))?;
                let decode = |s: &str| {
                    STANDARD
                        .decode(s)
                        .map_err(|e| bad(format!("hashed host name is not base64: {e}")))
                };
                Hosts::Hashed {
                    salt: decode(salt)?,
                    hash: decode(hash)?,
                }
            } else {
                Hosts::Patterns(
                    first
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| match p.strip_prefix('!') {
                            Some(rest) => (true, rest.to_ascii_lowercase()),
                            None => (false, p.to_ascii_lowercase()),
                        })
                        .collect(),
                )
            };
            entries.push(Entry {
                marker,
                hosts,
                key_type: key_type.to_owned(),
                key,
            });
        }
        Ok(KnownHosts {
            path: path.to_owned(),
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks `key` (the SSH wire-format public key blob) presented by
    /// `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Verdict {
        let name = lookup_name(host, port);
        let matching = self.entries.iter().filter(|e| e.hosts.matches(&name));
        let mut known_types = Vec::new();
        let mut known = false;
        for entry in matching {
            match entry.marker {
                Marker::Revoked if entry.key == key => return Verdict::Revoked,
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if entry.key == key => known = true,
                Marker::None => known_types.push(entry.key_type.clone()),
            }
        }
        // A revoked key listed anywhere (any host) is refused, as ssh does.
        if self
            .entries
            .iter()
            .any(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Verdict::Revoked;
        }
        if known {
            Verdict::Known
        } else if known_types.is_empty() {
            Verdict::Unknown
        } else {
            known_types.sort();
            known_types.dedup();
            Verdict::Mismatch { known_types }
        }
    }
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut positive = false;
                for (negated, pattern) in patterns {
                    if glob(pattern.as_bytes(), name.as_bytes()) {
                        if *negated {
                            return false;
                        }
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

/// The name ssh looks a host up under: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `*` matches any run of characters, `?` any one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The algorithm name at the start of an SSH public key blob.
pub fn blob_key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut out = (kind.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn line(hosts: &str, key: &[u8]) -> String {
        let kind = blob_key_type(key).unwrap();
        format!("{hosts} {kind} {}\n", STANDARD.encode(key))
    }

    fn parse(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("known_hosts"), text).unwrap()
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn exact_names_ports_patterns_and_negation() {
        let a = blob("ssh-ed25519", &[1; 32]);
        let b = blob("ssh-ed25519", &[2; 32]);
        let c = blob("ecdsa-sha2-nistp256", &[3; 65]);
        let file = parse(&format!(
            "# comment\n\n{}{}{}{}",
            line("git.example.com,10.0.0.1", &a),
            line("[127.0.0.1]:2222", &b),
            line("*.corp.example,!evil.corp.example", &c),
            line("[*.ports.example]:2?22", &a),
        ));
        let cases = [
            ("git.example.com", 22, &a, Verdict::Known),
            ("GIT.example.com", 22, &a, Verdict::Known),
            ("10.0.0.1", 22, &a, Verdict::Known),
            // Port 2222 is a different name: the port-22 line does not apply.
            ("git.example.com", 2222, &a, Verdict::Unknown),
            ("127.0.0.1", 2222, &b, Verdict::Known),
            ("127.0.0.1", 22, &b, Verdict::Unknown),
            (
                "127.0.0.1",
                2222,
                &a,
                Verdict::Mismatch {
                    known_types: vec!["ssh-ed25519".into()],
                },
            ),
            ("build.corp.example", 22, &c, Verdict::Known),
            ("evil.corp.example", 22, &c, Verdict::Unknown),
            ("x.ports.example", 2122, &a, Verdict::Known),
            ("x.ports.example", 22, &a, Verdict::Unknown),
            ("elsewhere.example", 22, &a, Verdict::Unknown),
        ];
        for (host, port, key, want) in cases {
            assert_eq!(file.check(host, port, key), want, "{host}:{port}");
        }
    }

    #[test]
    fn hashed_names_match_like_ssh_keygen_h() {
        let a = blob("ssh-ed25519", &[7; 32]);
        let file = parse(&format!(
            "{}{}",
            line(&hashed("[127.0.0.1]:2222", b"0123456789abcdefghij"), &a),
            line(&hashed("git.example.com", b"saltsaltsaltsaltsalt"), &a)
        ));
        assert_eq!(file.check("127.0.0.1", 2222, &a), Verdict::Known);
        assert_eq!(file.check("git.example.com", 22, &a), Verdict::Known);
        assert_eq!(file.check("127.0.0.1", 22, &a), Verdict::Unknown);
        assert_eq!(file.check("127.0.0.1", 2223, &a), Verdict::Unknown);
    }

    #[test]
    fn revoked_keys_are_refused_even_when_also_listed() {
        let a = blob("ssh-ed25519", &[9; 32]);
        let file = parse(&format!(
            "{}@revoked {}",
            line("git.example.com", &a),
            line("*", &a)
        ));
        assert_eq!(file.check("git.example.com", 22, &a), Verdict::Revoked);
    }

    #[test]
    fn cert_authority_lines_never_match_a_plain_key() {
        let a = blob("ssh-ed25519", &[4; 32]);
        let file = parse(&format!("@cert-authority {}", line("*.example.com", &a)));
        assert_eq!(file.check("git.example.com", 22, &a), Verdict::Unknown);
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let a = blob("ssh-ed25519", &[1; 32]);
        let cases = [
            ("host\n".to_owned(), "line 1: expected"),
            (
                "# c\nhost ssh-ed25519 !!!\n".to_owned(),
                "line 2: the key is not valid base64",
            ),
            (
                format!("host ssh-rsa {}\n", STANDARD.encode(&a)),
                "line 1: the key does not hold a ssh-rsa key",
            ),
            (
                "@bogus host ssh-ed25519 AAAA\n".to_owned(),
                "line 1: unknown marker @bogus",
            ),
            (
                format!("|1|bm90LWJhc2U2NA== ssh-ed25519 {}\n", STANDARD.encode(&a)),
                "line 1: hashed host name is not |1|salt|hash",
            ),
        ];
        for (text, want) in cases {
            let err = KnownHosts::parse(Path::new("/k/known_hosts"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("/k/known_hosts: "), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn lookup_names_follow_ssh() {
        assert_eq!(lookup_name("Git.Example.com", 22), "git.example.com");
        assert_eq!(lookup_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(lookup_name("[::1]", 22), "::1");
        assert_eq!(lookup_name("::1", 2222), "[::1]:2222");
    }

    #[test]
    fn fingerprints_are_printed_like_ssh_keygen() {
        // `ssh-keygen -lf` of this public key prints this fingerprint.
        let key = STANDARD
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIMD47rIiPzoacoADV1pnGTmU4onIAUMvLSvmu0or4h+P")
            .unwrap();
        assert_eq!(blob_key_type(&key).as_deref(), Some("ssh-ed25519"));
        assert_eq!(
            fingerprint(&key),
            "SHA256:FM3rZMIwvg3uvKy2OOyp8xsfSJ+TWPvbaTfKnOPGNqI"
        );
    }
}
