//! `conclave repair`'s report, printed for the operator.

use std::path::Path;

use crate::repair::Report;

pub fn print(report: &Report, home: &Path) {
    if report.actions.is_empty() && report.unrecoverable.is_empty() {
        println!(
            "nothing damaged: {} database records read, every WAL and sign guard intact",
            report.records
        );
        return;
    }
    for action in &report.actions {
        println!("{action}");
    }
    if report.unrecoverable.is_empty() {
        println!(
            "repaired; the node can start (backups under {})",
            report.backup.display()
        );
        return;
    }
    for (context, why) in &report.unrecoverable {
        println!("context {context}: cannot be made whole here: {why}");
    }
    println!(
        "the node would refuse to start. Restore {} from a backup taken with the node \
         stopped, or run `conclave --home {} repair --reset` and let the node fetch its \
         contexts again from the other members",
        crate::config::Config::data_dir(home).display(),
        home.display()
    );
}
