//! Runtime options: one table declares every `TANDEM_*` variable, its type, default and
//! documentation; parsing, defaults, `Config::from_env` and the README table all follow it.
//!
//! A bad value is an error naming the variable and the accepted form, never a warning.

use crate::error::{Error, Result};
use std::time::Duration;

/// Which collector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Parallel stop-the-world mark-region collection: the reference mode.
    Stw,
    /// Concurrent marking with SATB barriers between two short pauses, concurrent sweep.
    Concurrent,
}

/// When a collection cycle starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The pacer: from the measured allocation and marking rates, early enough to finish
    /// before the heap is full (in stop-the-world mode: when the heap doubles).
    Auto,
    /// When the heap in use reaches this percentage of the maximum heap.
    Percent(u8),
    /// When the heap in use reaches this many bytes.
    Bytes(usize),
}

impl std::fmt::Display for Trigger {
    /// As `TANDEM_GC_TRIGGER` accepts it: `auto`, `70%` or a size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Auto => write!(f, "auto"),
            Trigger::Percent(p) => write!(f, "{p}%"),
            Trigger::Bytes(b) => write!(f, "{}", ByteSize(*b)),
        }
    }
}

impl OptionValue for Trigger {
    const FORM: &'static str =
        "`auto`, a percentage of TANDEM_HEAP_MAX such as `70%`, or a size such as `512M`";
    fn parse_value(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Some(Trigger::Auto);
        }
        if let Some(p) = s.strip_suffix('%') {
            return p
                .trim()
                .parse()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .map(Trigger::Percent);
        }
        parse_size(s).map(Trigger::Bytes)
    }
}

/// How a value is written in the environment.
trait OptionValue: Sized {
    /// The accepted form, for error messages.
    const FORM: &'static str;
    fn parse_value(s: &str) -> Option<Self>;
}

impl OptionValue for usize {
    const FORM: &'static str = "a positive integer";
    fn parse_value(s: &str) -> Option<Self> {
        s.trim().parse().ok().filter(|&n| n > 0)
    }
}

/// A count where 0 means off (`TANDEM_TORTURE`).
impl OptionValue for u64 {
    const FORM: &'static str = "a non-negative integer (0: off)";
    fn parse_value(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

/// A heap growth factor: how many times the live bytes the heap may hold before the next
/// cycle starts.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Growth(pub f64);

impl OptionValue for Growth {
    const FORM: &'static str = "a factor from 1.1 to 100, such as 2 or 1.5";
    fn parse_value(s: &str) -> Option<Self> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|g| (1.1..=100.0).contains(g))
            .map(Growth)
    }
}

impl OptionValue for bool {
    const FORM: &'static str = "one of 1, 0, true, false, yes, no, on, off (empty: off)";
    fn parse_value(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" | "" => Some(false),
            _ => None,
        }
    }
}

impl OptionValue for Mode {
    const FORM: &'static str = "`concurrent` or `stw`";
    fn parse_value(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stw" => Some(Mode::Stw),
            "concurrent" => Some(Mode::Concurrent),
            _ => None,
        }
    }
}

/// When the collector moves objects to compact the heap (`TANDEM_EVACUATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvacuationMode {
    /// In every cycle that finds fragmented blocks: inside stop-the-world collections, and
    /// during concurrent marking with the load barrier on.
    Concurrent,
    /// Only inside stop-the-world pauses, so the load barrier is never on (a concurrent
    /// cycle then does not move objects).
    Pause,
    /// Never: no object ever moves.
    Off,
}

impl OptionValue for EvacuationMode {
    const FORM: &'static str = "`concurrent`, `pause` or `off`";
    fn parse_value(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "concurrent" => Some(EvacuationMode::Concurrent),
            "pause" => Some(EvacuationMode::Pause),
            "off" => Some(EvacuationMode::Off),
            _ => None,
        }
    }
}

