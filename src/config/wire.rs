//! What the user typed: `crowsnest.yaml` as serde reads it, every struct
//! with `deny_unknown_fields` and every validated value `Spanned` so the
//! validation in `super` can name its line and column.

use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigWire {
    /// The one-repository shorthand: an entry named `default`.
    #[serde(default)]
    pub git: Option<Spanned<GitWire>>,
    /// One entry per repository and branch (PRODUCT.md §7).
    #[serde(default)]
    pub repositories: Option<Spanned<Vec<Spanned<GitWire>>>>,
    #[serde(default)]
    pub registries: Option<RegistriesWire>,
    #[serde(default)]
    pub scan: Option<ScanWire>,
    #[serde(default)]
    pub state_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub http: Option<HttpWire>,
    #[serde(default)]
    pub flux: Option<FluxWire>,
    /// Public keys that make a commit Good-signed (as `history --verify`),
    /// for promotions with `requireSigned`.
    #[serde(default)]
    pub verify_keys: Vec<Spanned<String>>,
    /// Offline trust for keyless image signatures (PRODUCT.md §9).
    #[serde(default)]
    pub sigstore: Option<SigstoreWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SigstoreWire {
    /// A Sigstore `trusted_root.json`: Fulcio CAs and Rekor keys.
    pub trusted_root: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitWire {
    /// Required in `repositories`; `default` under `git`.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub branch: Option<Spanned<String>>,
    #[serde(default)]
    pub push_branch: Option<Spanned<String>>,
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub policies: Option<Spanned<String>>,
    #[serde(default)]
    pub auth: Option<GitAuthWire>,
    #[serde(default)]
    pub author: Option<AuthorWire>,
    #[serde(default)]
    pub signing: Option<Spanned<SigningWire>>,
    #[serde(default)]
    pub message_template: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitAuthWire {
    #[serde(default)]
    pub ssh_key_file: Option<Spanned<String>>,
    #[serde(default)]
    pub ssh_passphrase_file: Option<Spanned<String>>,
    #[serde(default)]
    pub known_hosts_file: Option<Spanned<String>>,
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorWire {
    pub name: Spanned<String>,
    pub email: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SigningWire {
    pub format: Spanned<String>,
    pub key_file: Spanned<String>,
    #[serde(default)]
    pub passphrase_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistriesWire {
    #[serde(default)]
    pub docker_config: Option<Spanned<String>>,
    #[serde(default)]
    pub hosts: Vec<Spanned<HostWire>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostWire {
    pub host: Spanned<String>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanWire {
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpWire {
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    #[serde(default)]
    pub webhook_token_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FluxWire {
    #[serde(default)]
    pub scan_path: Option<bool>,
    #[serde(default)]
    pub automation: Option<Spanned<String>>,
}
