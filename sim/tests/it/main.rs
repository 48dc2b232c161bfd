//! flinksim's integration tests: one binary, one module per area. Every test names its seeds
//! in plain sight; a failing run prints the command that replays it.

mod cluster;
mod determinism;
mod exactly_once;
mod faults;
mod fuzz;
mod graceful_stop;
mod harness;
mod liveness;
mod parallelism;
mod pitfalls;
mod recovery;
mod savepoints;
mod scenario_files;
mod steady_state;
mod sweep;
mod tidy;
mod verdicts;