impl OptionValue for String {
    const FORM: &'static str = "a tracing filter such as `info` or `tandem=debug`";
    fn parse_value(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
}

/// A byte size: digits with an optional K, M, G or T suffix (powers of 1024), e.g. `512M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub usize);

impl std::fmt::Display for ByteSize {
    /// In the largest unit that divides it exactly (`2G`, `1536M`, `4097`), the way sizes
    /// are typed in the environment.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
            if self.0 != 0 && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl OptionValue for ByteSize {
    const FORM: &'static str =
        "a positive byte count with an optional K, M, G or T suffix (powers of 1024; \
         case-insensitive, B or iB may follow), e.g. 512M";
    fn parse_value(s: &str) -> Option<Self> {
        parse_size(s).map(ByteSize)
    }
}

/// Parses `123`, `64K`, `512M`, `2G`, `1T` (case-insensitive, optional `B`/`iB`) into bytes.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let upper = s.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match body.chars().last()? {
        'K' => (&body[..body.len() - 1], 10),
        'M' => (&body[..body.len() - 1], 20),
        'G' => (&body[..body.len() - 1], 30),
        'T' => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let n: usize = digits.trim().parse().ok()?;
    n.checked_mul(1usize << shift).filter(|&b| b > 0)
}

/// Fails on a `TANDEM_*` name that is not an option, naming the nearest one.
fn check_known(var: &str) -> Result<()> {
    let Some(rest) = var.strip_prefix("TANDEM_") else {
        return Ok(());
    };
    if rest.starts_with("STRESS_") || Config::TABLE.iter().any(|(v, _, _)| *v == var) {
        return Ok(());
    }
    let nearest = Config::TABLE
        .iter()
        .map(|(v, _, _)| *v)
        .min_by_key(|v| edit_distance(v, var))
        .unwrap_or("TANDEM_THREADS");
    Err(Error::Config(format!(
        "unknown environment variable {var}: did you mean {nearest}? (TANDEM_* is reserved \
         for options; see the README's Configuration table)"
    )))
}

/// Levenshtein distance between two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

impl OptionValue for Duration {
    const FORM: &'static str = "a duration such as `5s`, `500ms` or `2m`, or `0`";
    fn parse_value(s: &str) -> Option<Self> {
        parse_duration(s)
    }
}

/// Parses `0`, `250ms`, `5s`, `2m` or `1h` (whole numbers, case-insensitive) into a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim().to_ascii_lowercase();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let (digits, unit_ms) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = s.strip_suffix('m') {
        (d, 60_000)
    } else if let Some(d) = s.strip_suffix('h') {
        (d, 3_600_000)
    } else {
        return None;
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

macro_rules! options {
    ($($(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, env $var:literal;)*) => {
        /// Every option of the runtime. Build with [`Config::default`] or [`Config::from_env`],
        /// adjust fields, then pass to [`crate::Heap::new`].
        #[derive(Debug, Clone)]
        pub struct Config {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $($field: $default,)* }
            }
        }

        impl Config {
            /// The table of options: (environment variable, accepted form, documentation).
            pub const TABLE: &'static [(&'static str, &'static str, &'static str)] = &[
                $(($var, <$ty as OptionValue>::FORM, concat!($($doc),*)),)*
            ];

            /// Applies every `TANDEM_*` variable found by `lookup` over `self`.
            pub fn apply_env_with(
                mut self,
                lookup: impl Fn(&str) -> Option<String>,
            ) -> Result<Self> {
                let mut given: Vec<&str> = Vec::new();
                $(
                    if let Some(raw) = lookup($var) {
                        given.push($var);
                        self.$field = <$ty as OptionValue>::parse_value(&raw).ok_or_else(|| {
                            Error::Config(format!(
                                "{}={:?} is not valid: expected {}",
                                $var, raw, <$ty as OptionValue>::FORM
                            ))
                        })?;
                    }
                )*
                if !given.contains(&"TANDEM_HEAP_MIN") {
                    self = self.min_follows_max();
                }
                self.validate()?;
                Ok(self)
            }
        }
    };
}

