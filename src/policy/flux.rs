//! Flux's image automation objects, read from Git the way the cluster would
//! apply them, so a repository set up for Flux runs under crowsnest
//! unchanged.
//!
//! - `ImageRepository` + `ImagePolicy` (`image.toolkit.fluxcd.io/v1beta2`
//!   and `/v1`) become one [`Policy`] per `ImagePolicy`, named by the
//!   policy's `namespace:name` (what markers say); `imageRepositoryRef` is
//!   resolved by name within the policy's namespace (or the namespace the
//!   reference names).
//! - `ImageUpdateAutomation` becomes an [`Automation`]: the branches, the
//!   author, the path to update and the commit message template that the
//!   daemon uses where its own config leaves them unset.
//!
//! Fields that only mean something inside a cluster (`secretRef`,
//! `serviceAccountName`, `certSecretRef`, `provider`, `proxySecretRef`,
//! `accessFrom`, `signingKey`, ...) are accepted and reported as one
//! [`Warning`] each, naming the crowsnest config key that does the job.
//! Unknown `spec` fields are errors, as in the rest of crowsnest.
//!
//! Mapping choices, each one what Flux would do unless said otherwise:
//! - the written image name is `ImageRepository.spec.image` as given;
//! - `allowDowngrade` is on: Flux writes whatever the policy picks;
//! - an `ImageRepository` without `exclusionList` gets crowsnest's default
//!   (`.sig`, `.att`, `.sbom`), where Flux's default is `^.*\.sig$` alone;
//! - `insecure: true` lets crowsnest use plain http for that registry host.

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::Spanned;

use super::file::{Validator, declared_id, document_texts, split_documents};
use super::{Broken, Declares, Exclusions, Policy, PolicyError};
use crate::config::parse_interval;
use crate::gotemplate::{Map, Struct, Template, Value};
use crate::model::{DigestReflection, Field, ImageName, Located, PolicyId, Position};
use crate::yaml;

/// The API group of Flux's image automation objects.
pub const GROUP: &str = "image.toolkit.fluxcd.io";
/// The versions crowsnest reads.
pub const VERSIONS: [&str; 2] = [
    "image.toolkit.fluxcd.io/v1beta2",
    "image.toolkit.fluxcd.io/v1",
];

mod wire {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use serde_saphyr::Spanned;

    use super::super::file::wire::{FilterWire, RuleWire};

    #[derive(Debug, Deserialize)]
    #[serde(rename = "object", rename_all = "camelCase")]
    pub struct HeaderWire {
        #[serde(default)]
        pub api_version: Option<Spanned<String>>,
        #[serde(default)]
        pub kind: Option<Spanned<String>>,
    }

