//! The pacer: decides how full the heap may get before the next cycle starts.
//!
//! Stop-the-world mode lets the heap grow to `TANDEM_GC_GROWTH` times what was live
//! (default 2.5; at least the minimum heap). A concurrent cycle must *finish* before the heap is full, so the trigger also
//! keeps a headroom of what the mutators allocate during one cycle: the measured
//! allocation rate times the measured cycle time, with a safety factor. When the pacer
//! loses the race anyway, allocations stall and, as a last resort, the cycle finishes in
//! a (degenerate) pause. A cycle that degenerated or was started by a failed allocation
//! doubles the safety factor (the measured cycle time of a cut-short cycle understates
//! the real one, so without this the next cycle starts as late and degenerates again);
//! each clean cycle brings it back down towards its base.
//!
//! A concurrent cycle also has a goal for the heap by the end of marking, which mark
//! assists ([`super::assist`]) pace the allocating threads to: the trigger plus
//! [`ASSIST_SLACK`] of its distance from the live data, so the peak stays near the trigger
//! however little CPU the markers get.

use crate::config::{Mode, Trigger};
use crate::heap::CHUNK_SIZE;
use crate::runtime::Runtime;
use std::time::Instant;

/// Base safety factor on the headroom for one cycle's allocation.
const HEADROOM_FACTOR: f64 = 1.5;
/// Most the safety factor grows to after cycles that lost the race.
const MAX_HEADROOM_FACTOR: f64 = 16.0;
/// Weight of the newest sample in the moving averages.
const EWMA_WEIGHT: f64 = 0.5;
/// Share of the last inter-cycle allocation the heap may grow by during marking before
/// assists take all the marking work they can find.
pub const ASSIST_SLACK: f64 = 0.5;

/// What a cycle left live, as the pacer weighs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Survivors {
    /// Bytes the heap holds for them: kept lines and large objects (floating garbage
    /// allocated during marking excluded).
    pub held: usize,
    /// Bytes of the objects themselves: marked small objects and kept large ones, what
    /// the next cycle traces.
    pub traced: usize,
}

/// Allocation and cycle-time measurements.
#[derive(Debug)]
pub struct Pacer {
    last_end: Instant,
    allocated_at_end: u64,
    alloc_rate: f64,
    cycle_secs: f64,
    safety: f64,
    live: usize,
    marked: u64,
    survivors: Survivors,
}

/// How much more the survivors' lines may hold than the survivors themselves before the
/// heap counts as fragmented ([`Pacer::fragmented`]).
const FRAGMENTED_RATIO: f64 = 1.5;

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            last_end: Instant::now(),
            allocated_at_end: 0,
            alloc_rate: 0.0,
            cycle_secs: 0.0,
            safety: HEADROOM_FACTOR,
            live: 0,
            marked: 0,
            survivors: Survivors::default(),
        }
    }
}

fn ewma(old: f64, new: f64) -> f64 {
    if old == 0.0 {
        new
    } else {
        old * (1.0 - EWMA_WEIGHT) + new * EWMA_WEIGHT
    }
}

impl Pacer {
    /// Allocation rate in bytes per second (moving average).
    pub fn alloc_rate(&self) -> f64 {
        self.alloc_rate
    }

    /// Whether the last cycle left the heap fragmented: its survivors' lines hold more than
    /// [`FRAGMENTED_RATIO`] times their bytes, and more than the minimum heap, so that
    /// compacting would give memory back. (Compacting only every few cycles was measured
    /// and does not lower the peak: pypy/48M/t2 333-337 MiB every second cycle, 362 every
    /// fourth, 241 every time, 338 never.)
    pub fn fragmented(&self, rt: &Runtime) -> bool {
        let s = self.survivors;
        s.held > rt.config.heap_min.0 && s.held as f64 > s.traced as f64 * FRAGMENTED_RATIO
    }

    /// Objects the next cycle is expected to mark (what the last one marked; 0 before the
    /// first).
    pub fn expected_marks(&self) -> u64 {
        self.marked
    }

    /// The heap in use by which the concurrent cycle starting now should have finished
    /// marking: the trigger plus [`ASSIST_SLACK`] of its distance from the live data. Not
    /// from the heap at the start, which a late start would ratchet up cycle by cycle.
    pub fn assist_goal(&self, rt: &Runtime) -> usize {
        let trigger = rt.trigger();
        let slack = trigger.saturating_sub(self.live) as f64 * ASSIST_SLACK;
        let max = rt.space.heap_max();
        (trigger + slack as usize).min(max - max / 16)
    }

