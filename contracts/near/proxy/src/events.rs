//! NEP-297 events: `EVENT_JSON:{"standard":"conclave","version":"1.0.0",
//! "event":..,"data":[..]}` logs, for indexers and relayers.

use near_sdk::env;
use near_sdk::serde_json::{json, Value};

const STANDARD: &str = "conclave";
const VERSION: &str = "1.0.0";

/// Logs one event with one data object.
pub fn emit(event: &str, data: Value) {
    let body = json!({
        "standard": STANDARD,
        "version": VERSION,
        "event": event,
        "data": [data],
    });
    env::log_str(&format!("EVENT_JSON:{body}"));
}
