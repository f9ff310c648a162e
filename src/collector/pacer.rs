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
//! Memory the heap needed recently may be used again: the trigger is at least the one whose
//! cycle would peak at the highest heap in use that a cycle reached within the last
//! [`crate::config::Config::uncommit_delay`] (one to two windows: the "recent peak"),
//! however small the growth target. Memory needed that recently has not been returned to
//! the OS yet, so collecting early to stay below it buys no memory; it only costs marking.
//! Only cycles that ran at the growth target record their peaks (a raised trigger must not
//! feed itself), so the allowance ends one to two windows after the program last needed
//! that much: a startup spike is given back seconds later, as `TANDEM_UNCOMMIT_DELAY`
//! promises, and a delay of 0 turns it off. binary-trees reaches its highest heap while it
//! builds its stretch tree, and then ran 71 cycles of a third of that heap each (2 threads,
//! 120M), marking its long-lived tree every time.
//!
//! A concurrent cycle also has a goal for the heap by the end of marking, which mark
//! assists ([`super::assist`]) pace the allocating threads to: the trigger plus
//! [`ASSIST_SLACK`] of its distance from the live data, so the peak stays near the trigger
//! however little CPU the markers get. As far past the goal again is the heap's limit
//! ([`install`]), where allocations wait briefly for a cycle that started late.

use crate::config::{Mode, Trigger};
use crate::heap::CHUNK_SIZE;
use crate::runtime::Runtime;
use std::time::{Duration, Instant};

/// Base safety factor on the headroom for one cycle's allocation.
const HEADROOM_FACTOR: f64 = 1.5;
/// Most the safety factor grows to after cycles that lost the race.
const MAX_HEADROOM_FACTOR: f64 = 16.0;
/// Weight of the newest sample in the moving averages.
const EWMA_WEIGHT: f64 = 0.5;
/// Share of the last inter-cycle allocation the heap may grow by during marking before
/// assists take all the marking work they can find. A quarter, not a half, since assists
/// claim the workers' credit first (they slow the mutators only where the workers fall
/// behind): binary-trees 18 with 2 threads peak RSS 94 -> 86 MB, pypy/48M/t2 281-283 ->
/// 250-262 MB, wall within the noise (+7-12% on binary-trees, pypy and graph unchanged).
pub const ASSIST_SLACK: f64 = 0.25;

/// Bytes per object assumed for the first cycle's marking work, which no cycle measured
/// yet: without an estimate it ran without assists, and a program that builds its data at
/// full speed outran the markers (graph/t2: its first cycle, triggered at the 16 MB minimum
/// heap, peaked at 28 MB, and the chunks committed for it stayed the heap's size). Small,
/// so that the estimate errs high: assists take work only while the markers have some.
const FIRST_CYCLE_OBJECT_BYTES: usize = 48;

/// Least share of the growth room (`TANDEM_GC_GROWTH - 1` times the traced bytes) a heap
/// whose survivors lie scattered keeps to allocate in: the survivors' partly used lines
/// take the rest (pypy/48M/t2 holds 80 MB of lines for 64 MB of survivors).
const MIN_ROOM: f64 = 0.5;

/// What a cycle left live, as the pacer weighs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Survivors {
    /// Bytes the heap holds for them: kept lines and large objects (floating garbage
    /// allocated during marking excluded).
    pub held: usize,
    /// Bytes of the objects themselves: marked small objects and kept large ones, what
    /// the next cycle traces.
    pub traced: usize,
    /// Of `traced`, the small objects kept only because a dead finalizable object reaches
    /// them: handed to the VM to finalize, they die by the next cycle unless it keeps them.
    pub resurrected: usize,
}

