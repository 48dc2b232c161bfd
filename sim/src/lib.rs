//! flinksim's simulator: runs a scenario of the Flink operations playground from a seed.
//!
//! [`run::run`] builds the [`cluster`] in a fresh madsim runtime, carries out the scenario's
//! steps, then lets the [`oracle`] read the topics back and judge; the [`trace`] records every
//! significant event and hashes it.

pub mod accounting;
pub mod bisect;
pub mod cluster;
pub mod conservation;
pub mod determinism;
pub mod floor;
pub mod invariant;
pub mod fuzz;
pub mod liveness;
pub mod oracle;
pub mod pitfall;
pub mod processing_time;
pub mod report_html;
pub mod responses;
pub mod run;
pub mod scenario;
pub mod sweep;
pub mod timeline;
pub mod trace;
pub mod verdict;

pub use run::{Report, RunError, run, run_with_progress};
pub use scenario::Scenario;
/// The engine's planted bugs (docs/planted-bugs.md), for the command line and the tests.
pub use flinksim_engine::plant;
