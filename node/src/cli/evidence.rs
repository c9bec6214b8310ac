//! `conclave evidence list`: the node's evidence of equivocation, printed
//! for people. Nothing is taken on the node's word: each piece is checked
//! again here, both signatures against the offender's key.

use crate::rpc::EvidenceView;

/// Checks `view` again: its messages decode, are signed by the offender
/// and conflict (membership is the node's answer, `verified`).
fn rechecked(view: &EvidenceView, ctx: &conclave_consensus::ContextId) -> bool {
    view.evidence()
        .is_ok_and(|e| e.verify(ctx, &[view.offender]).is_ok())
}

pub fn print_list(list: &[EvidenceView], ctx: &conclave_consensus::ContextId) {
    if list.is_empty() {
        println!("no evidence of equivocation");
        return;
    }
    println!("height  round  kind       verifies  offender");
    for e in list {
        let ok = e.verified && rechecked(e, ctx);
        println!(
            "{:<7} {:<6} {:<10} {:<9} {}",
            e.height,
            e.round,
            format!("{:?}", e.kind).to_lowercase(),
            if ok { "yes" } else { "NO" },
            e.offender
        );
    }
}