/// How a cycle ended, for [`Pacer::cycle_finished`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    /// It degenerated, or began because an allocation failed.
    pub late: bool,
    /// A nursery cycle (generational mode).
    pub nursery: bool,
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
    /// Generational mode: the survivors of the last full cycle (nursery cycles keep the
    /// trigger it set) and the objects it marked.
    full: Survivors,
    full_marked: u64,
    /// Generational mode: the next cycle must be a full one (the old objects fill most of
    /// the growth headroom, or nursery cycles do not pay).
    wants_full: bool,
    /// Generational mode: full cycles still to run before a nursery cycle is tried again,
    /// after one found most young objects alive.
    full_streak: u32,
    /// Generational mode: nursery cycles since the last full cycle.
    nursery_run: u32,
    /// Generational mode: the heap kept by the last cycle, and how long full cycles take
    /// (`cycle_secs` follows the nursery cycles then).
    kept: usize,
    full_secs: f64,
    recent: RecentPeak,
    /// Bytes by which concurrent cycles' peaks passed their goals (moving average).
    overshoot: f64,
    /// Whether the current trigger is above the growth target because of the recent peak
    /// (such a cycle's peak is not recorded as one: the allowance must not feed itself).
    raised: bool,
}

/// The highest heap in use at the end of a cycle's marking over a sliding window of about
/// one to two window lengths (two buckets: the current one and the one before).
#[derive(Debug, Default)]
struct RecentPeak {
    bucket_start: Option<Instant>,
    current: usize,
    previous: usize,
}

impl RecentPeak {
    /// Records a cycle's peak seen at `now`, with buckets `window` long.
    fn record(&mut self, now: Instant, window: Duration, peak: usize) {
        if window.is_zero() {
            // Memory goes back at once: nothing is kept for reuse, so nothing is allowed.
            return;
        }
        self.age(now, window);
        self.current = self.current.max(peak);
    }

    /// Moves the buckets on to `now`: called for every cycle, the raised ones whose peaks
    /// are not recorded included. Aged only by `record`, a peak outlived its window for as
    /// long as every cycle ran on the trigger it raised: a program that grew to 500 MB and
    /// dropped to 9 MB live kept triggering at 510 MB, and kept the memory, for good.
    fn age(&mut self, now: Instant, window: Duration) {
        let Some(start) = self.bucket_start else {
            self.bucket_start = Some(now);
            return;
        };
        let age = now.saturating_duration_since(start);
        if age >= window {
            // A bucket older than two windows holds nothing recent any more.
            self.previous = if age >= 2 * window { 0 } else { self.current };
            self.current = 0;
            self.bucket_start = Some(now);
        }
    }

    /// The highest peak recorded in the window (0 when none).
    fn get(&self) -> usize {
        self.current.max(self.previous)
    }
}

/// How much more the survivors' lines may hold than the survivors themselves before the
/// heap counts as fragmented ([`Pacer::fragmented`]).
const FRAGMENTED_RATIO: f64 = 1.5;

/// Generational mode: the next cycle is full once the heap kept after a cycle leaves less
/// than 1/this of the growth headroom the last full cycle gave for the next nursery.
const NURSERY_MIN_ROOM: usize = 4;

/// Generational mode: a nursery cycle that keeps more than this share of the young heap
/// (what was allocated since the last cycle) does not pay: it traces nearly as much as a
/// full cycle and promotes objects that soon die (pypy/48M/t2 keeps 40-50%, graph/t2
/// about 8%, binary-trees 1-2% between its long-lived trees). Then [`FULL_STREAK`] full
/// cycles run before a nursery cycle is tried again.
const NURSERY_MAX_SURVIVAL: f64 = 0.25;
/// See [`NURSERY_MAX_SURVIVAL`].
const FULL_STREAK: u32 = 4;
/// Generational mode: most nursery cycles in a row. A nursery cycle cannot see old objects
/// die, so the trigger the last full cycle set stays while the live data shrinks (the
/// large workload's live set swings between 5 and 40 MB: it held 2x non-generational
/// mode's RSS without this bound).
const NURSERY_MAX_RUN: u32 = 8;

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
            full: Survivors::default(),
            full_marked: 0,
            wants_full: false,
            full_streak: 0,
            nursery_run: 0,
            kept: 0,
            full_secs: 0.0,
            recent: RecentPeak::default(),
            overshoot: 0.0,
            raised: false,
        }
    }
}

