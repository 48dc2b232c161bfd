//! Clusters larger than the playground's: every TaskManager gets its own node and address, up to
//! `cluster::TASKMANAGERS_MAX`.

use std::time::Duration;

use crate::harness::{run, scenario};

/// 256 TaskManagers or more panicked the run: `address_of` took the index as a `u8`.
#[test]
fn three_hundred_taskmanagers_start_and_register() {
    let mut scenario = scenario("steady-state").with_duration(Duration::from_secs(5));
    scenario.cluster.taskmanagers = 300;
    let report = run(&scenario, 1);
    for i in [1, 255, 256, 300] {
        let name = format!("(taskmanager-{i})");
        assert!(
            report.trace.iter().any(|line| line.contains("Registering TaskManager") && line.contains(&name)),
            "taskmanager-{i} did not register (seed 1)"
        );
    }
}