    /// Any Kubernetes object; `status` and the rest of `metadata` are ignored.
    #[derive(Debug, Deserialize)]
    #[serde(rename = "object", rename_all = "camelCase")]
    pub struct ObjectWire<S> {
        pub metadata: Spanned<MetadataWire>,
        pub spec: Spanned<S>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "metadata", rename_all = "camelCase")]
    pub struct MetadataWire {
        pub name: Spanned<String>,
        #[serde(default)]
        pub namespace: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "spec", deny_unknown_fields, rename_all = "camelCase")]
    pub struct RepositorySpecWire {
        pub image: Spanned<String>,
        #[serde(default)]
        pub interval: Option<Spanned<String>>,
        /// crowsnest has its own request timeouts.
        #[serde(default)]
        #[allow(dead_code)]
        pub timeout: Option<Spanned<String>>,
        #[serde(default)]
        pub exclusion_list: Option<Vec<Spanned<String>>>,
        #[serde(default)]
        pub insecure: Option<Spanned<bool>>,
        #[serde(default)]
        pub suspend: Option<Spanned<bool>>,
        #[serde(default)]
        pub provider: Option<Spanned<String>>,
        #[serde(default)]
        pub secret_ref: Option<Spanned<IgnoredAny>>,
        #[serde(default)]
        pub service_account_name: Option<Spanned<String>>,
        #[serde(default)]
        pub cert_secret_ref: Option<Spanned<IgnoredAny>>,
        #[serde(default)]
        pub proxy_secret_ref: Option<Spanned<IgnoredAny>>,
        #[serde(default)]
        pub access_from: Option<Spanned<IgnoredAny>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "spec", deny_unknown_fields, rename_all = "camelCase")]
    pub struct PolicySpecWire {
        pub image_repository_ref: Spanned<RefWire>,
        pub policy: Spanned<RuleWire>,
        #[serde(default)]
        pub filter_tags: Option<Spanned<FilterWire>>,
        #[serde(default)]
        pub digest_reflection_policy: Option<Spanned<String>>,
        #[serde(default)]
        pub interval: Option<Spanned<String>>,
        #[serde(default)]
        pub suspend: Option<Spanned<bool>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(
        rename = "imageRepositoryRef",
        deny_unknown_fields,
        rename_all = "camelCase"
    )]
    pub struct RefWire {
        pub name: Spanned<String>,
        #[serde(default)]
        pub namespace: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "spec", deny_unknown_fields, rename_all = "camelCase")]
    pub struct AutomationSpecWire {
        #[serde(default)]
        #[allow(dead_code)]
        pub source_ref: Option<IgnoredAny>,
        #[serde(default)]
        pub git: Option<Spanned<GitWire>>,
        #[serde(default)]
        #[allow(dead_code)]
        pub interval: Option<Spanned<String>>,
        #[serde(default)]
        pub update: Option<Spanned<UpdateWire>>,
        #[serde(default)]
        pub suspend: Option<Spanned<bool>>,
        #[serde(default)]
        pub policy_selector: Option<Spanned<IgnoredAny>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "git", deny_unknown_fields, rename_all = "camelCase")]
    pub struct GitWire {
        #[serde(default)]
        pub checkout: Option<Spanned<CheckoutWire>>,
        #[serde(default)]
        pub commit: Option<Spanned<CommitWire>>,
        #[serde(default)]
        pub push: Option<Spanned<PushWire>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "checkout", deny_unknown_fields, rename_all = "camelCase")]
    pub struct CheckoutWire {
        #[serde(rename = "ref")]
        pub reference: Spanned<CheckoutRefWire>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "ref", deny_unknown_fields, rename_all = "camelCase")]
    pub struct CheckoutRefWire {
        #[serde(default)]
        pub branch: Option<Spanned<String>>,
        #[serde(default)]
        pub tag: Option<Spanned<String>>,
        #[serde(default)]
        pub semver: Option<Spanned<String>>,
        #[serde(default)]
        pub name: Option<Spanned<String>>,
        #[serde(default)]
        pub commit: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "commit", deny_unknown_fields, rename_all = "camelCase")]
    pub struct CommitWire {
        #[serde(default)]
        pub author: Option<Spanned<AuthorWire>>,
        #[serde(default)]
        pub signing_key: Option<Spanned<IgnoredAny>>,
        #[serde(default)]
        pub message_template: Option<Spanned<String>>,
        #[serde(default)]
        pub message_template_values: Option<BTreeMap<String, String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "author", deny_unknown_fields, rename_all = "camelCase")]
    pub struct AuthorWire {
        #[serde(default)]
        pub name: Option<Spanned<String>>,
        pub email: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "push", deny_unknown_fields, rename_all = "camelCase")]
    pub struct PushWire {
        #[serde(default)]
        pub branch: Option<Spanned<String>>,
        #[serde(default)]
        pub refspec: Option<Spanned<String>>,
        #[serde(default)]
        pub options: Option<Spanned<IgnoredAny>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "update", deny_unknown_fields, rename_all = "camelCase")]
    pub struct UpdateWire {
        #[serde(default)]
        pub path: Option<Spanned<String>>,
        #[serde(default)]
        pub strategy: Option<Spanned<String>>,
    }

    /// The identity of any object, for Flux's commit template data.
    #[derive(Debug, Default, Deserialize)]
    #[serde(rename = "object", rename_all = "camelCase")]
    pub struct IdentityWire {
        #[serde(default)]
        pub api_version: Option<String>,
        #[serde(default)]
        pub kind: Option<String>,
        #[serde(default)]
        pub metadata: Option<IdentityMetaWire>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename = "metadata", rename_all = "camelCase")]
    pub struct IdentityMetaWire {
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub namespace: Option<String>,
    }
}

/// A Flux field crowsnest accepts but cannot honour, and what to use instead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    pub at: Located,
    pub message: String,
}

