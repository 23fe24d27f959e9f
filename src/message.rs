//! Commit messages: the default subject and body, or `git.messageTemplate`
//! (checked by `config` when it is read, rendered by `git` when it commits)
//! rendered with minijinja; the `Image-Update` trailers are always appended
//! after a blank line, whatever the template says.
//!
//! # `git.messageTemplate`
//!
//! A [minijinja](https://docs.rs/minijinja) (Jinja2) template for the
//! subject and body. Blocks strip their own line (`trim_blocks` and
//! `lstrip_blocks` are on), an unknown variable is an error (checked when
//! crowsnest starts), and surrounding blank lines are trimmed. Variables:
//!
//! | variable | type | example |
//! |---|---|---|
//! | `changes` | list of the scalars rewritten by this commit | |
//! | `changes[].policy` | `namespace:name` of the policy | `default:podinfo` |
//! | `changes[].namespace`, `changes[].name` | the two halves | `default`, `podinfo` |
//! | `changes[].file` | repository-relative path | `apps/podinfo/deploy.yaml` |
//! | `changes[].line`, `changes[].column` | 1-based position of the scalar | `12`, `16` |
//! | `changes[].field` | `image`, `tag`, `name` or `digest` | `image` |
//! | `changes[].old`, `changes[].new` | the scalar before and after | `ghcr.io/s/podinfo:6.1.0` |
//! | `updates` | one per policy and old value (what the trailers say) | |
//! | `updates[].policy`, `.namespace`, `.name` | as above | |
//! | `updates[].from`, `updates[].to` | full references `image:tag[@digest]` | `ghcr.io/s/podinfo:6.2.0` |
//! | `files` | sorted, distinct changed files | `["apps/a.yaml"]` |
//! | `policies` | sorted, distinct `namespace:name` of the policies involved | `["default:podinfo"]` |
//! | `images` | sorted, distinct new references (`updates[].to`) | `["ghcr.io/s/podinfo:6.2.0"]` |
//!
//! Example:
//!
//! ```text
//! messageTemplate: |
//!   chore(images): {{ images | join(", ") }}
//!
//!   {% for c in changes %}
//!   - {{ c.file }}:{{ c.line }} {{ c.old }} -> {{ c.new }}
//!   {% endfor %}
//! ```

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::model::{Change, Field, ImageUpdate, Located, PolicyId, Position};

/// A `git.messageTemplate` that does not compile or render.
#[derive(Debug, thiserror::Error)]
#[error("git.messageTemplate: {message}")]
pub struct MessageError {
    pub message: String,
}

/// What one commit changes, as the message describes it.
#[derive(Debug, Clone, Copy)]
pub struct MessageInput<'a> {
    pub changes: &'a [Change],
    pub updates: &'a [ImageUpdate],
    /// Complete trailer lines (`Image-Update: ...`), appended verbatim.
    pub trailers: &'a [String],
}

/// A checked `git.messageTemplate`.
#[derive(Debug)]
pub struct MessageTemplate {
    env: Environment<'static>,
}

const NAME: &str = "messageTemplate";

impl MessageTemplate {
    /// Parses the template and renders it once with sample values, so a
    /// syntax error or an unknown variable is reported at startup.
    pub fn compile(source: &str) -> Result<MessageTemplate, MessageError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(template_error)?;
        let template = MessageTemplate { env };
        let sample_change = Change {
            policy: PolicyId::new("default", "app"),
            at: Located::new("apps/app.yaml", Position::new(1, 1)),
            field: Field::Image,
            old: "registry.example/app:1.0.0".into(),
            new: "registry.example/app:1.0.1".into(),
        };
        let sample_update = ImageUpdate {
            policy: sample_change.policy.clone(),
            from: sample_change.old.clone(),
            to: sample_change.new.clone(),
        };
        template.render(&MessageInput {
            changes: &[sample_change],
            updates: &[sample_update],
            trailers: &[],
        })?;
        Ok(template)
    }

    fn render(&self, input: &MessageInput<'_>) -> Result<String, MessageError> {
        let text = self
            .env
            .get_template(NAME)
            .and_then(|t| t.render(Context::new(input)))
            .map_err(template_error)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(MessageError {
                message: "the template rendered an empty message".into(),
            });
        }
        Ok(text.to_owned())
    }
}

