//! Writes the shared checkpoint test vectors into `contracts/vectors/`.
//!
//! `cargo run -p conclave-checkpoint --example gen_vectors [-- OUT_DIR]`

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let out = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/vectors"),
    };
    std::fs::create_dir_all(&out)?;
    for (name, json) in conclave_checkpoint::vectors::generate()? {
        let path = out.join(name);
        std::fs::write(&path, json)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
