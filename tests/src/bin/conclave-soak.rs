//! `conclave-soak`: the randomised soak of `conclave_tests::soak`, on
//! demand and as long as asked. Runs four `conclave` processes (the
//! `conclave-it` binary built beside this one) on loopback.
//!
//! ```text
//! cargo build --release -p conclave-tests --bins
//! target/release/conclave-soak --seed 7 --secs 3600
//! ```
//!
//! Prints the perturbations applied and the totals; exits 1 with the
//! broken invariant (and the seed) if one breaks.

use std::process::ExitCode;
use std::time::Duration;

use conclave_tests::soak::{run, SoakOptions};

fn usage() -> ExitCode {
    eprintln!("usage: conclave-soak [--seed N] [--secs S] [--rate TXS_PER_SENDER_PER_S]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut opts = SoakOptions {
        seed: conclave_node::node::now_ms(),
        duration: Duration::from_secs(600),
        rate: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--seed", Some(v)) => opts.seed = v,
            ("--secs", Some(v)) => opts.duration = Duration::from_secs(v),
            ("--rate", Some(v)) => opts.rate = u32::try_from(v).unwrap_or(u32::MAX),
            _ => return usage(),
        }
    }
    println!(
        "soak: seed {}, {:?} of perturbations, {} tx/s per sender",
        opts.seed, opts.duration, opts.rate
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts.clone())) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(broken) => {
            eprintln!("INVARIANT BROKEN (seed {}): {broken}", opts.seed);
            ExitCode::FAILURE
        }
    }
}