fn template_error(e: minijinja::Error) -> MessageError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    MessageError { message }
}

/// The full commit message: the template's text (or the default subject
/// and body), a blank line, then the trailers, ending with a newline.
pub fn compose(
    template: Option<&MessageTemplate>,
    input: &MessageInput<'_>,
) -> Result<String, MessageError> {
    let mut message = match template {
        Some(t) => t.render(input)?,
        None => default_text(input),
    };
    if !input.trailers.is_empty() {
        message.push_str("\n\n");
        message.push_str(&input.trailers.join("\n"));
    }
    message.push('\n');
    Ok(message)
}

/// A message rendered elsewhere (a Flux `messageTemplate`), trimmed, then
/// the trailers, as [`compose`] ends every message; `None` when the text
/// is empty.
pub fn with_trailers(text: &str, trailers: &[String]) -> Option<String> {
    let mut message = text.trim().to_owned();
    if message.is_empty() {
        return None;
    }
    if !trailers.is_empty() {
        message.push_str("\n\n");
        message.push_str(&trailers.join("\n"));
    }
    message.push('\n');
    Some(message)
}

/// `Update image X` (or `Update N images`), a blank line, and one line per
/// changed scalar.
fn default_text(input: &MessageInput<'_>) -> String {
    let images: BTreeSet<&str> = input.updates.iter().map(|u| u.to.as_str()).collect();
    let mut text = match (images.len(), images.iter().next()) {
        (1, Some(image)) => format!("Update image {image}"),
        (0, _) => match input.changes.len() {
            1 => "Update 1 image reference".to_owned(),
            n => format!("Update {n} image references"),
        },
        (n, _) => format!("Update {n} images"),
    };
    if !input.changes.is_empty() {
        text.push('\n');
    }
    for change in input.changes {
        text.push_str(&format!(
            "\n- {} {}: {} {} -> {}",
            change.policy, change.at, change.field, change.old, change.new
        ));
    }
    text
}

#[derive(Serialize)]
struct Context<'a> {
    changes: Vec<ChangeView<'a>>,
    updates: Vec<UpdateView<'a>>,
    files: BTreeSet<&'a str>,
    policies: BTreeSet<String>,
    images: BTreeSet<&'a str>,
}

#[derive(Serialize)]
struct ChangeView<'a> {
    policy: String,
    namespace: &'a str,
    name: &'a str,
    file: &'a str,
    line: u32,
    column: u32,
    field: String,
    old: &'a str,
    new: &'a str,
}

#[derive(Serialize)]
struct UpdateView<'a> {
    policy: String,
    namespace: &'a str,
    name: &'a str,
    from: &'a str,
    to: &'a str,
}

