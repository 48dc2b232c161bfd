//! The resource manager (docs/model/cluster.md#failure-detection-and-restarts): which TaskManagers
//! are registered, in which session, when each last answered a heartbeat, and the slots they offer
//! (the slot pool). I/O-free: the node sends the heartbeats and registrations' answers, and fails
//! what ran on a TaskManager this says is gone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use madsim::time::Instant;

use crate::protocol::cluster::RegisterTaskManager;
use crate::protocol::ids::ResourceId;

use super::slot_pool::SlotPool;

/// A TaskManager as the resource manager knows it.
#[derive(Clone, Debug)]
pub struct RegisteredTaskManager {
    /// Its node name (`taskmanager-1`).
    pub name: String,
    /// Where it serves deployments, heartbeats and data.
    pub address: SocketAddr,
    /// The registration session it last registered in (see [`RegisterTaskManager::session`]).
    pub session: u64,
    last_heartbeat: Instant,
}

/// The registered TaskManagers and their slots.
#[derive(Debug)]
pub struct ResourceManager {
    /// When it started: slot requests wait during the start-up period instead of failing.
    started: Instant,
    startup_period: Duration,
    task_managers: BTreeMap<ResourceId, RegisteredTaskManager>,
    /// The slots the registered TaskManagers offer.
    pub slots: SlotPool,
}

impl ResourceManager {
    /// A resource manager started at `started`, with no TaskManager yet.
    pub fn new(started: Instant, startup_period: Duration) -> ResourceManager {
        ResourceManager { started, startup_period, task_managers: BTreeMap::new(), slots: SlotPool::default() }
    }

    /// The registrations `request` replaces, to be lost before it is admitted: an older
    /// incarnation at the same address (the TaskManager restarted), then its own from an
    /// earlier session (it lost this JobManager and dropped its tasks, as Flink's TaskExecutor
    /// does). A retried registration of the same session replaces nothing.
    pub fn replaced_by(&self, request: &RegisterTaskManager) -> Vec<ResourceId> {
        let mut replaced: Vec<ResourceId> = self
            .task_managers
            .iter()
            .filter(|(id, tm)| tm.address == request.address && **id != request.resource_id)
            .map(|(id, _)| *id)
            .collect();
        if self.task_managers.get(&request.resource_id).is_some_and(|tm| tm.session != request.session) {
            replaced.push(request.resource_id);
        }
        replaced
    }

    /// Registers a TaskManager (after what it replaces is lost): a new one offers its slots;
    /// either way its registration counts as a heartbeat.
    pub fn admit(&mut self, request: RegisterTaskManager, now: Instant) {
        if !self.task_managers.contains_key(&request.resource_id) {
            self.slots.offer(request.resource_id, request.address, request.slots);
        }
        let tm = RegisteredTaskManager {
            name: request.name,
            address: request.address,
            session: request.session,
            last_heartbeat: now,
        };
        self.task_managers.insert(request.resource_id, tm);
    }

    /// Forgets a TaskManager and its slots; returns it, if it was registered.
    pub fn lose(&mut self, id: ResourceId) -> Option<RegisteredTaskManager> {
        let tm = self.task_managers.remove(&id)?;
        self.slots.release_task_manager(id);
        Some(tm)
    }

    /// A registered TaskManager.
    pub fn get(&self, id: ResourceId) -> Option<&RegisteredTaskManager> {
        self.task_managers.get(&id)
    }

    /// Where a registered TaskManager is.
    pub fn address(&self, id: ResourceId) -> Option<SocketAddr> {
        self.get(id).map(|tm| tm.address)
    }

    /// Every registered TaskManager, by id: whom to send heartbeats.
    pub fn task_managers(&self) -> Vec<(ResourceId, SocketAddr)> {
        self.task_managers.iter().map(|(id, tm)| (*id, tm.address)).collect()
    }

    /// A TaskManager answered a heartbeat.
    pub fn heartbeat_answered(&mut self, id: ResourceId, now: Instant) {
        if let Some(tm) = self.task_managers.get_mut(&id) {
            tm.last_heartbeat = now;
        }
    }