options! {
    /// Number of parallel GC worker threads (default: the available parallelism, which
    /// respects cgroup quotas and the affinity mask).
    threads: usize = default_threads(), env "TANDEM_THREADS";
    /// Heap size kept committed; free memory above it is returned to the OS once it has
    /// stayed unused for TANDEM_UNCOMMIT_DELAY.
    heap_min: ByteSize = ByteSize(16 << 20), env "TANDEM_HEAP_MIN";
    /// How long an empty chunk stays committed (reused without page faults) before a
    /// background thread returns it to the OS; `0` returns it at the end of the GC that
    /// found it empty.
    uncommit_delay: Duration = Duration::from_secs(5), env "TANDEM_UNCOMMIT_DELAY";
    /// Hard limit on the heap (small and large objects together).
    heap_max: ByteSize = ByteSize(1 << 30), env "TANDEM_HEAP_MAX";
    /// Which collector runs: `concurrent` (concurrent marking, short pauses) or `stw`
    /// (parallel stop-the-world, the reference mode).
    mode: Mode = Mode::Concurrent, env "TANDEM_MODE";
    /// Workers that mark concurrently with the mutators (default: a quarter of
    /// TANDEM_THREADS, at least 1); pauses use all workers.
    conc_threads: usize = 0, env "TANDEM_CONC_THREADS";
    /// When a cycle starts: `auto` (the pacer), a percentage of TANDEM_HEAP_MAX, or a size.
    gc_trigger: Trigger = Trigger::Auto, env "TANDEM_GC_TRIGGER";
    /// With the `auto` trigger: the heap may grow past the lines the survivors hold by this
    /// factor minus one times their bytes before the next cycle (like GOGC or PYPY_GC_MAJOR_COLLECT); larger trades memory
    /// for fewer cycles. The default, 2.5, is chosen from the bench's space-time curves (see
    /// the README): on the C clients it is the factor that keeps both wall time (at most
    /// 0.75x libgc's; 2 does not on binary-trees 18) and peak RSS (at most 1.5x libgc's; 3
    /// does not on binary-trees 21) in bounds.
    gc_growth: Growth = Growth(2.5), env "TANDEM_GC_GROWTH";
    /// When objects move to compact the heap: `concurrent` (stop-the-world collections
    /// and concurrent cycles, with the load barrier on while they move), `pause` (only in
    /// stop-the-world collections; the load barrier never turns on, and in concurrent mode
    /// a collection the heap starts after a cycle that left it fragmented runs as one
    /// compacting pause) or `off`.
    evacuation: EvacuationMode = EvacuationMode::Concurrent, env "TANDEM_EVACUATION";
    /// Torture setting for VM ports: every block with a free line is a candidate for
    /// evacuation, not only sparse ones (within the same headroom budget), so that objects
    /// move as often as they can and a missing root or load barrier shows at once.
    evacuate_all: bool = false, env "TANDEM_EVACUATE_ALL";
    /// A young generation with sticky mark bits: objects that survived a cycle stay marked
    /// (old), and most cycles trace only from the roots and the remembered set (old objects
    /// stored into since) through the objects allocated since the last cycle; a full cycle
    /// runs when the old objects fill the heap's growth headroom. Needs the REMEMBER
    /// barrier (`tandem_write_ref`, `tandem_object_barrier`, `tandem_array_copy_refs`).
    generational: bool = false, env "TANDEM_GENERATIONAL";
    /// Torture mode for VM ports: every N-th allocation slow path and every N-th safepoint
    /// poll of each thread starts a cycle (and waits for it in `stw` mode), so a missing
    /// root or barrier shows at once. 0 (the default) turns it off.
    torture: u64 = 0, env "TANDEM_TORTURE";
    /// Back the heap with transparent huge pages (`MADV_HUGEPAGE`; needs THP `madvise` or
    /// `always` in /sys/kernel/mm/transparent_hugepage/enabled). Marking a large heap runs
    /// about 1.45x faster (fewer TLB misses) and a chunk costs 2 page faults instead of
    /// 1024, but a fault that must find or zero a 2 MiB page can keep a thread for
    /// milliseconds, so pauses and stops get longer tails: off by default.
    huge_pages: bool = false, env "TANDEM_HUGE_PAGES";
    /// Pin GC worker threads to cores, one core each, round-robin.
    affinity: bool = false, env "TANDEM_AFFINITY";
    /// Verify the heap around every GC (reachable objects intact and marked, free lines
    /// poisoned) and audit every barriered reference store (the STORE barrier stays on).
    verify: bool = false, env "TANDEM_VERIFY";
    /// A `tracing` filter for GC logs (applied by the embedder's subscriber, e.g. tandem-stress).
    log: String = String::new(), env "TANDEM_LOG";
    /// Capacity of each mutator's shadow stack, in root slots (virtual memory, touched lazily).
    shadow_stack_slots: usize = 1 << 20, env "TANDEM_SHADOW_STACK";
}