/// An `ImageUpdateAutomation`: the settings crowsnest takes from it where
/// the daemon config leaves them unset.
#[derive(Clone, Debug)]
pub struct Automation {
    /// `namespace` and `name`.
    pub id: PolicyId,
    pub declared_at: Located,
    /// `spec.git.checkout.ref.branch`.
    pub checkout_branch: Option<String>,
    /// `spec.git.push.branch`.
    pub push_branch: Option<String>,
    /// `spec.git.commit.author`: name (Flux's is optional; crowsnest then
    /// uses the email) and email.
    pub author: Option<(String, String)>,
    /// `spec.update.path`, repository-relative without `./`; `""` is the root.
    pub update_path: Option<String>,
    pub message: Option<FluxMessage>,
    /// `spec.suspend: true`: crowsnest changes nothing while it is set.
    pub suspended: bool,
}

/// `spec.git.commit.messageTemplate`, checked, with its values.
#[derive(Clone, Debug)]
pub struct FluxMessage {
    pub template: Template,
    /// `spec.git.commit.messageTemplateValues` (`.Values`).
    pub values: BTreeMap<String, String>,
    /// Where the template is written.
    pub at: Located,
}

#[derive(Debug)]
struct Repository {
    id: PolicyId,
    image: ImageName,
    interval: Option<std::time::Duration>,
    exclusions: Exclusions,
    insecure: bool,
    suspended: bool,
    declared_at: Located,
}

#[derive(Debug)]
struct FluxPolicy {
    policy: Policy,
    /// The `ImageRepository` it names, and where it names it.
    repository: PolicyId,
    reference_at: Located,
    suspended: bool,
}

/// Every Flux image object read so far; [`FluxObjects::resolve`] joins them.
#[derive(Debug, Default)]
pub struct FluxObjects {
    repositories: Vec<Repository>,
    policies: Vec<FluxPolicy>,
    pub automations: Vec<Automation>,
    pub warnings: Vec<Warning>,
}

/// `true` when `text` may hold a Flux image object (a cheap test that lets
/// most manifests skip parsing).
pub fn may_contain_flux_objects(text: &str) -> bool {
    text.contains(GROUP)
}

impl FluxObjects {
    /// Reads the Flux image objects of one file; other documents are
    /// skipped. Each object is read on its own: one that does not validate
    /// is returned as [`Broken`] (naming the `ImagePolicy` it declares,
    /// when that can be read) and the others are kept.
    pub fn read(&mut self, file: &str, text: &str) -> Vec<Broken> {
        if !may_contain_flux_objects(text) {
            return Vec::new();
        }
        let headers: Vec<Spanned<wire::HeaderWire>> = match yaml::from_str_multiple(file, text) {
            Ok(headers) => headers,
            Err(e) => {
                let parts = split_documents(text);
                if parts.len() <= 1 {
                    return vec![Broken {
                        declares: Declares::Unknown,
                        error: e.into(),
                    }];
                }
                return parts
                    .iter()
                    .flat_map(|part| self.read(file, part))
                    .collect();
            }
        };
        let validator = Validator { file, text };
        let kinds: Vec<Result<Option<Kind>, PolicyError>> = headers
            .iter()
            .map(|h| self.kind_of(&validator, h))
            .collect();
        if kinds.iter().all(|k| matches!(k, Ok(None))) {
            return Vec::new();
        }
        let starts: Vec<u32> = headers
            .iter()
            .map(|h| yaml::position(&h.referenced).line)
            .collect();
        let mut broken = Vec::new();
        for ((document, kind), header) in document_texts(text, &starts)
            .iter()
            .zip(kinds)
            .zip(&headers)
        {
            let declared_kind = header.value.kind.as_ref().map(|k| k.value.as_str());
            if let Err(error) = self.read_object(file, document, kind) {
                let declares = match declared_kind {
                    Some("ImagePolicy") => {
                        declared_id(file, document, super::file::DEFAULT_NAMESPACE)
                            .map_or(Declares::Unknown, Declares::Policy)
                    }
                    Some("ImageUpdateAutomation") => Declares::Automation,
                    _ => Declares::Unknown,
                };
                broken.push(Broken { declares, error });
            }
        }
        broken
    }