impl<'a> Context<'a> {
    fn new(input: &MessageInput<'a>) -> Context<'a> {
        Context {
            changes: input
                .changes
                .iter()
                .map(|c| ChangeView {
                    policy: c.policy.to_string(),
                    namespace: &c.policy.namespace,
                    name: &c.policy.name,
                    file: &c.at.file,
                    line: c.at.position.line,
                    column: c.at.position.column,
                    field: c.field.to_string(),
                    old: &c.old,
                    new: &c.new,
                })
                .collect(),
            updates: input
                .updates
                .iter()
                .map(|u| UpdateView {
                    policy: u.policy.to_string(),
                    namespace: &u.policy.namespace,
                    name: &u.policy.name,
                    from: &u.from,
                    to: &u.to,
                })
                .collect(),
            files: input.changes.iter().map(|c| c.at.file.as_str()).collect(),
            policies: input
                .changes
                .iter()
                .map(|c| &c.policy)
                .chain(input.updates.iter().map(|u| &u.policy))
                .map(|p| p.to_string())
                .collect(),
            images: input.updates.iter().map(|u| u.to.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(file: &str, line: u32, old: &str, new: &str) -> Change {
        Change {
            policy: PolicyId::new("default", "podinfo"),
            at: Located::new(file, Position::new(line, 16)),
            field: Field::Image,
            old: old.into(),
            new: new.into(),
        }
    }

    fn update(from: &str, to: &str) -> ImageUpdate {
        ImageUpdate {
            policy: PolicyId::new("default", "podinfo"),
            from: from.into(),
            to: to.into(),
        }
    }

    fn trailer(u: &ImageUpdate) -> String {
        format!("Image-Update: {u}")
    }

    #[test]
    fn default_message_lists_each_change_then_the_trailers() {
        let changes = [
            change(
                "apps/a.yaml",
                12,
                "ghcr.io/s/podinfo:6.1.0",
                "ghcr.io/s/podinfo:6.2.0",
            ),
            change(
                "apps/b.yaml",
                3,
                "ghcr.io/s/podinfo:6.1.0",
                "ghcr.io/s/podinfo:6.2.0",
            ),
        ];
        let updates = [update("ghcr.io/s/podinfo:6.1.0", "ghcr.io/s/podinfo:6.2.0")];
        let trailers = [trailer(&updates[0])];
        let message = compose(
            None,
            &MessageInput {
                changes: &changes,
                updates: &updates,
                trailers: &trailers,
            },
        )
        .unwrap();
        insta::assert_snapshot!(message, @r"
        Update image ghcr.io/s/podinfo:6.2.0

        - default:podinfo apps/a.yaml:12:16: image ghcr.io/s/podinfo:6.1.0 -> ghcr.io/s/podinfo:6.2.0
        - default:podinfo apps/b.yaml:3:16: image ghcr.io/s/podinfo:6.1.0 -> ghcr.io/s/podinfo:6.2.0

        Image-Update: default:podinfo ghcr.io/s/podinfo:6.1.0 -> ghcr.io/s/podinfo:6.2.0
        ");
    }

    #[test]
    fn template_sees_every_documented_variable_and_trailers_still_follow() {
        let template = MessageTemplate::compile(
            "chore(images): {{ images | join(\", \") }}\n\n\
             {% for c in changes %}\n\
             - {{ c.policy }} ({{ c.namespace }}/{{ c.name }}) {{ c.file }}:{{ c.line }}:{{ c.column }} {{ c.field }} {{ c.old }} -> {{ c.new }}\n\
             {% endfor %}\n\
             {% for u in updates %}\n\
             * {{ u.policy }} {{ u.namespace }} {{ u.name }} {{ u.from }} => {{ u.to }}\n\
             {% endfor %}\n\
             files: {{ files | join(\" \") }}; policies: {{ policies | join(\" \") }}\n\n\n",
        )
        .unwrap();
        let changes = [change("apps/a.yaml", 12, "x:1", "x:2")];
        let updates = [update("x:1", "x:2")];
        let trailers = [trailer(&updates[0])];
        let message = compose(
            Some(&template),
            &MessageInput {
                changes: &changes,
                updates: &updates,
                trailers: &trailers,
            },
        )
        .unwrap();
        insta::assert_snapshot!(message, @r"
        chore(images): x:2

        - default:podinfo (default/podinfo) apps/a.yaml:12:16 image x:1 -> x:2
        * default:podinfo default podinfo x:1 => x:2
        files: apps/a.yaml; policies: default:podinfo

        Image-Update: default:podinfo x:1 -> x:2
        ");
    }

    #[test]
    fn template_mistakes_are_caught_when_compiling() {
        let cases = [
            ("{{ chnages }}", "undefined"),
            ("{% for c in changes %}", "unexpected end of input"),
            ("{% if false %}x{% endif %}", "empty message"),
        ];
        for (source, want) in cases {
            let err = MessageTemplate::compile(source).unwrap_err().to_string();
            assert!(err.starts_with("git.messageTemplate: "), "{err}");
            assert!(err.contains(want), "{source:?}: {err}");
        }
    }
}
