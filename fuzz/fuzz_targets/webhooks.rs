//! Webhook payloads: the first byte picks the endpoint, the rest is the
//! body. No input may panic; every push parsed names a repository that a
//! policy's image name could hold, and parsing is deterministic.
#![no_main]

use crowsnest::model::ImageName;
use crowsnest::webhooks::{self, Credentials, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let source = Source::ALL[usize::from(selector) % Source::ALL.len()];
    let parsed = webhooks::parse(source, body);
    assert_eq!(parsed, webhooks::parse(source, body));
    if let Ok(pushes) = parsed {
        for push in pushes {
            let host = push.registry.as_deref().unwrap_or("registry.invalid");
            let image = ImageName::parse(&format!("{host}/{}", push.repository))
                .expect("a parsed push names a valid repository");
            assert_eq!(image.repository, push.repository);
            assert!(push.matches_path(&image));
        }
    }
    // The token checks take any bytes without panicking.
    let text = String::from_utf8_lossy(body);
    let credentials = Credentials {
        authorization: Some(&text),
        query_token: Some(&text),
        github_signature: Some(&text),
    };
    let _ = webhooks::authorize("token", &credentials, body);
});
