//! The `conclave` command, built as part of this crate so the tests run the
//! binary compiled with exactly the features of the test build (a separate
//! `cargo build -p conclave-node` would resolve features differently and
//! rebuild the world).

fn main() -> std::process::ExitCode {
    conclave_node::cli::main()
}