    /// Reads one document of a kind [`FluxObjects::kind_of`] told.
    fn read_object(
        &mut self,
        file: &str,
        document: &str,
        kind: Result<Option<Kind>, PolicyError>,
    ) -> Result<(), PolicyError> {
        let reader = Reader {
            v: Validator {
                file,
                text: document,
            },
            warnings: &mut self.warnings,
        };
        match kind? {
            None => {}
            Some(Kind::Repository) => {
                let object = yaml::from_str(file, document)?;
                let repository = reader.repository(&object)?;
                self.repositories.push(repository);
            }
            Some(Kind::Policy) => {
                let object = yaml::from_str(file, document)?;
                let policy = reader.policy(&object)?;
                self.policies.push(policy);
            }
            Some(Kind::Automation) => {
                let object = yaml::from_str(file, document)?;
                let automation = reader.automation(&object)?;
                self.automations.push(automation);
            }
        }
        Ok(())
    }

    fn kind_of(
        &self,
        v: &Validator<'_>,
        header: &Spanned<wire::HeaderWire>,
    ) -> Result<Option<Kind>, PolicyError> {
        let Some(api_version) = &header.value.api_version else {
            return Ok(None);
        };
        if api_version.value.split('/').next() != Some(GROUP) {
            return Ok(None);
        }
        if !VERSIONS.contains(&api_version.value.as_str()) {
            return Err(v.invalid(
                api_version,
                format!(
                    "apiVersion {} is not supported; crowsnest reads {} (`flux migrate` upgrades older objects)",
                    api_version.value,
                    VERSIONS.join(" and ")
                ),
            ));
        }
        match header.value.kind.as_ref().map(|k| k.value.as_str()) {
            Some("ImageRepository") => Ok(Some(Kind::Repository)),
            Some("ImagePolicy") => Ok(Some(Kind::Policy)),
            Some("ImageUpdateAutomation") => Ok(Some(Kind::Automation)),
            Some(other) => Err(v.invalid(
                header.value.kind.as_ref().expect("matched Some"),
                format!(
                    "kind {other:?} of {GROUP} is not supported; expected ImageRepository, ImagePolicy or ImageUpdateAutomation"
                ),
            )),
            None => Err(v.invalid(header, "document has no kind")),
        }
    }

    /// The policies, each with its `ImageRepository`; a policy whose
    /// repository is missing (or an object declared twice) is an error.
    pub fn resolve(&self) -> Resolved {
        let mut errors = Vec::new();
        let mut repositories: HashMap<&PolicyId, &Repository> = HashMap::new();
        for repository in &self.repositories {
            if let Some(first) = repositories.insert(&repository.id, repository) {
                errors.push(Broken {
                    declares: Declares::Unknown,
                    error: PolicyError::Invalid {
                    at: repository.declared_at.clone(),
                    message: format!(
                        "ImageRepository {}/{} is declared twice; the first declaration is at {}",
                        repository.id.namespace, repository.id.name, first.declared_at
                    ),
                }});
            }
        }
        let mut policies = Vec::new();
        let mut suspended = Vec::new();
        for flux in &self.policies {
            let Some(repository) = repositories.get(&flux.repository) else {
                errors.push(Broken {
                    declares: Declares::Policy(flux.policy.id.clone()),
                    error: PolicyError::Invalid {
                    at: flux.reference_at.clone(),
                    message: format!(
                        "imageRepositoryRef names ImageRepository {}/{}, which is not declared in the folders crowsnest reads Flux objects from",
                        flux.repository.namespace, flux.repository.name
                    ),
                }});
                continue;
            };
            let mut policy = flux.policy.clone();
            policy.image = repository.image.clone();
            policy.interval = policy.interval.or(repository.interval);
            policy.exclusions = repository.exclusions.clone();
            policy.insecure = repository.insecure;
            if flux.suspended || repository.suspended {
                suspended.push(policy);
            } else {
                policies.push(policy);
            }
        }
        Resolved {
            policies,
            suspended,
            errors,
        }
    }

