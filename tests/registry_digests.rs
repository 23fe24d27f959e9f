//! Tag digests and platforms against the real CNCF registry: a HEAD when
//! only the digest is wanted, the index digest for multi-arch images, and
//! manifests and config blobs fetched once and cached by digest.

mod support;

use crowsnest::model::{DigestReflection, ImageName, Platform};
use crowsnest::registry::Registry;
use support::registry::{Auth, Logged, RegistryServer};
use support::token::IssuerOptions;

fn image(reg: &RegistryServer, repository: &str) -> ImageName {
    ImageName::parse(&format!("{}/{repository}", reg.host())).unwrap()
}

fn lines(requests: &[Logged]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path(), r.status))
        .collect()
}

fn platform(text: &str) -> Platform {
    Platform::parse(text).unwrap()
}

#[tokio::test]
async fn a_digest_alone_costs_one_head() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let pushed = reg.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let mark = reg.request_count();

    let info = registry.inspect(&name, "1.1.0", None).await.unwrap();

    assert_eq!(info.digest, pushed[1].digest);
    assert!(info.provides_platform);
    assert_eq!(
        info.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        lines(&reg.requests_since(mark)),
        ["HEAD /v2/demo/app/manifests/1.1.0 200"]
    );
}

#[tokio::test]
async fn digest_reflection_asks_the_registry_only_when_it_must() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let pushed = reg.push_tags("demo/app", &["1.0.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let mark = reg.request_count();
    let digest = |reflection, known| registry.digest(&name, "1.0.0", reflection, known);

    assert_eq!(digest(DigestReflection::Never, None).await.unwrap(), None);
    assert_eq!(
        digest(DigestReflection::IfNotPresent, Some("sha256:kept"))
            .await
            .unwrap()
            .as_deref(),
        Some("sha256:kept")
    );
    assert!(reg.requests_since(mark).is_empty(), "no request so far");
    let fresh = Some(pushed[0].digest.clone());
    assert_eq!(
        digest(DigestReflection::IfNotPresent, None).await.unwrap(),
        fresh
    );
    assert_eq!(
        digest(DigestReflection::Always, Some("sha256:old"))
            .await
            .unwrap(),
        fresh
    );
    assert_eq!(reg.requests_since(mark).len(), 2);
}

#[tokio::test]
async fn a_multi_arch_tag_has_its_index_digest_and_its_platforms() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let index = reg.push_index("demo/app", "2.0.0", &["linux/amd64", "linux/arm/v7"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let mark = reg.request_count();

    let arm = registry
        .inspect(&name, "2.0.0", Some(&platform("linux/arm/v7")))
        .await
        .unwrap();
    assert_eq!(arm.digest, index.digest, "the index digest, not a child's");
    assert!(arm.provides_platform);
    assert_eq!(
        arm.platforms,
        [platform("linux/amd64"), platform("linux/arm/v7")]
    );
    assert_eq!(
        arm.media_type.as_deref(),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let s390x = registry
        .inspect(&name, "2.0.0", Some(&platform("linux/s390x")))
        .await
        .unwrap();
    assert!(!s390x.provides_platform);
    assert_eq!(s390x.digest, index.digest);
    // The index is read once; the second question is a HEAD and the cache.
    assert_eq!(
        lines(&reg.requests_since(mark)),
        [
            "GET /v2/demo/app/manifests/2.0.0 200",
            "HEAD /v2/demo/app/manifests/2.0.0 200",
        ]
    );
}

#[tokio::test]
async fn single_platform_images_read_each_config_blob_once() {
    let reg = RegistryServer::start(Auth::Anonymous);
    // Three tags sharing one linux/amd64 config blob, one arm64 image.
    reg.push_tags("demo/app", &["1.0.0", "1.1.0", "1.2.0"]);
    reg.push_image("demo/app", "1.3.0", "linux/arm64");
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let amd64 = platform("linux/amd64");
    let mark = reg.request_count();

    let mut provides = Vec::new();
    for tag in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        let info = registry.inspect(&name, tag, Some(&amd64)).await.unwrap();
        provides.push(info.provides_platform);
    }

    assert_eq!(provides, [true, true, true, false]);
    let seen = lines(&reg.requests_since(mark));
    let blobs = seen.iter().filter(|l| l.contains("/blobs/")).count();
    let manifests = seen.iter().filter(|l| l.contains("/manifests/")).count();
    assert_eq!((manifests, blobs), (4, 2), "{seen:#?}");
}

#[tokio::test]
async fn a_moved_tag_is_noticed_by_its_head_and_read_again() {
    let reg = RegistryServer::start(Auth::Anonymous);
    reg.push_image("demo/app", "latest", "linux/amd64");
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let arm64 = platform("linux/arm64");

    let before = registry
        .inspect(&name, "latest", Some(&arm64))
        .await
        .unwrap();
    assert!(!before.provides_platform);
    let moved = reg.push_index("demo/app", "latest", &["linux/amd64", "linux/arm64"]);
    let mark = reg.request_count();
    let after = registry
        .inspect(&name, "latest", Some(&arm64))
        .await
        .unwrap();

    assert_eq!(after.digest, moved.digest);
    assert_ne!(after.digest, before.digest);
    assert!(after.provides_platform);
    assert_eq!(
        lines(&reg.requests_since(mark)),
        [
            "HEAD /v2/demo/app/manifests/latest 200".to_owned(),
            format!("GET /v2/demo/app/manifests/{} 200", moved.digest),
        ]
    );
}

#[tokio::test]
async fn an_unknown_tag_is_not_found_and_a_malformed_one_is_refused() {
    let reg = RegistryServer::start(Auth::Anonymous);
    reg.push_tags("demo/app", &["1.0.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let err = registry.inspect(&name, "9.9.9", None).await.unwrap_err();
    assert_eq!(err.kind(), "not_found", "{err}");
    assert!(err.to_string().contains("tag 9.9.9"), "{err}");
    let mark = reg.request_count();
    let err = registry
        .inspect(&name, "../../etc", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_tag", "{err}");
    assert!(reg.requests_since(mark).is_empty());
}

#[tokio::test]
async fn inspecting_with_token_auth_uses_the_repositorys_one_token() {
    let reg = RegistryServer::start(Auth::Token(IssuerOptions::default()));
    reg.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let amd64 = platform("linux/amd64");
    let tags = registry.list_tags(&name).await.unwrap();
    for tag in &tags {
        assert!(
            registry
                .inspect(&name, tag, Some(&amd64))
                .await
                .unwrap()
                .provides_platform
        );
    }
    assert_eq!(reg.issuer().unwrap().requests().len(), 1);
    let unauthorized = reg
        .requests()
        .iter()
        .filter(|r| r.status == 401 && r.method != "PUT" && r.method != "POST")
        .count();
    assert_eq!(unauthorized, 1, "one challenge for the host");
}
