//! The job's results do not depend on its parallelism: p=1 on one TaskManager and p=3 on two
//! TaskManagers (hash edges cross the simulated network, one source subtask idle) count what
//! p=2 counts.

use crate::harness::{assert_passed, run_seeds, scenario, window_table};

fn at_parallelism(p: u32, taskmanagers: u32) -> flinksim::Scenario {
    let mut scenario = scenario("steady-state");
    scenario.job.submission.parallelism = p;
    scenario.cluster.taskmanagers = taskmanagers;
    scenario
}

#[test]
fn p1_on_one_taskmanager_and_p3_on_two_match_p2_over_ten_minutes() {
    let p2 = &run_seeds(&at_parallelism(2, 1), &[11])[0];
    let p1 = &run_seeds(&at_parallelism(1, 1), &[11])[0];
    let p3 = &run_seeds(&at_parallelism(3, 2), &[11])[0];
    for report in [p1, p2, p3] {
        assert_passed(report);
    }
    let expected = window_table(&p2.oracle.rows);
    assert_eq!(window_table(&p1.oracle.rows), expected, "p=1 differs from p=2 (seed 11)");
    assert_eq!(window_table(&p3.oracle.rows), expected, "p=3 differs from p=2 (seed 11)");
    assert!(
        p3.trace.iter().any(|l| l.starts_with("taskmanager-2") || l.contains(" taskmanager-2 ")),
        "p=3 must use the second TaskManager"
    );
}