    /// The automation that applies: the one named `pick`, else the only one.
    /// Several without a pick is an error message naming them.
    pub fn automation(&self, pick: Option<&PolicyId>) -> Result<Option<&Automation>, String> {
        match pick {
            Some(id) => self
                .automations
                .iter()
                .find(|a| &a.id == id)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "flux.automation names ImageUpdateAutomation {}/{}, which is not declared",
                        id.namespace, id.name
                    )
                }),
            None => match self.automations.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(one)),
                several => Err(format!(
                    "{} ImageUpdateAutomation objects are declared ({}); set flux.automation in the crowsnest config to the namespace/name of the one to follow",
                    several.len(),
                    several
                        .iter()
                        .map(|a| format!("{}/{} at {}", a.id.namespace, a.id.name, a.declared_at))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        }
    }
}

/// What [`FluxObjects::resolve`] makes of the objects.
#[derive(Debug, Default)]
pub struct Resolved {
    pub policies: Vec<Policy>,
    /// Policies that are (or whose `ImageRepository` is) `suspend: true`:
    /// Flux keeps their last pick, so crowsnest leaves their markers alone.
    pub suspended: Vec<Policy>,
    pub errors: Vec<Broken>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Repository,
    Policy,
    Automation,
}

struct Reader<'a> {
    v: Validator<'a>,
    warnings: &'a mut Vec<Warning>,
}