/// The goal of a concurrent cycle triggered at `trigger` with `live` bytes live: the trigger
/// plus [`ASSIST_SLACK`] of its distance from live.
fn goal_of(trigger: usize, live: usize) -> usize {
    trigger + (trigger.saturating_sub(live) as f64 * ASSIST_SLACK) as usize
}

/// Sets the runtime's trigger to `trigger` and its limit (`Runtime::limit`): in concurrent
/// mode as far past the goal as the goal is past the trigger. Past the limit the mutators
/// outran the collector, and an allocation waits briefly for the cycle running or requested
/// rather than growing the heap on: graph/t2's cycles started up to 8 MB past their
/// trigger (the last cycle's sweep ended there), and the large workload, allocating 17 GB/s
/// of arrays, started its cycles 15-40 MB past a 16 MB trigger. A stop-the-world
/// collection's peak is its trigger, so its limit is an eighth of the room past it: with
/// eight threads on two cores, allocating while the collector waited for a core to stop
/// them, an outside VM's collections began up to 33 MB past a 22 MB trigger.
pub fn install(rt: &Runtime, trigger: usize, live: usize) {
    let max = rt.space.heap_max();
    let limit = match rt.config.mode {
        Mode::Stw => trigger + trigger.saturating_sub(live) / 8,
        Mode::Concurrent => {
            let goal = goal_of(trigger, live);
            goal + (goal - trigger)
        }
    };
    rt.set_trigger(trigger);
    rt.set_limit(limit.min(max - max / 16).max(trigger));
}

