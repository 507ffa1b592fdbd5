//! Whether the service is draining for a stop, and how many requests it is
//! answering: what a graceful stop waits for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the service is draining, and how many requests are in flight.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
}

/// One request in flight, counted until dropped.
pub(super) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub(super) fn start(lifecycle: &Lifecycle) -> Self {
        lifecycle.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(lifecycle.in_flight.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lifecycle {
    /// Refuse new requests from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Requests being answered now (refused ones are not counted).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Wait until no request is in flight, or `grace` has passed; true when
    /// all finished.
    pub async fn drained(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        while self.in_flight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}