impl Reader<'_> {
    fn warn<T>(&mut self, at: &Spanned<T>, field: &str, instead: &str) {
        self.warnings.push(Warning {
            at: self.v.at(at),
            message: format!("{field} needs a Kubernetes cluster and is ignored; {instead}"),
        });
    }

    fn id(&self, metadata: &Spanned<wire::MetadataWire>) -> PolicyId {
        let m = &metadata.value;
        PolicyId::new(
            m.namespace
                .as_ref()
                .map_or(super::file::DEFAULT_NAMESPACE, |n| n.value.as_str()),
            m.name.value.clone(),
        )
    }

    fn interval(
        &self,
        value: &Option<Spanned<String>>,
    ) -> Result<Option<std::time::Duration>, PolicyError> {
        value
            .as_ref()
            .map(|i| {
                parse_interval(&i.value)
                    .map_err(|e| self.v.invalid(i, format!("spec.interval: {e}")))
            })
            .transpose()
    }

    fn repository(
        mut self,
        object: &Spanned<wire::ObjectWire<wire::RepositorySpecWire>>,
    ) -> Result<Repository, PolicyError> {
        let spec = &object.value.spec.value;
        let image = ImageName::parse(&spec.image.value)
            .map_err(|e| self.v.invalid(&spec.image, format!("spec.image: {e}")))?;
        let interval = self.interval(&spec.interval)?;
        let exclusions = match &spec.exclusion_list {
            None => Exclusions::default(),
            Some(list) => {
                let texts: Vec<&str> = list.iter().map(|p| p.value.as_str()).collect();
                Exclusions::new(&texts).map_err(|(i, e)| {
                    self.v
                        .pattern_error(&list[i], &format!("exclusionList[{i}] pattern"), e)
                })?
            }
        };
        if let Some(s) = &spec.secret_ref {
            self.warn(s, "spec.secretRef", "set registries.hosts[].username and passwordFile, or registries.dockerConfig, in the crowsnest config");
        }
        if let Some(s) = &spec.service_account_name {
            self.warn(s, "spec.serviceAccountName", "set registries.dockerConfig (or registries.hosts[].username and passwordFile) in the crowsnest config");
        }
        if let Some(s) = &spec.cert_secret_ref {
            self.warn(
                s,
                "spec.certSecretRef",
                "set registries.hosts[].caFile in the crowsnest config",
            );
        }
        if let Some(p) = spec.provider.as_ref().filter(|p| p.value != "generic") {
            let field = format!("spec.provider: {}", p.value);
            self.warn(p, &field, "set registries.dockerConfig with the provider's credential helper (credHelpers) in the crowsnest config");
        }
        if let Some(s) = &spec.proxy_secret_ref {
            self.warn(
                s,
                "spec.proxySecretRef",
                "set HTTPS_PROXY (and NO_PROXY) in crowsnest's environment",
            );
        }
        if let Some(s) = &spec.access_from {
            self.warn(
                s,
                "spec.accessFrom",
                "crowsnest resolves imageRepositoryRef in any namespace of the repository",
            );
        }
        Ok(Repository {
            id: self.id(&object.value.metadata),
            image,
            interval,
            exclusions,
            insecure: spec.insecure.as_ref().is_some_and(|i| i.value),
            suspended: spec.suspend.as_ref().is_some_and(|s| s.value),
            declared_at: self.v.at(object),
        })
    }

    fn policy(
        self,
        object: &Spanned<wire::ObjectWire<wire::PolicySpecWire>>,
    ) -> Result<FluxPolicy, PolicyError> {
        let spec = &object.value.spec.value;
        let id = self.id(&object.value.metadata);
        let reference = &spec.image_repository_ref.value;
        let repository = PolicyId::new(
            reference
                .namespace
                .as_ref()
                .map_or(id.namespace.as_str(), |n| n.value.as_str()),
            reference.name.value.clone(),
        );
        let rule = self.v.rule(&spec.policy)?;
        let filter = spec
            .filter_tags
            .as_ref()
            .map(|f| self.v.filter(f))
            .transpose()?;
        let digest_reflection = match &spec.digest_reflection_policy {
            None => DigestReflection::Never,
            Some(d) => match d.value.as_str() {
                "Never" => DigestReflection::Never,
                "IfNotPresent" => DigestReflection::IfNotPresent,
                "Always" => DigestReflection::Always,
                other => {
                    return Err(self.v.invalid(
                        d,
                        format!(
                            "digestReflectionPolicy {other:?} is not one of: Never, IfNotPresent, Always"
                        ),
                    ));
                }
            },
        };
        let interval = self.interval(&spec.interval)?;
        let placeholder = ImageName::parse("flux.invalid/unresolved").expect("a valid image name");
        Ok(FluxPolicy {
            policy: Policy {
                id,
                image: placeholder,
                interval,
                rule,
                filter,
                exclusions: Exclusions::default(),
                digest_reflection,
                platform: None,
                allow_downgrade: true,
                insecure: false,
                targets: Vec::new(),
                promote: None,
                verify: None,
                window: None,
                declared_at: self.v.at(object),
            },
            repository,
            reference_at: self.v.at(&spec.image_repository_ref),
            suspended: spec.suspend.as_ref().is_some_and(|s| s.value),
        })
    }

    fn automation(
        mut self,
        object: &Spanned<wire::ObjectWire<wire::AutomationSpecWire>>,
    ) -> Result<Automation, PolicyError> {
        let spec = &object.value.spec.value;
        let id = self.id(&object.value.metadata);
        let mut automation = Automation {
            id,
            declared_at: self.v.at(object),
            checkout_branch: None,
            push_branch: None,
            author: None,
            update_path: None,
            message: None,
            suspended: spec.suspend.as_ref().is_some_and(|s| s.value),
        };
        if let Some(selector) = &spec.policy_selector {
            self.warn(selector, "spec.policySelector", "crowsnest updates every marker under the update path; point the markers (or git.path) at the policies to follow");
        }
        if let Some(update) = &spec.update {
            if let Some(strategy) = update
                .value
                .strategy
                .as_ref()
                .filter(|s| s.value != "Setters")
            {
                return Err(self.v.invalid(
                    strategy,
                    format!(
                        "update.strategy {:?} is not supported; Flux and crowsnest know Setters",
                        strategy.value
                    ),
                ));
            }
            if let Some(path) = &update.value.path {
                automation.update_path = Some(self.repo_dir(path)?);
            }
        }
        let Some(git) = &spec.git else {
            return Ok(automation);
        };
        if let Some(checkout) = &git.value.checkout {
            let reference = &checkout.value.reference;
            let r = &reference.value;
            if let Some(other) = r
                .tag
                .as_ref()
                .or(r.semver.as_ref())
                .or(r.name.as_ref())
                .or(r.commit.as_ref())
            {
                return Err(self.v.invalid(
                    other,
                    "git.checkout.ref: crowsnest checks out branches only; set ref.branch",
                ));
            }
            automation.checkout_branch = r.branch.as_ref().map(|b| b.value.clone());
        }
        if let Some(push) = &git.value.push {
            let p = &push.value;
            automation.push_branch = p.branch.as_ref().map(|b| b.value.clone());
            if let Some(refspec) = &p.refspec {
                return Err(self.v.invalid(
                    refspec,
                    "git.push.refspec is not supported; crowsnest pushes to a branch (git.push.branch, or git.pushBranch in the crowsnest config)",
                ));
            }
            if let Some(options) = &p.options {
                self.warnings.push(Warning {
                    at: self.v.at(options),
                    message: "git.push.options is ignored: crowsnest sends no push options".into(),
                });
            }
        }
        if let Some(commit) = &git.value.commit {
            let c = &commit.value;
            if let Some(key) = &c.signing_key {
                self.warn(
                    key,
                    "git.commit.signingKey",
                    "set git.signing (format, keyFile, passphraseFile) in the crowsnest config",
                );
            }
            if let Some(author) = &c.author {
                let email = &author.value.email;
                let name = author
                    .value
                    .name
                    .as_ref()
                    .map_or(&email.value, |n| &n.value);
                for field in [&email.value, name] {
                    if field.trim().is_empty() || field.contains(['<', '>', '\n']) {
                        return Err(self.v.invalid(
                            author,
                            "git.commit.author name and email must be non-empty and must not contain '<', '>' or newlines",
                        ));
                    }
                }
                automation.author = Some((name.clone(), email.value.clone()));
            }
            if let Some(template) = &c.message_template {
                let at = self.v.at(template);
                let compiled = Template::parse(&template.value).map_err(|e| {
                    self.v
                        .invalid(template, format!("git.commit.messageTemplate: {e}"))
                })?;
                let values = c.message_template_values.clone().unwrap_or_default();
                let message = FluxMessage {
                    template: compiled,
                    values,
                    at,
                };
                message
                    .render(&automation.id, &sample_changes())
                    .map_err(|e| self.v.invalid(template, e))?;
                automation.message = Some(message);
            }
        }
        Ok(automation)
    }

    /// `update.path` as crowsnest spells folders: relative, no `./`.
    fn repo_dir(&self, value: &Spanned<String>) -> Result<String, PolicyError> {
        let mut parts = Vec::new();
        for part in value.value.trim_start_matches('/').split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(self
                        .v
                        .invalid(value, "update.path must stay inside the repository"));
                }
                p => parts.push(p),
            }
        }
        Ok(parts.join("/"))
    }
}

