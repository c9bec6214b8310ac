//! Integration tests of `conclave-checkpoint`: the committed JSON vectors in
//! `contracts/vectors/` verify, fail for their stated reasons, and are
//! exactly what the generator produces today.

mod vectors;
