fn main() -> std::process::ExitCode {
    conclave_node::cli::main()
}