/// The trigger whose [`goal_of`] is `goal` with `live` bytes live.
fn trigger_for(goal: usize, live: usize) -> usize {
    ((goal as f64 + ASSIST_SLACK * live as f64) / (1.0 + ASSIST_SLACK)) as usize
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

    /// Objects the next cycle is expected to mark: what the last one marked, or before the
    /// first, as many as `in_use` bytes could hold (see [`FIRST_CYCLE_OBJECT_BYTES`]).
    pub fn expected_marks(&self, nursery: bool, in_use: usize) -> u64 {
        let last = if nursery || self.full_marked == 0 {
            self.marked
        } else {
            self.full_marked
        };
        if last == 0 {
            (in_use / FIRST_CYCLE_OBJECT_BYTES) as u64
        } else {
            last
        }
    }

    /// Generational mode: whether the next cycle must be a full one (the first one is: it
    /// measures what full cycles mark and how long they take, which nursery cycles do not).
    pub fn wants_full(&self) -> bool {
        self.wants_full || self.full_marked == 0
    }

    /// The heap in use by which the concurrent cycle starting now should have finished
    /// marking: the trigger plus [`ASSIST_SLACK`] of its distance from the live data. Not
    /// from the heap at the start, which a late start would ratchet up cycle by cycle.
    pub fn assist_goal(&self, rt: &Runtime) -> usize {
        let max = rt.space.heap_max();
        goal_of(rt.trigger(), self.live).min(max - max / 16)
    }

    /// Records a finished cycle that took `cycle_secs` (from its first pause to the end of
    /// its sweep) and finished at `now`, had `peak` bytes of heap in use when its marking
    /// ended, marked `marked` objects and left `live`, and sets the runtime's next trigger.
    #[allow(clippy::too_many_arguments)]
    pub fn cycle_finished(
        &mut self,
        now: Instant,
        rt: &Runtime,
        live: Survivors,
        marked: u64,
        peak: usize,
        cycle_secs: f64,
        how: Ended,
    ) {
        let Ended { late, nursery } = how;
        // A nursery cycle keeps the trigger the last full cycle set: it did not trace the
        // old objects, some of which have died, and sizing the heap on its kept lines
        // would ratchet the heap up by them cycle after cycle.
        let kept = live;
        let live = if nursery {
            self.full
        } else {
            self.full = live;
            self.full_marked = marked;
            live
        };
        if cycle_secs > 0.0 && !late {
            // How far past its goal (still computed from this cycle's trigger and the last
            // cycle's survivors) a concurrent cycle's heap went while the markers finished.
            let over = peak.saturating_sub(self.assist_goal(rt));
            self.overshoot = ewma(self.overshoot, over as f64);
        }
        self.live = live.held;
        self.marked = marked;
        self.survivors = live;
        self.safety = if late {
            (self.safety * 2.0).min(MAX_HEADROOM_FACTOR)
        } else {
            (self.safety * 0.75).max(HEADROOM_FACTOR)
        };
        if self.raised {
            self.recent.age(now, rt.config.uncommit_delay);
        } else {
            self.recent.record(now, rt.config.uncommit_delay, peak);
        }
        let allocated = rt.stats.snapshot_allocated();
        let dt = now.duration_since(self.last_end).as_secs_f64();
        if dt > 0.0 {
            let rate = allocated.saturating_sub(self.allocated_at_end) as f64 / dt;
            self.alloc_rate = ewma(self.alloc_rate, rate);
        }
        if cycle_secs > 0.0 {
            // A stop-the-world collection (0 s) says nothing of how long the concurrent
            // cycles take that the headroom is for. Generational mode keeps full cycles'
            // times apart: they trace the whole heap, nursery cycles a fraction of it.
            if rt.config.generational && !nursery {
                self.full_secs = ewma(self.full_secs, cycle_secs);
            } else {
                self.cycle_secs = ewma(self.cycle_secs, cycle_secs);
            }
        }
        self.last_end = now;
        self.allocated_at_end = allocated;
        self.nursery_run = if nursery { self.nursery_run + 1 } else { 0 };
        if nursery {
            let young = peak.saturating_sub(self.kept).max(1);
            let promoted = kept.held.saturating_sub(self.kept);
            if promoted as f64 > young as f64 * NURSERY_MAX_SURVIVAL {
                self.full_streak = FULL_STREAK;
            }
        } else {
            self.full_streak = self.full_streak.saturating_sub(1);
        }
        self.kept = kept.held;
        let (mut t, mut raised) = self.target(rt, live, self.cycle_secs, !rt.config.generational);
        // The next nursery cycle needs room to allocate into: when the old objects leave
        // less than a quarter of the headroom the last full cycle gave, collect them.
        let headroom = t.saturating_sub(live.held);
        self.wants_full = rt.config.generational
            && (self.full_streak > 0
                || self.nursery_run >= NURSERY_MAX_RUN
                || t.saturating_sub(kept.held) < headroom / NURSERY_MIN_ROOM);
        if self.wants_full {
            (t, raised) = self.target(rt, live, self.full_secs.max(self.cycle_secs), false);
            // A full cycle traces the whole heap and runs longer than the nursery cycles:
            // it starts earlier by what the mutators allocate in the difference, so that
            // it peaks no higher than they do.
            let longer = (self.full_secs - self.cycle_secs).max(0.0);
            t = t
                .saturating_sub((self.alloc_rate * longer) as usize)
                .max(kept.held);
        }
        self.raised = raised;
        tracing::debug!(
            trigger = t,
            recent_peak = self.recent.get(),
            raised,
            peak,
            overshoot = self.overshoot,
            live = live.held,
            traced = live.traced,
            alloc_mb_s = self.alloc_rate / 1e6,
            cycle_ms = self.cycle_secs * 1e3,
            safety = self.safety,
            nursery,
            committed = rt.space.committed(),
            free_blocks = rt.space.pools.free.len(),
            recyclable = rt.space.pools.recyclable.len(),
            kept = kept.held,
            wants_full = self.wants_full,
            "pacer"
        );
        install(rt, t, live.held);
    }

    /// The heap in use at which the next cycle starts: `TANDEM_GC_GROWTH` times the bytes
    /// the survivors themselves take (what tracing found), so that the heap is the growth
    /// factor's multiple of the live data however scattered the survivors lie; the lines
    /// they leave partly empty (until evacuation compacts them) come out of the room to
    /// allocate, down to [`MIN_ROOM`] of it. Measuring growth on the survivors' lines
    /// instead would grow a fragmented heap by its free space too. At least what the
    /// recent peak allows (see the module doc).
    pub fn trigger(&self, rt: &Runtime, survivors: Survivors) -> usize {
        self.target(rt, survivors, self.cycle_secs, true).0
    }

    /// [`Pacer::trigger`] for a next cycle expected to take `cycle_secs`, and whether the
    /// recent peak raised it above the growth target. `allowance`: the recent peak may
    /// raise it; not in generational mode, where nursery cycles cost little, so that
    /// collecting early buys memory cheaply, and where full cycles, which run longer,
    /// would raise their trigger to their own last peak.
    fn target(
        &self,
        rt: &Runtime,
        survivors: Survivors,
        cycle_secs: f64,
        allowance: bool,
    ) -> (usize, bool) {
        let live = survivors.held;
        let max = rt.space.heap_max();
        match rt.config.gc_trigger {
            Trigger::Percent(p) => return ((max / 100 * p as usize).max(CHUNK_SIZE), false),
            Trigger::Bytes(b) => return (b.clamp(CHUNK_SIZE, max), false),
            Trigger::Auto => {}
        }
        let g = rt.config.gc_growth.0;
        // Resurrected objects are held (they count in `live`) but not grown for: sized on
        // them, a program whose objects mostly have finalizers (Python's `__del__`) grew
        // its heap by half at every cycle, each cycle resurrecting all it had allocated
        // since the last (16, 25, 37, 56, ... MB live for nothing kept).
        let traced = survivors
            .traced
            .saturating_sub(survivors.resurrected)
            .min(live) as f64;
        // The lines survivors leave partly empty count against the growth target, not on
        // top of it; but a fragmented heap keeps at least MIN_ROOM of the room it would have
        // had dense, or it collects without end.
        let room = (traced * (g - 1.0) * MIN_ROOM) as usize;
        let growth = ((traced * g) as usize)
            .max(live + room)
            .max(rt.config.heap_min.0)
            .max(CHUNK_SIZE);
        let recent = if allowance { self.recent.get() } else { 0 };
        let t = match rt.config.mode {
            Mode::Stw => {
                // Near the maximum, sit halfway between live and maximum so that a nearly
                // full heap does not collect on every refill.
                if growth > max - max / 8 {
                    live + max.saturating_sub(live) / 2
                } else {
                    // A stop-the-world cycle's peak is its trigger.
                    growth.max(recent.min(max - max / 8))
                }
            }
            Mode::Concurrent => {
                let headroom = (self.alloc_rate * cycle_secs * self.safety) as usize
                    + rt.config.threads * CHUNK_SIZE / 4;
                // Assists hold a concurrent cycle's peak near its goal, the trigger plus
                // ASSIST_SLACK of the trigger's distance from live, and it passes the goal
                // by the overshoot (a moving average, so one more of it is kept as margin):
                // solve for the trigger whose peak is the recent one.
                let goal = recent.saturating_sub(2 * self.overshoot as usize);
                let allowed = trigger_for(goal, live);
                growth
                    .max(allowed)
                    .min(max.saturating_sub(headroom))
                    .max(live.min(max))
            }
        };
        (t, t > growth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, Config};

    const MB: usize = 1 << 20;

    /// A runtime in `mode` with a 4 GiB maximum, a 4 MiB minimum and `delay` to uncommit.
    fn runtime(mode: Mode, delay: Duration) -> Runtime {
        Runtime::new(Config {
            mode,
            heap_max: ByteSize(4096 * MB),
            heap_min: ByteSize(4 * MB),
            uncommit_delay: delay,
            ..Config::default()
        })
        .unwrap()
    }

    /// Survivors with no free space between them.
    fn gapless(bytes: usize) -> Survivors {
        Survivors {
            held: bytes,
            traced: bytes,
            resurrected: 0,
        }
    }

    /// A cycle with 10 MiB of gapless survivors that ended at `at` and peaked at `peak`.
    fn finished(pacer: &mut Pacer, rt: &Runtime, at: Instant, peak: usize) {
        let how = Ended::default();
        pacer.cycle_finished(at, rt, gapless(10 * MB), 1, peak, 0.0, how);
    }

    #[test]
    fn growth_is_measured_on_the_traced_bytes_not_the_lines_that_hold_them() {
        let mb = MB;
        let rt = runtime(Mode::Stw, Duration::from_secs(5));
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
            resurrected: 0,
        };
        let t = pacer.trigger(&rt, scattered);
        let room = (40.0 * mb as f64 * (g - 1.0) * MIN_ROOM) as usize;
        assert_eq!(
            t,
            100 * mb + room,
            "scattered: the lines plus the least room"
        );
        assert!(t < dense, "scattered survivors buy less allocation");
        let some_gaps = Survivors {
            held: 50 * mb,
            traced: 40 * mb,
            resurrected: 0,
        };
        assert_eq!(
            pacer.trigger(&rt, some_gaps),
            (40.0 * mb as f64 * g) as usize,
            "the gaps count against the growth target"
        );
        let small = pacer.trigger(&rt, gapless(mb));
        assert_eq!(small, 4 * mb, "never below the minimum heap");
        // Finalizers resurrected most of what was marked: held, not grown for.
        let finalized = Survivors {
            held: 100 * mb,
            traced: 100 * mb,
            resurrected: 90 * mb,
        };
        let room = (10.0 * mb as f64 * (g - 1.0) * MIN_ROOM) as usize;
        assert_eq!(
            pacer.trigger(&rt, finalized),
            100 * mb + room,
            "the resurrected objects are held until the next cycle, with room for 10 MB"
        );
    }

    #[test]
    fn a_stop_the_world_limit_is_an_eighth_of_the_room_past_the_trigger() {
        let rt = runtime(Mode::Stw, Duration::from_secs(5));
        install(&rt, 40 * MB, 20 * MB);
        assert_eq!(rt.limit(), 40 * MB + 20 * MB / 8);
    }

    #[test]
    fn the_limit_is_as_far_past_the_goal_as_the_goal_is_past_the_trigger() {
        let rt = runtime(Mode::Concurrent, Duration::from_secs(5));
        install(&rt, 40 * MB, 20 * MB);
        let goal = goal_of(40 * MB, 20 * MB);
        assert_eq!(rt.trigger(), 40 * MB);
        assert_eq!(rt.limit(), goal + (goal - 40 * MB));
        let max = rt.space.heap_max();
        install(&rt, max / 10 * 8, 0);
        assert_eq!(
            rt.limit(),
            max - max / 16,
            "never past the maximum's last sixteenth"
        );
    }

    #[test]
    fn the_trigger_may_use_the_recent_peak_but_a_raised_cycle_does_not_extend_it() {
        let mb = MB;
        let stw = |delay| runtime(Mode::Stw, delay);
        let rt = stw(Duration::from_secs(3600));
        let g = rt.config.gc_growth.0;
        let growth = (10.0 * mb as f64 * g) as usize;
        let mut pacer = Pacer::default();
        // A startup spike: the first cycle ran at the growth target and peaked at 400 MiB.
        finished(&mut pacer, &rt, Instant::now(), 400 * mb);
        assert_eq!(
            rt.trigger(),
            400 * mb,
            "stw: the trigger is the recent peak"
        );
        // Cycles that ran on the raised trigger do not record their peaks...
        finished(&mut pacer, &rt, Instant::now(), 900 * mb);
        assert_eq!(
            rt.trigger(),
            400 * mb,
            "a raised cycle's peak is not recorded"
        );
        // ...and the allowance ends one to two windows after the spike, however many
        // raised cycles ran meanwhile.
        let hour = Duration::from_secs(3600);
        let start = Instant::now();
        let mut raised_at = |at: Duration| {
            finished(&mut pacer, &rt, start + at, 900 * mb);
            rt.trigger()
        };
        for minutes in (10..=110).step_by(20) {
            let at = Duration::from_secs(60 * minutes);
            assert_eq!(raised_at(at), 400 * mb, "still allowed after {minutes} min");
        }
        for minutes in (130..=250).step_by(20) {
            let at = Duration::from_secs(60 * minutes);
            if raised_at(at) == growth {
                assert!(
                    at <= 2 * hour + hour / 6,
                    "the allowance ended at {minutes} min"
                );
                break;
            }
            assert!(at < 2 * hour, "still raised after {minutes} min");
        }
        assert_eq!(rt.trigger(), growth, "the allowance ends with its window");

        let rt = stw(Duration::ZERO);
        let mut pacer = Pacer::default();
        finished(&mut pacer, &rt, Instant::now(), 400 * mb);
        assert_eq!(rt.trigger(), growth, "no uncommit delay: no allowance");

        let rt = runtime(Mode::Concurrent, Duration::from_secs(5));
        let mut pacer = Pacer::default();
        finished(&mut pacer, &rt, Instant::now(), 400 * mb);
        let t = rt.trigger();
        let goal = goal_of(t, 10 * mb);
        assert!(
            goal.abs_diff(400 * mb) <= mb,
            "concurrent: the goal ({goal}) of the raised trigger ({t}) is the recent peak"
        );
    }

    #[test]
    fn generational_pacing_chooses_nursery_and_full_cycles() {
        let mb = MB;
        let rt = Runtime::new(Config {
            generational: true,
            ..runtime(Mode::Stw, Duration::ZERO).config
        })
        .unwrap();
        let mut pacer = Pacer::default();
        assert!(pacer.wants_full(), "the first cycle is full");
        let full = Ended::default();
        let nursery = Ended {
            late: false,
            nursery: true,
        };
        pacer.cycle_finished(
            Instant::now(),
            &rt,
            gapless(10 * mb),
            1000,
            40 * mb,
            0.0,
            full,
        );
        let t = rt.trigger();
        assert!(!pacer.wants_full(), "room for nursery cycles");
        // A nursery cycle that keeps 2 of the 30 MB allocated since: the trigger stays.
        pacer.cycle_finished(
            Instant::now(),
            &rt,
            gapless(12 * mb),
            100,
            40 * mb,
            0.0,
            nursery,
        );
        assert_eq!(
            rt.trigger(),
            t,
            "a nursery cycle keeps the full cycle's trigger"
        );
        assert!(!pacer.wants_full());
        // Old objects leave under a quarter of the headroom: the next cycle is full.
        let nearly = t - (t - 10 * mb) / 8;
        pacer.cycle_finished(
            Instant::now(),
            &rt,
            gapless(nearly),
            100,
            100 * mb,
            0.0,
            nursery,
        );
        assert!(pacer.wants_full(), "the old objects fill the headroom");
        pacer.cycle_finished(Instant::now(), &rt, gapless(10 * mb), 1000, t, 0.0, full);
        assert!(!pacer.wants_full());
        // A nursery cycle that keeps 15 of 20 MB: four full cycles follow.
        pacer.cycle_finished(
            Instant::now(),
            &rt,
            gapless(25 * mb),
            800,
            30 * mb,
            0.0,
            nursery,
        );
        for i in 0..FULL_STREAK {
            assert!(pacer.wants_full(), "full cycle {i} of the streak");
            pacer.cycle_finished(
                Instant::now(),
                &rt,
                gapless(10 * mb),
                1000,
                30 * mb,
                0.0,
                full,
            );
        }
        assert!(!pacer.wants_full(), "then nursery cycles are tried again");
        assert_eq!(pacer.expected_marks(false, 0), 1000, "a full cycle's marks");
    }
}
