//! flinksim's integration tests: one binary, one module per area. Every test names its seeds
//! in plain sight; a failing run prints the command that replays it.

mod bisect;
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
mod planted_bugs;
mod recovery;
mod report;
mod rest;
mod savepoints;
mod scenario_files;
mod steady_state;
mod sweep;
mod tidy;
mod variants;
mod verdicts;
