//! The process's own figures, read when asked: resident memory from `/proc/self/status`, and
//! the heap from the allocator the binary installs (the library has none of its own, so that
//! tests and benches linking it measure with theirs).

/// Bytes allocated on the heap now, as the global allocator counts them.
pub type HeapReader = fn() -> u64;

#[derive(Debug, Clone, Copy, Default)]
pub struct Process {
    heap: Option<HeapReader>,
}

/// One reading; `None` where a figure could not be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFigures {
    pub rss_bytes: Option<u64>,
    pub heap_bytes: Option<u64>,
}

impl Process {
    pub fn new(heap: Option<HeapReader>) -> Self {
        Self { heap }
    }

    pub fn sample(&self) -> ProcessFigures {
        ProcessFigures {
            rss_bytes: resident_bytes(),
            heap_bytes: self.heap.map(|read| read()),
        }
    }
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_plausible() {
        fn heap() -> u64 {
            42
        }
        let figures = Process::new(Some(heap)).sample();
        assert!(
            figures.rss_bytes.is_some_and(|r| r > 1 << 20),
            "rss {:?}",
            figures.rss_bytes
        );
        assert_eq!(figures.heap_bytes, Some(42));
        assert_eq!(Process::default().sample().heap_bytes, None);
    }
}
