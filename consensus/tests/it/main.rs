//! Engine-level tests: engines wired to each other in memory.

mod n1;
mod n4;
mod net;
