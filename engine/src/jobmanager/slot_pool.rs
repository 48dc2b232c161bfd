//! The slot pool (docs/model/cluster.md#failure-detection-and-restarts): slots offered by
//! registered TaskManagers, allocated to the job's slot-sharing groups (group i holds subtask i of
//! every vertex).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::protocol::ids::ResourceId;

/// One slot: which TaskManager and which of its slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotId {
    /// The TaskManager incarnation.
    pub resource_id: ResourceId,
    /// The slot's index on it.
    pub index: u32,
}

#[derive(Clone, Debug)]
struct Slot {
    address: SocketAddr,
    /// The sharing group it holds, if allocated.
    allocated_to: Option<u32>,
}

/// All slots the JobManager knows of.
#[derive(Debug, Default)]
pub struct SlotPool {
    slots: BTreeMap<SlotId, Slot>,
}

impl SlotPool {
    /// Adds the slots of a newly registered TaskManager.
    pub fn offer(&mut self, resource_id: ResourceId, address: SocketAddr, count: u32) {
        for index in 0..count {
            self.slots.insert(SlotId { resource_id, index }, Slot { address, allocated_to: None });
        }
    }

    /// Removes a lost TaskManager's slots; returns the sharing groups that were in them.
    pub fn release_task_manager(&mut self, resource_id: ResourceId) -> Vec<u32> {
        let lost: Vec<SlotId> =
            self.slots.keys().filter(|s| s.resource_id == resource_id).copied().collect();
        lost.iter().filter_map(|id| self.slots.remove(id)?.allocated_to).collect()
    }

    /// Frees every allocated slot (the job's tasks are all gone).
    pub fn free_all(&mut self) {
        self.slots.values_mut().for_each(|slot| slot.allocated_to = None);
    }

    /// Number of free slots.
    pub fn free(&self) -> usize {
        self.slots.values().filter(|s| s.allocated_to.is_none()).count()
    }

    /// Number of slots in all.
    pub fn total(&self) -> usize {
        self.slots.len()
    }

    /// Allocates one slot to each of `groups` sharing groups, all or nothing, filling
    /// TaskManagers in registration order (as Flink's default slot matching does).
    pub fn allocate(&mut self, groups: u32) -> Option<Vec<(SlotId, SocketAddr)>> {
        let free: Vec<SlotId> = self
            .slots
            .iter()
            .filter(|(_, s)| s.allocated_to.is_none())
            .map(|(id, _)| *id)
            .take(groups as usize)
            .collect();
        if free.len() < groups as usize {
            return None;
        }
        Some(
            free.into_iter()
                .enumerate()
                .map(|(group, id)| {
                    let slot = self.slots.get_mut(&id).expect("listed above");
                    slot.allocated_to = Some(group as u32);
                    (id, slot.address)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_groups_need_three_free_slots_across_two_task_managers() {
        let mut pool = SlotPool::default();
        let (a, b) = (ResourceId(1), ResourceId(2));
        pool.offer(a, "10.0.1.1:6122".parse().unwrap(), 2);
        assert!(pool.allocate(3).is_none());
        assert_eq!(pool.free(), 2);
        pool.offer(b, "10.0.1.2:6122".parse().unwrap(), 2);
        let slots = pool.allocate(3).unwrap();
        assert_eq!(slots.iter().filter(|(s, _)| s.resource_id == a).count(), 2);
        assert_eq!(pool.free(), 1);
        assert_eq!(pool.release_task_manager(a), vec![0, 1]);
        assert_eq!(pool.total(), 2);
    }

    #[test]
    fn allocation_is_all_or_nothing_and_takes_nothing_when_it_fails() {
        let mut pool = SlotPool::default();
        pool.offer(ResourceId(1), "10.0.1.1:6122".parse().unwrap(), 2);
        assert!(pool.allocate(3).is_none());
        assert_eq!(pool.free(), 2, "a failed request holds no slot");
        assert_eq!(pool.allocate(2).map(|slots| slots.len()), Some(2));
        assert!(pool.allocate(1).is_none(), "every slot is taken");
    }

    #[test]
    fn freeing_all_slots_lets_the_restarted_job_allocate_them_again() {
        let mut pool = SlotPool::default();
        pool.offer(ResourceId(1), "10.0.1.1:6122".parse().unwrap(), 2);
        let first = pool.allocate(2).unwrap();
        pool.free_all();
        assert_eq!(pool.free(), 2);
        assert_eq!(pool.allocate(2).unwrap(), first, "the same slots, in the same order");
    }

    #[test]
    fn a_lost_taskmanager_takes_only_its_own_slots_with_it() {
        let mut pool = SlotPool::default();
        pool.offer(ResourceId(1), "10.0.1.1:6122".parse().unwrap(), 2);
        pool.offer(ResourceId(2), "10.0.1.2:6122".parse().unwrap(), 2);
        pool.allocate(1).unwrap();
        assert_eq!(pool.release_task_manager(ResourceId(2)), Vec::<u32>::new(), "it held no group");
        assert_eq!((pool.total(), pool.free()), (2, 1));
    }
}