    /// The TaskManagers whose last answer is older than `timeout`, by id.
    pub fn timed_out(&self, now: Instant, timeout: Duration) -> Vec<ResourceId> {
        self.task_managers
            .iter()
            .filter(|(_, tm)| now.duration_since(tm.last_heartbeat) > timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether the start-up period is still running
    /// (docs/model/cluster.md#failure-detection-and-restarts).
    pub fn starting_up(&self, now: Instant) -> bool {
        now.duration_since(self.started) < self.startup_period
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The origin of a test's simulated time. The cores only compare instants with each other,
    /// so any instant serves; these tests run without a simulation, hence without its clock.
    pub(crate) fn origin() -> Instant {
        Instant::now()
    }

    pub(crate) fn registration(resource_id: u128, address: &str, session: u64) -> RegisterTaskManager {
        RegisterTaskManager {
            resource_id: ResourceId(resource_id),
            name: format!("taskmanager-{resource_id}"),
            address: address.parse().unwrap(),
            slots: 2,
            session,
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn a_new_taskmanager_offers_its_slots_and_replaces_nothing() {
        let t0 = origin();
        let mut rm = ResourceManager::new(t0, Duration::ZERO);
        let request = registration(1, "10.0.1.1:6122", 1);
        assert_eq!(rm.replaced_by(&request), vec![]);
        rm.admit(request, t0);
        assert_eq!(rm.slots.free(), 2);
        assert_eq!(rm.task_managers(), vec![(ResourceId(1), "10.0.1.1:6122".parse().unwrap())]);
    }

    #[test]
    fn a_restarted_taskmanager_replaces_its_old_incarnation_at_the_same_address() {
        let t0 = origin();
        let mut rm = ResourceManager::new(t0, Duration::ZERO);
        rm.admit(registration(1, "10.0.1.1:6122", 1), t0);
        rm.admit(registration(2, "10.0.1.2:6122", 1), t0);
        let restarted = registration(3, "10.0.1.1:6122", 1);
        assert_eq!(rm.replaced_by(&restarted), vec![ResourceId(1)]);
        assert_eq!(rm.lose(ResourceId(1)).map(|tm| tm.name), Some("taskmanager-1".to_owned()));
        rm.admit(restarted, t0);
        assert_eq!(rm.slots.total(), 4, "the old incarnation's slots went, the new one's came");
    }

    #[test]
    fn a_registration_in_a_new_session_replaces_its_own_and_a_retry_does_not() {
        let t0 = origin();
        let mut rm = ResourceManager::new(t0, Duration::ZERO);
        rm.admit(registration(1, "10.0.1.1:6122", 1), t0);
        assert_eq!(rm.replaced_by(&registration(1, "10.0.1.1:6122", 1)), vec![], "a retry");
        assert_eq!(rm.replaced_by(&registration(1, "10.0.1.1:6122", 2)), vec![ResourceId(1)]);
    }

    #[test]
    fn a_taskmanager_silent_longer_than_the_timeout_times_out_and_an_answer_keeps_it() {
        let t0 = origin();
        let mut rm = ResourceManager::new(t0, Duration::ZERO);
        rm.admit(registration(1, "10.0.1.1:6122", 1), t0);
        rm.admit(registration(2, "10.0.1.2:6122", 1), t0);
        rm.heartbeat_answered(ResourceId(2), t0 + Duration::from_secs(4));
        assert_eq!(rm.timed_out(t0 + TIMEOUT, TIMEOUT), vec![], "exactly the timeout is not over it");
        let later = t0 + TIMEOUT + Duration::from_millis(1);
        assert_eq!(rm.timed_out(later, TIMEOUT), vec![ResourceId(1)]);
        rm.lose(ResourceId(1));
        assert_eq!(rm.timed_out(later, TIMEOUT), vec![]);
        assert_eq!(rm.slots.total(), 2);
    }

    #[test]
    fn the_startup_period_counts_from_the_start() {
        let t0 = origin();
        let rm = ResourceManager::new(t0, Duration::from_secs(300));
        assert!(rm.starting_up(t0 + Duration::from_secs(299)));
        assert!(!rm.starting_up(t0 + Duration::from_secs(300)));
        assert!(!ResourceManager::new(t0, Duration::ZERO).starting_up(t0), "a period of 0 s is over at once");
    }
}