/// The object a changed scalar belongs to, as Flux's template data names
/// it (`ObjectIdentifier`); empty fields for a document that has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// One changed scalar, as Flux's template data describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FluxChange {
    pub file: String,
    pub object: ObjectId,
    pub old: String,
    pub new: String,
    /// The marker's setter name: `ns:name`, or `ns:name:tag|name|digest`.
    pub setter: String,
}

impl FluxChange {
    /// Flux's setter name for a policy and field.
    pub fn setter_name(policy: &PolicyId, field: Field) -> String {
        match field.suffix() {
            Some(suffix) => format!("{policy}:{suffix}"),
            None => policy.to_string(),
        }
    }
}

/// The first line of each document of a manifest and the object it holds,
/// for [`FluxChange::object`]: a change belongs to the last document that
/// starts at or before its line. A file that cannot be read that way gives
/// no identities (empty fields, as Flux has for a `kustomization.yaml`).
pub fn object_ids(text: &str) -> Vec<(u32, ObjectId)> {
    let Ok(documents) = yaml::from_str_multiple::<Spanned<wire::IdentityWire>>("", text) else {
        return Vec::new();
    };
    documents
        .into_iter()
        .map(|d| {
            let line = yaml::position(&d.referenced).line;
            let w = d.value;
            let meta = w.metadata.unwrap_or_default();
            (
                line,
                ObjectId {
                    api_version: w.api_version.unwrap_or_default(),
                    kind: w.kind.unwrap_or_default(),
                    name: meta.name.unwrap_or_default(),
                    namespace: meta.namespace.unwrap_or_default(),
                },
            )
        })
        .collect()
}

/// Two changes in two objects, for checking a template when it is loaded.
pub fn sample_changes() -> Vec<FluxChange> {
    let object = |kind: &str, name: &str| ObjectId {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        namespace: "default".into(),
    };
    vec![
        FluxChange {
            file: "apps/app.yaml".into(),
            object: object("Deployment", "app"),
            old: "registry.example/app:1.0.0".into(),
            new: "registry.example/app:1.0.1".into(),
            setter: "default:app".into(),
        },
        FluxChange {
            file: "apps/kustomization.yaml".into(),
            object: ObjectId::default(),
            old: "1.0.0".into(),
            new: "1.0.1".into(),
            setter: "default:app:tag".into(),
        },
    ]
}

