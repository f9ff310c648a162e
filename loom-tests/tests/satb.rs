//! Loom model of the SATB hand-off (`tandem::barriers::satb`) under the real worker pool's
//! termination protocol: a mutator logs entries and publishes full buffers while a marker
//! drains the queue and the phase terminates; then the final-mark step flushes the partial
//! buffer and drains the rest. Every entry must be processed exactly once, whatever the
//! interleaving, and the marking phase must terminate while buffers are still arriving.
#![cfg(loom)]

use loom::sync::{Arc, Mutex};
use tandem::barriers::satb::{SatbBuffer, SatbQueue, SATB_BUFFER_CAPACITY};
use tandem::workers::{Job, WorkerContext, WorkerPool};

/// The marking job's shape: drain SATB buffers, then take packets until termination.
struct Drain {
    queue: Arc<SatbQueue>,
    seen: Mutex<Vec<usize>>,
}

impl Job<Vec<usize>> for Drain {
    fn run(&self, ctx: &mut WorkerContext<'_, Vec<usize>>) {
        loop {
            if let Some(buf) = self.queue.take() {
                // Marking an entry may produce work for the other markers.
                ctx.push(buf);
            }
            match ctx.next_packet() {
                Some(p) => self.seen.lock().unwrap().extend(p),
                None => break,
            }
        }
    }
}

#[test]
fn every_logged_entry_is_processed_once_and_marking_terminates() {
    loom_tests::model(|| {
        let queue = Arc::new(SatbQueue::default());
        let q2 = queue.clone();
        // The mutator: one full buffer handed over, one entry left in its private buffer.
        let mutator = loom::thread::spawn(move || {
            let mut buf = SatbBuffer::default();
            for i in 0..SATB_BUFFER_CAPACITY {
                if let Some(full) = buf.push(i + 1) {
                    q2.publish(full);
                }
            }
            buf.push(SATB_BUFFER_CAPACITY + 1);
            buf
        });
        let pool = WorkerPool::new(1, false).unwrap();
        let job = std::sync::Arc::new(Drain {
            queue: queue.clone(),
            seen: Mutex::new(Vec::new()),
        });
        pool.run(job.clone(), [vec![0usize]]);
        // Final mark: the mutator is stopped; flush its buffer and drain what is left.
        let mut rest = mutator.join().unwrap();
        queue.publish(rest.take());
        let mut seen = job.seen.lock().unwrap().clone();
        for b in queue.take_all() {
            seen.extend(b);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..=SATB_BUFFER_CAPACITY + 1).collect::<Vec<_>>());
        assert_eq!(queue.pending_entries(), 0);
        drop(pool);
    });
}
