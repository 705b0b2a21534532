//! Ids that ended recently, so that frames racing their end are dropped without an ERROR.
//!
//! dcx may send OUTPUT_ACK, STDIN, SIGNAL or RESIZE about a command before it has read that
//! command's end (EXITED and OUTPUT_END, or FAILED: dcx may send STDIN right after RUN). Such
//! frames are not errors; a frame about an id never started is. The last [`KEEP`] ended ids are
//! remembered until RUN uses them again.

use std::collections::{HashSet, VecDeque};

/// How many ended ids are remembered.
const KEEP: usize = 1024;

/// The ids that ended most recently.
#[derive(Default)]
pub struct Retired {
    ids: HashSet<u32>,
    order: VecDeque<u32>,
}

impl Retired {
    /// `id` ended.
    pub fn add(&mut self, id: u32) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > KEEP {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// `id` is in use again.
    pub fn remove(&mut self, id: u32) {
        if self.ids.remove(&id) {
            self.order.retain(|&kept| kept != id);
        }
    }

    /// Whether `id` ended recently.
    pub fn contains(&self, id: u32) -> bool {
        self.ids.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_ids_are_kept_until_reused_or_pushed_out() {
        let mut retired = Retired::default();
        retired.add(1);
        retired.add(1);
        assert!(retired.contains(1));
        retired.remove(1);
        assert!(!retired.contains(1));
        for id in 0..=KEEP as u32 {
            retired.add(id);
        }
        assert!(!retired.contains(0));
        assert!(retired.contains(1) && retired.contains(KEEP as u32));
        assert_eq!(retired.order.len(), KEEP);
    }
}