impl FluxMessage {
    /// Renders the template over `changes`.
    pub fn render(&self, automation: &PolicyId, changes: &[FluxChange]) -> Result<String, String> {
        let data = template_data(automation, &self.values, changes);
        self.template
            .render(&data)
            .map_err(|e| format!("git.commit.messageTemplate: {e}"))
    }
}

fn change_value(c: &FluxChange) -> Value {
    Value::Struct(Struct {
        type_name: "update.Change",
        fields: vec![
            ("OldValue", Value::str(&c.old)),
            ("NewValue", Value::str(&c.new)),
            ("Setter", Value::str(&c.setter)),
        ],
        display: None,
    })
}

fn object_value(o: &ObjectId) -> Value {
    // kyaml's ResourceIdentifier: TypeMeta (APIVersion, Kind), then
    // NameMeta (Name, Namespace) — the order Go sorts map keys by.
    Value::Struct(Struct {
        type_name: "update.ObjectIdentifier",
        fields: vec![
            ("APIVersion", Value::str(&o.api_version)),
            ("Kind", Value::str(&o.kind)),
            ("Name", Value::str(&o.name)),
            ("Namespace", Value::str(&o.namespace)),
        ],
        display: None,
    })
}

fn object_changes<'a>(changes: impl Iterator<Item = &'a FluxChange>) -> Value {
    let mut by_object: BTreeMap<&ObjectId, Vec<Value>> = BTreeMap::new();
    for c in changes {
        by_object
            .entry(&c.object)
            .or_default()
            .push(change_value(c));
    }
    Value::Map(Map::new(
        "update.ObjectChanges",
        by_object
            .into_iter()
            .map(|(o, list)| (object_value(o), Value::List(list)))
            .collect(),
        Value::List(Vec::new()),
    ))
}

/// Flux's `TemplateData` for a commit: `.AutomationObject`,
/// `.Changed.FileChanges`, `.Changed.Changes`, `.Changed.Objects` and
/// `.Values`. `changes` are in file order, then position: `.Changed.Changes`
/// lists them that way (Flux's order comes from ranging over a Go map and
/// varies from run to run).
pub fn template_data(
    automation: &PolicyId,
    values: &BTreeMap<String, String>,
    changes: &[FluxChange],
) -> Value {
    let mut files: BTreeMap<&str, Vec<&FluxChange>> = BTreeMap::new();
    for c in changes {
        files.entry(&c.file).or_default().push(c);
    }
    let file_changes = Value::Map(Map::new(
        "map[string]update.ObjectChanges",
        files
            .into_iter()
            .map(|(f, cs)| (Value::str(f), object_changes(cs.into_iter())))
            .collect(),
        Value::Map(Map::new(
            "update.ObjectChanges",
            Vec::new(),
            Value::List(Vec::new()),
        )),
    ));
    let changed = Value::Struct(Struct {
        type_name: "update.ResultV2",
        fields: vec![
            ("FileChanges", file_changes),
            (
                "Changes",
                Value::List(changes.iter().map(change_value).collect()),
            ),
            ("Objects", object_changes(changes.iter())),
        ],
        display: None,
    });
    let automation_object = Value::Struct(Struct {
        type_name: "types.NamespacedName",
        fields: vec![
            ("Namespace", Value::str(&automation.namespace)),
            ("Name", Value::str(&automation.name)),
        ],
        display: Some(format!("{}/{}", automation.namespace, automation.name)),
    });
    let values = Value::Map(Map::new(
        "map[string]string",
        values
            .iter()
            .map(|(k, v)| (Value::str(k), Value::str(v)))
            .collect(),
        Value::str(""),
    ));
    Value::Struct(Struct {
        type_name: "TemplateData",
        fields: vec![
            ("AutomationObject", automation_object),
            ("Changed", changed),
            ("Values", values),
        ],
        display: None,
    })
}

/// The object holding the scalar at `at`, from [`object_ids`].
pub fn object_at(ids: &[(u32, ObjectId)], at: Position) -> ObjectId {
    ids.iter()
        .rev()
        .find(|(line, _)| *line <= at.line)
        .map(|(_, o)| o.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