impl Config {
    /// The defaults overridden by the process environment.
    pub fn from_env() -> Result<Self> {
        Config::default().apply_env()
    }

    /// `self` overridden by the process environment (the environment wins over the API).
    /// An unknown `TANDEM_*` variable is an error naming the nearest known one (a typo
    /// must not silently run with defaults); `TANDEM_STRESS_*` belongs to the tools.
    pub fn apply_env(self) -> Result<Self> {
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                check_known(k)?;
            }
        }
        self.apply_env_with(|v| std::env::var(v).ok())
    }

    /// A minimum left at its default follows a smaller maximum down (`TANDEM_HEAP_MAX=8M`
    /// alone is a valid request, not a conflict with the 16M default minimum).
    pub fn min_follows_max(mut self) -> Self {
        if self.heap_min == Config::default().heap_min && self.heap_min > self.heap_max {
            self.heap_min = self.heap_max;
        }
        self
    }

    /// Workers used for concurrent marking.
    pub fn concurrent_workers(&self) -> usize {
        if self.conc_threads > 0 {
            self.conc_threads
        } else {
            (self.threads / 4).max(1)
        }
    }

    /// Checks relations between options.
    pub fn validate(&self) -> Result<()> {
        if self.threads == 0 || self.threads > 1024 {
            return Err(Error::Config(format!(
                "TANDEM_THREADS={} is out of range: expected 1 to 1024",
                self.threads
            )));
        }
        if self.conc_threads > self.threads {
            return Err(Error::Config(format!(
                "TANDEM_CONC_THREADS={} is larger than TANDEM_THREADS={}",
                self.conc_threads, self.threads
            )));
        }
        let min_heap = crate::heap::CHUNK_SIZE;
        if self.heap_max.0 < min_heap {
            return Err(Error::Config(format!(
                "TANDEM_HEAP_MAX={} is too small: the heap needs at least {}",
                self.heap_max,
                ByteSize(min_heap)
            )));
        }
        if self.heap_max.0 > 1 << 44 {
            return Err(Error::Config(format!(
                "TANDEM_HEAP_MAX={} is too large: at most 16T",
                self.heap_max
            )));
        }
        if self.heap_min > self.heap_max {
            return Err(Error::Config(format!(
                "TANDEM_HEAP_MIN={} is larger than TANDEM_HEAP_MAX={}",
                self.heap_min, self.heap_max
            )));
        }
        if let Trigger::Bytes(b) = self.gc_trigger {
            if b > self.heap_max.0 {
                return Err(Error::Config(format!(
                    "TANDEM_GC_TRIGGER={} is larger than TANDEM_HEAP_MAX={}: the heap could \
                     never reach it",
                    ByteSize(b),
                    self.heap_max
                )));
            }
        }
        if self.shadow_stack_slots > 1 << 28 {
            return Err(Error::Config(
                "TANDEM_SHADOW_STACK is too large: at most 268435456 slots".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn bad_values_name_the_variable_and_form() {
        for (pairs, var) in [
            (&[("TANDEM_THREADS", "0")][..], "TANDEM_THREADS"),
            (&[("TANDEM_THREADS", "abc")][..], "TANDEM_THREADS"),
            (&[("TANDEM_HEAP_MAX", "12Q")][..], "TANDEM_HEAP_MAX"),
            (&[("TANDEM_MODE", "fast")][..], "TANDEM_MODE"),
            (&[("TANDEM_VERIFY", "maybe")][..], "TANDEM_VERIFY"),
            (
                &[("TANDEM_UNCOMMIT_DELAY", "5")][..],
                "TANDEM_UNCOMMIT_DELAY",
            ),
            (
                &[("TANDEM_UNCOMMIT_DELAY", "-1s")][..],
                "TANDEM_UNCOMMIT_DELAY",
            ),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(pairs.to_vec().into_boxed_slice());
            let err = Config::default().apply_env_with(env(pairs)).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(msg.contains("expected"), "{msg}");
        }
    }

    #[test]
    fn torture_accepts_zero_and_a_trigger_past_the_maximum_is_refused() {
        let c = Config::default()
            .apply_env_with(env(&[("TANDEM_TORTURE", "0")]))
            .unwrap();
        assert_eq!(c.torture, 0, "0 turns torture off, as documented");
        let e = Config::default()
            .apply_env_with(env(&[
                ("TANDEM_GC_TRIGGER", "2G"),
                ("TANDEM_HEAP_MAX", "1G"),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("TANDEM_GC_TRIGGER"), "{e}");
    }

    #[test]
    fn env_overrides_defaults() {
        let c = Config::default()
            .apply_env_with(env(&[
                ("TANDEM_THREADS", "3"),
                ("TANDEM_HEAP_MAX", "256M"),
                ("TANDEM_VERIFY", "1"),
            ]))
            .unwrap();
        assert_eq!(c.threads, 3);
        assert_eq!(c.heap_max, ByteSize(256 << 20));
        assert!(c.verify);
    }

    #[test]
    fn triggers_parse_as_auto_percent_or_size() {
        let t = |v: &'static str| {
            let pairs: &'static [(&str, &str)] =
                Box::leak(vec![("TANDEM_GC_TRIGGER", v)].into_boxed_slice());
            Config::default()
                .apply_env_with(env(pairs))
                .map(|c| c.gc_trigger)
        };
        assert_eq!(t("auto").unwrap(), Trigger::Auto);
        assert_eq!(t("70%").unwrap(), Trigger::Percent(70));
        assert_eq!(t("256M").unwrap(), Trigger::Bytes(256 << 20));
        assert!(t("150%")
            .unwrap_err()
            .to_string()
            .contains("TANDEM_GC_TRIGGER"));
        assert!(t("soon").is_err());
    }

    #[test]
    fn unknown_variables_are_errors_naming_the_nearest_option() {
        let e = check_known("TANDEM_HEAP_MAXX").unwrap_err().to_string();
        assert!(e.contains("TANDEM_HEAP_MAXX") && e.contains("did you mean TANDEM_HEAP_MAX?"));
        let e = check_known("TANDEM_THREAD").unwrap_err().to_string();
        assert!(e.contains("did you mean TANDEM_THREADS?"), "{e}");
        assert!(check_known("TANDEM_STRESS_LIBGC").is_ok());
        assert!(check_known("TANDEM_VERIFY").is_ok());
        assert!(check_known("PATH").is_ok());
    }

    #[test]
    fn a_maximum_alone_below_the_default_minimum_pulls_the_minimum_down() {
        let c = Config::default()
            .apply_env_with(env(&[("TANDEM_HEAP_MAX", "8M")]))
            .unwrap();
        assert_eq!(
            (c.heap_min, c.heap_max),
            (ByteSize(8 << 20), ByteSize(8 << 20))
        );
    }

    #[test]
    fn sizes_in_messages_read_as_typed() {
        assert_eq!(ByteSize(2 << 30).to_string(), "2G");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536M");
        assert_eq!(ByteSize(4097).to_string(), "4097");
        let e = Config::default()
            .apply_env_with(env(&[
                ("TANDEM_HEAP_MIN", "1G"),
                ("TANDEM_HEAP_MAX", "64M"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TANDEM_HEAP_MIN=1G is larger than TANDEM_HEAP_MAX=64M"),
            "{e}"
        );
    }

    #[test]
    fn growth_factors_parse_within_their_range() {
        let g = |v: &'static str| {
            let pairs: &'static [(&str, &str)] =
                Box::leak(vec![("TANDEM_GC_GROWTH", v)].into_boxed_slice());
            Config::default()
                .apply_env_with(env(pairs))
                .map(|c| c.gc_growth)
        };
        assert_eq!(g("1.5").unwrap(), Growth(1.5));
        assert_eq!(g("3").unwrap(), Growth(3.0));
        for bad in ["1", "0.5", "1000", "two"] {
            let e = g(bad).unwrap_err().to_string();
            assert!(
                e.contains("TANDEM_GC_GROWTH") && e.contains("1.1 to 100"),
                "{e}"
            );
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("ms"), None);
    }

    #[test]
    fn min_above_max_is_rejected() {
        let e = Config::default()
            .apply_env_with(env(&[
                ("TANDEM_HEAP_MIN", "1G"),
                ("TANDEM_HEAP_MAX", "64M"),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("TANDEM_HEAP_MIN"));
    }
}
