//! docker `credHelpers` and `credsStore`, with a real helper program on
//! PATH (a shell script speaking the docker-credential protocol) in front
//! of the real registry with htpasswd. Its own test binary because it
//! changes PATH for the process.

mod support;

use std::os::unix::fs::PermissionsExt as _;

use crowsnest::config::RegistriesConfig;
use crowsnest::model::ImageName;
use crowsnest::registry::Registry;
use support::registry::{Auth, RegistryServer};

#[tokio::test]
async fn cred_helpers_and_creds_store_run_the_helper_for_the_host() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "from-helper"));
    reg.push_tags("demo/app", &["1.0.0"]);
    let bin = reg.dir().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-crowsnest-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n\
             # A docker credential helper for this test: knows one server.\n\
             read -r server || true\n\
             if [ \"$1\" = get ] && [ \"$server\" = \"{host}\" ]; then\n\
               printf '{{\"ServerURL\":\"%s\",\"Username\":\"robot\",\"Secret\":\"from-helper\"}}' \"$server\"\n\
             else\n\
               echo 'credentials not found in native keychain' >&2; exit 1\n\
             fi\n",
            host = reg.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: the only test in this binary; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("PATH", path) };

    let mut host = reg.host_config();
    host.username = None;
    host.password_file = None;
    let docker = reg.dir().join("config.json");
    let image = ImageName::parse(&format!("{}/demo/app", reg.host())).unwrap();
    for config in [
        format!(r#"{{"credHelpers":{{"{}":"crowsnest-test"}}}}"#, reg.host()),
        r#"{"credsStore":"crowsnest-test"}"#.to_owned(),
    ] {
        std::fs::write(&docker, &config).unwrap();
        let registry = Registry::new(&RegistriesConfig {
            docker_config: Some(docker.clone()),
            hosts: vec![host.clone()],
        })
        .unwrap();
        assert_eq!(
            registry.list_tags(&image).await.unwrap(),
            ["1.0.0"],
            "{config}"
        );
    }

    // A helper that fails is named, with how to try it by hand.
    std::fs::write(&docker, r#"{"credsStore":"crowsnest-test"}"#).unwrap();
    let mut other = host.clone();
    other.host = format!("localhost:{}", reg.port());
    let registry = Registry::new(&RegistriesConfig {
        docker_config: Some(docker.clone()),
        hosts: vec![other],
    })
    .unwrap();
    let image = ImageName::parse(&format!("localhost:{}/demo/app", reg.port())).unwrap();
    let err = registry.list_tags(&image).await.unwrap_err();
    assert_eq!(err.kind(), "credentials", "{err}");
    assert!(
        err.to_string()
            .contains("docker-credential-crowsnest-test failed"),
        "{err}"
    );
}
