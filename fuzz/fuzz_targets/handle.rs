//! Fuzzes the whole service: `ScimService::handle` on a seeded MemoryStore tenant, with
//! arbitrary methods, paths, query strings, headers and bodies decoded from the input by the
//! harness shared with `tests/fuzz_requests.rs` (see there for the invariants: no panic, no
//! 5xx, every non-2xx answer a SCIM error, a failed request changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

fuzz_target!(|data: &[u8]| fuzz_harness::run_bytes(data));
