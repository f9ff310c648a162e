//! `tandem-stress heap-summary DUMP`: sums a heap dump (`Heap::dump_heap`,
//! `tandem_dump_heap`) by type: objects, bytes and outgoing references per type, largest
//! first.

use std::collections::HashMap;
use std::path::Path;

/// Per-type totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TypeTotals {
    /// Objects of the type.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their non-null references.
    pub references: u64,
}

/// Sums the dump `text` by type id, largest first; an error names the first bad line.
pub fn summarize(text: &str) -> Result<Vec<(u32, TypeTotals)>, String> {
    let mut by_type: HashMap<u32, TypeTotals> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let bad = || {
            format!(
                "line {}: {line:?} is not `address type size referents...`",
                n + 1
            )
        };
        let _addr = f.next().filter(|a| a.starts_with("0x")).ok_or_else(bad)?;
        let ty: u32 = f.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        let size: u64 = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let t = by_type.entry(ty).or_default();
        t.objects += 1;
        t.bytes += size;
        t.references += f.count() as u64;
    }
    let mut v: Vec<(u32, TypeTotals)> = by_type.into_iter().collect();
    v.sort_by_key(|&(ty, t)| (std::cmp::Reverse(t.bytes), ty));
    Ok(v)
}

/// Reads and sums the dump at `path`, and prints the table.
pub fn main(path: &Path) -> std::process::ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            errln!("tandem-stress: cannot read {}: {e}", path.display());
            return std::process::ExitCode::from(crate::EXIT_USAGE);
        }
    };
    match summarize(&text) {
        Ok(rows) => {
            outln!(
                "{:>8} {:>12} {:>14} {:>12}",
                "type",
                "objects",
                "bytes",
                "references"
            );
            for (ty, t) in &rows {
                outln!(
                    "{ty:>8} {:>12} {:>14} {:>12}",
                    t.objects,
                    t.bytes,
                    t.references
                );
            }
            let (objects, bytes) = rows
                .iter()
                .fold((0, 0), |(o, b), (_, t)| (o + t.objects, b + t.bytes));
            outln!("{:>8} {objects:>12} {bytes:>14}", "total");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("tandem-stress: {}: {e}", path.display());
            std::process::ExitCode::from(crate::EXIT_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_is_summed_by_type_largest_first_and_bad_lines_are_named() {
        let dump = "# tandem heap dump 1\n0x10 3 24 0x28\n0x28 3 24\n0x40 7 4096 0x10 0x28\n";
        let rows = summarize(dump).unwrap();
        let t7 = TypeTotals {
            objects: 1,
            bytes: 4096,
            references: 2,
        };
        let t3 = TypeTotals {
            objects: 2,
            bytes: 48,
            references: 1,
        };
        assert_eq!(rows, vec![(7, t7), (3, t3)]);
        let e = summarize("0x10 x 24\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
