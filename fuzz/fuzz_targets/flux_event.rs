//! The Flux event JSON the event server accepts: never panics, and an accepted event keeps its
//! object and loses its de-duplication token before delivery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notification_controller::metadata::{clean_up, dedupe_key, object_group, strip_token};
use notification_controller::server::parse_event;

fuzz_target!(|data: &[u8]| {
    let Ok(mut event) = parse_event(data) else {
        return;
    };
    let object = event.involved_object.clone();
    clean_up(&mut event);
    let key = dedupe_key(&event);
    assert_eq!(
        key,
        dedupe_key(&event),
        "the de-duplication key is not stable"
    );
    strip_token(&mut event);
    let token_key = format!("{}/token", object_group(&event));
    assert!(
        !event.metadata.contains_key(&token_key),
        "the token reached delivery"
    );
    assert_eq!(event.involved_object, object, "the object changed");
});
