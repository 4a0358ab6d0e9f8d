//! A one-item hand-over between two threads. In `NewestWins` mode a new item replaces one not yet taken (the
//! stale frame is dropped and counted), so a slow consumer sees the latest frame and latency stays bounded; in
//! `Lossless` mode the producer waits instead, for offline processing where every frame must come out.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotMode {
    NewestWins,
    Lossless,
}

pub struct Slot<T> {
    mode: SlotMode,
    state: Mutex<State<T>>,
    changed: Condvar,
}

struct State<T> {
    item: Option<T>,
    closed: bool,
    dropped: u64,
}

pub enum Taken<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Empty,
    /// The slot is closed and drained.
    Closed,
}

impl<T> Slot<T> {
    pub fn new(mode: SlotMode) -> Self {
        Slot { mode, state: Mutex::new(State { item: None, closed: false, dropped: 0 }), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panicking thread cannot leave the state half-updated (every update is one assignment).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `item` over; false if the slot is closed (the consumer is gone).
    pub fn put(&self, item: T) -> bool {
        let mut s = self.lock();
        if self.mode == SlotMode::Lossless {
            while s.item.is_some() && !s.closed {
                s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
        if s.closed {
            return false;
        }
        if s.item.replace(item).is_some() {
            s.dropped += 1;
        }
        self.changed.notify_all();
        true
    }

    /// Takes the item, waiting up to `timeout` (forever if `None`).
    pub fn take(&self, timeout: Option<Duration>) -> Taken<T> {
        let mut s = self.lock();
        loop {
            if let Some(item) = s.item.take() {
                self.changed.notify_all();
                return Taken::Item(item);
            }
            if s.closed {
                return Taken::Closed;
            }
            match timeout {
                None => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(t) => {
                    let (guard, result) = self.changed.wait_timeout(s, t).unwrap_or_else(|e| e.into_inner());
                    s = guard;
                    if result.timed_out() && s.item.is_none() {
                        return if s.closed { Taken::Closed } else { Taken::Empty };
                    }
                }
            }
        }
    }

    /// No more items: `put` fails from now on, `take` drains what is there, then reports `Closed`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Items replaced before anyone took them.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn newest_wins_drops_stale_items() {
        let s = Slot::new(SlotMode::NewestWins);
        for i in 0..5 {
            assert!(s.put(i));
        }
        assert!(matches!(s.take(None), Taken::Item(4)));
        assert_eq!(s.dropped(), 4);
        assert!(matches!(s.take(Some(Duration::from_millis(5))), Taken::Empty));
        s.put(7);
        s.close();
        assert!(!s.put(8));
        assert!(matches!(s.take(None), Taken::Item(7)));
        assert!(matches!(s.take(None), Taken::Closed));
    }

    #[test]
    fn lossless_waits_for_the_consumer() {
        let s = Arc::new(Slot::new(SlotMode::Lossless));
        let producer = {
            let s = s.clone();
            std::thread::spawn(move || (0..100).all(|i| s.put(i)))
        };
        let mut got = Vec::new();
        while got.len() < 100 {
            if let Taken::Item(i) = s.take(Some(Duration::from_secs(5))) {
                got.push(i);
            }
        }
        assert!(producer.join().unwrap());
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(s.dropped(), 0);
        // Closing releases a producer blocked on a full slot.
        s.put(1);
        let blocked = {
            let s = s.clone();
            std::thread::spawn(move || s.put(2))
        };
        std::thread::sleep(Duration::from_millis(20));
        s.close();
        assert!(!blocked.join().unwrap());
    }
}
