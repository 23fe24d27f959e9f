use super::*;

fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn push(registry: Option<&str>, repository: &str, tag: &str) -> Push {
    Push {
        registry: registry.map(str::to_owned),
        repository: repository.to_owned(),
        tag: Some(tag.to_owned()),
    }
}

#[test]
fn each_registrys_documented_sample_names_its_repository() {
    let cases = [
        (
            Source::Distribution,
            push(Some("127.0.0.1:5000"), "demo/app", "1.2.0"),
        ),
        (
            Source::DockerHub,
            push(Some("docker.io"), "svendowideit/testhook", "latest"),
        ),
        (
            Source::Harbor,
            push(Some("harbor.example.com"), "library/busybox", "3.0.0"),
        ),
        (
            Source::Quay,
            push(Some("quay.io"), "mynamespace/repository", "latest"),
        ),
        (
            Source::GitHub,
            push(Some("ghcr.io"), "octo-org/hello-world", "v1.4.0"),
        ),
        (
            Source::Generic,
            push(Some("127.0.0.1:5000"), "demo/app", "1.2.0"),
        ),
    ];
    for (source, expected) in cases {
        let pushes =
            parse(source, &sample(source.name())).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(pushes, vec![expected], "{source}");
    }
}

#[test]
fn distribution_blob_pushes_pulls_and_digest_pushes_trigger_nothing() {
    let body = br#"{"events":[
        {"action":"push","target":{"mediaType":"application/octet-stream","repository":"demo/app","digest":"sha256:00"},"request":{"host":"r:5000"}},
        {"action":"pull","target":{"repository":"demo/app","tag":"1.0.0"},"request":{"host":"r:5000"}},
        {"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"demo/app","digest":"sha256:11"}}
    ]}"#;
    assert_eq!(parse(Source::Distribution, body), Ok(vec![]));
}

#[test]
fn distribution_without_host_matches_any_registry() {
    let body =
        br#"{"events":[{"action":"push","target":{"repository":"demo/app","tag":"2.0.0"}}]}"#;
    let pushes = parse(Source::Distribution, body).unwrap();
    assert_eq!(pushes, vec![push(None, "demo/app", "2.0.0")]);
    let image = ImageName::parse("registry.example.com/demo/app").unwrap();
    assert!(pushes[0].matches(&image));
}

#[test]
fn docker_hub_official_images_live_under_library() {
    let body = br#"{"push_data":{"tag":"1.27"},"repository":{"repo_name":"nginx"}}"#;
    let pushes = parse(Source::DockerHub, body).unwrap();
    assert_eq!(
        pushes,
        vec![push(Some("docker.io"), "library/nginx", "1.27")]
    );
    assert!(pushes[0].matches(&ImageName::parse("nginx").unwrap()));
    assert!(!pushes[0].matches(&ImageName::parse("ghcr.io/library/nginx").unwrap()));
}

#[test]
fn harbor_events_other_than_push_trigger_nothing() {
    let body = br#"{"type":"PULL_ARTIFACT","event_data":{"resources":[{"tag":"1","resource_url":"h.example.com/p/a:1"}]}}"#;
    assert_eq!(parse(Source::Harbor, body), Ok(vec![]));
}

#[test]
fn github_pings_and_non_container_packages_trigger_nothing() {
    assert_eq!(
        parse(
            Source::GitHub,
            br#"{"zen":"Keep it logically awesome.","hook_id":1}"#
        ),
        Ok(vec![])
    );
    let npm =
        br#"{"action":"published","package":{"name":"x","namespace":"o","package_type":"npm"}}"#;
    assert_eq!(parse(Source::GitHub, npm), Ok(vec![]));
}

#[test]
fn github_registry_package_events_without_a_url_use_the_owner_and_name() {
    let body = br#"{"action":"published","registry_package":{"name":"App","package_type":"container","owner":{"login":"Me"},"package_version":{"container_metadata":{"tag":{"name":"1.0.0"}}}}}"#;
    assert_eq!(
        parse(Source::GitHub, body),
        Ok(vec![push(Some("ghcr.io"), "me/app", "1.0.0")])
    );
}

#[test]
fn malformed_payloads_are_refused_with_a_reason() {
    assert!(matches!(
        parse(Source::Generic, b"not json"),
        Err(WebhookError::Json(_))
    ));
    assert_eq!(
        parse(Source::Generic, br#"{"tag":"1"}"#),
        Err(WebhookError::Missing("image"))
    );
    assert!(matches!(
        parse(Source::Generic, br#"{"image":"Not A/Name"}"#),
        Err(WebhookError::Invalid(_))
    ));
    assert_eq!(
        parse(Source::Quay, br#"{"updated_tags":["x"]}"#),
        Err(WebhookError::Missing("docker_url"))
    );
    let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(parse(Source::Generic, &big), Err(WebhookError::TooLarge));
}

#[test]
fn generic_accepts_a_tag_inside_the_image_reference() {
    assert_eq!(
        parse(
            Source::Generic,
            br#"{"image":"ghcr.io/a/b:1.0.0@sha256:00"}"#
        ),
        Ok(vec![push(Some("ghcr.io"), "a/b", "1.0.0")])
    );
}

#[test]
fn sources_round_trip_through_their_endpoint_names() {
    for source in Source::ALL {
        assert_eq!(Source::from_name(source.name()), Some(source));
    }
    assert_eq!(Source::from_name("gitlab"), None);
}

#[test]
fn authorization_accepts_any_one_valid_proof_and_refuses_wrong_ones() {
    let token = "s3cret-token";
    let body = b"{}";
    let ok = |c: Credentials<'_>| authorize(token, &c, body);
    assert_eq!(ok(Credentials::default()), Err(AuthError::Missing));
    assert_eq!(
        ok(Credentials {
            authorization: Some("Bearer s3cret-token"),
            ..Default::default()
        }),
        Ok(())
    );
    assert_eq!(
        ok(Credentials {
            authorization: Some("Bearer s3cret-tokem"),
            ..Default::default()
        }),
        Err(AuthError::Wrong)
    );
    assert_eq!(
        ok(Credentials {
            authorization: Some("Basic czNjcmV0LXRva2Vu"),
            ..Default::default()
        }),
        Err(AuthError::Wrong)
    );
    assert_eq!(
        ok(Credentials {
            query_token: Some("s3cret-token"),
            ..Default::default()
        }),
        Ok(())
    );
    assert_eq!(
        ok(Credentials {
            query_token: Some(""),
            ..Default::default()
        }),
        Err(AuthError::Wrong)
    );
    let signature = github_signature(token, body);
    assert_eq!(
        ok(Credentials {
            github_signature: Some(&signature),
            ..Default::default()
        }),
        Ok(())
    );
    assert_eq!(
        authorize(
            token,
            &Credentials {
                github_signature: Some(&signature),
                ..Default::default()
            },
            b"{} "
        ),
        Err(AuthError::Wrong),
        "the signature covers the exact body"
    );
    // A right token does not outweigh a wrong signature.
    assert_eq!(
        ok(Credentials {
            authorization: Some("Bearer s3cret-token"),
            github_signature: Some("sha256=00"),
            ..Default::default()
        }),
        Err(AuthError::Wrong)
    );
}

#[test]
fn github_signature_matches_githubs_documented_example() {
    // docs.github.com "Validating webhook deliveries": secret
    // "It's a Secret to Everybody", payload "Hello, World!".
    assert_eq!(
        github_signature("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}