    /// Records a finished cycle that took `cycle_secs` (from its first pause to the end of
    /// its sweep), marked `marked` objects and left `live`, and sets the runtime's next
    /// trigger. `late`: the cycle degenerated or began because an allocation failed.
    pub fn cycle_finished(
        &mut self,
        rt: &Runtime,
        live: Survivors,
        marked: u64,
        cycle_secs: f64,
        late: bool,
    ) {
        self.live = live.held;
        self.marked = marked;
        self.survivors = live;
        self.safety = if late {
            (self.safety * 2.0).min(MAX_HEADROOM_FACTOR)
        } else {
            (self.safety * 0.75).max(HEADROOM_FACTOR)
        };
        let now = Instant::now();
        let allocated = rt.stats.snapshot_allocated();
        let dt = now.duration_since(self.last_end).as_secs_f64();
        if dt > 0.0 {
            let rate = allocated.saturating_sub(self.allocated_at_end) as f64 / dt;
            self.alloc_rate = ewma(self.alloc_rate, rate);
        }
        if cycle_secs > 0.0 {
            // A stop-the-world collection (0 s) says nothing of how long the concurrent
            // cycles take that the headroom is for.
            self.cycle_secs = ewma(self.cycle_secs, cycle_secs);
        }
        self.last_end = now;
        self.allocated_at_end = allocated;
        let t = self.trigger(rt, live);
        tracing::debug!(
            trigger = t,
            live = live.held,
            traced = live.traced,
            alloc_mb_s = self.alloc_rate / 1e6,
            cycle_ms = self.cycle_secs * 1e3,
            safety = self.safety,
            "pacer"
        );
        rt.set_trigger(t);
    }

    /// The heap in use at which the next cycle starts: the survivors' lines plus
    /// `TANDEM_GC_GROWTH - 1` times the survivors themselves. Growth is measured on the
    /// traced bytes, not on the lines that hold them, so that each cycle's tracing work
    /// buys the same allocation however scattered the survivors are (a fragmented heap
    /// would otherwise grow by its free space too, collecting less often than its work
    /// warrants), and so it costs no more memory than the growth factor says.
    pub fn trigger(&self, rt: &Runtime, survivors: Survivors) -> usize {
        let live = survivors.held;
        let max = rt.space.heap_max();
        match rt.config.gc_trigger {
            Trigger::Percent(p) => return (max / 100 * p as usize).max(CHUNK_SIZE),
            Trigger::Bytes(b) => return b.clamp(CHUNK_SIZE, max),
            Trigger::Auto => {}
        }
        let extra = (survivors.traced.min(live) as f64 * (rt.config.gc_growth.0 - 1.0)) as usize;
        let growth = (live + extra).max(rt.config.heap_min.0).max(CHUNK_SIZE);
        match rt.config.mode {
            Mode::Stw => {
                // Near the maximum, sit halfway between live and maximum so that a nearly
                // full heap does not collect on every refill.
                if growth > max - max / 8 {
                    live + max.saturating_sub(live) / 2
                } else {
                    growth
                }
            }
            Mode::Concurrent => {
                let headroom = (self.alloc_rate * self.cycle_secs * self.safety) as usize
                    + rt.config.threads * CHUNK_SIZE / 4;
                growth.min(max.saturating_sub(headroom)).max(live.min(max))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, Config};

    /// Survivors with no free space between them.
    fn gapless(bytes: usize) -> Survivors {
        Survivors {
            held: bytes,
            traced: bytes,
        }
    }

    #[test]
    fn growth_is_measured_on_the_traced_bytes_not_the_lines_that_hold_them() {
        let mb = 1 << 20;
        let rt = Runtime::new(Config {
            mode: Mode::Stw,
            heap_max: ByteSize(4096 * mb),
            heap_min: ByteSize(4 * mb),
            ..Config::default()
        })
        .unwrap();
        let g = rt.config.gc_growth.0;
        let pacer = Pacer::default();
        let dense = pacer.trigger(&rt, gapless(100 * mb));
        assert_eq!(
            dense,
            (100.0 * mb as f64 * g) as usize,
            "dense: live times g"
        );
        let scattered = Survivors {
            held: 100 * mb,
            traced: 40 * mb,
        };
        let t = pacer.trigger(&rt, scattered);
        assert_eq!(t, 100 * mb + (40.0 * mb as f64 * (g - 1.0)) as usize);
        assert!(t < dense, "scattered survivors buy less allocation");
        let small = pacer.trigger(&rt, gapless(mb));
        assert_eq!(small, 4 * mb, "never below the minimum heap");
    }
}
