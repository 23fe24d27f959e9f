//! Policy files: no input may panic the parser, and every policy it
//! accepts must select and explain over tags (the file's own lines) alike.
#![no_main]

use crowsnest::policy::parse_policy_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policies) = parse_policy_file("fuzz.yaml", text) else {
        return;
    };
    let tags: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    for policy in &policies {
        let picked = policy.select(&tags);
        assert_eq!(policy.explain(&tags).selected_index(), picked);
        if let Some(i) = picked {
            let _ = policy.permits(&tags[i], &tags[0]);
        }
    }
});
