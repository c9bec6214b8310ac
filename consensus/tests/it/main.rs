//! Engine-level tests: N engines in one process on a simulated network and
//! clock (`sim`), one module per fault model.

mod sim;

mod byz_equivocating_proposer;
mod byz_garbage_precommits;
mod byz_invalid_block;
mod drops_and_reorder;
mod membership_change;
mod n1;
mod n4_f1_crash;
mod n4_f2_crash;
mod n4_happy;
mod partition_2_2;
mod partition_3_1;
mod proposer_rotation;
