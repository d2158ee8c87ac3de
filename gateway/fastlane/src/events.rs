//! The event writer: one NDJSON line on stdout per request the fast lane served itself
//! (gateway/fast_lane.py turns each into the audit record the pipeline would have written).
//!
//! Requests hand their event to a bounded channel and never wait; a dedicated thread writes
//! the lines, buffered: each batch is what arrived in the 200 ms after its first event (written
//! in 32 KiB pieces), and at shutdown what is left. An event that cannot be handed over
//! (channel full, output gone) is refused, and the request is then answered by the gateway
//! instead (its own audit).
//!
//! Each batch wakes this thread and the gateway once. A wake-up from sleep is not free: on the
//! 2-core virtual machine the benchmarks ran on it cost a process 40-50 µs of CPU, and at 650
//! events/s the gateway spent ~25 µs more per record with 10 ms batches than with 50 ms ones,
//! and ~10 µs more with 50 ms batches than with 200 ms ones
//! (docs/measurements/2026-12-04-lane-records.md). A record reaches the gateway at most
//! ~200 ms after its request was answered.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

const FLUSH_BYTES: usize = 32 * 1024;
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// Events waiting for the writer at most (beyond: the gateway answers).
const QUEUE: usize = 65_536;

#[derive(Debug, Serialize)]
pub struct Event {
    /// Unix seconds when the answer was handed to the connection.
    pub ts: f64,
    pub request_id: String,
    pub method: &'static str,
    pub path: String,
    pub query: String,
    pub grant: String,
    pub interaction: &'static str,
    pub resource_type: String,
    pub status: u16,
    pub result_count: usize,
    pub patients: Vec<String>,
    pub latency_ms: f64,
}

enum Message {
    Event(Box<Event>),
    Stop,
}

/// The request side of the writer.
#[derive(Clone)]
pub struct Events {
    tx: SyncSender<Message>,
    broken: Arc<AtomicBool>,
}

impl Events {
    /// Start the writer thread on `out` (stdout, or a buffer in tests).
    pub fn start(out: Box<dyn Write + Send>) -> (Events, JoinHandle<()>) {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let thread = std::thread::Builder::new()
            .name("fastlane-events".into())
            .spawn(move || write_events(rx, out, &flag))
            .expect("the event writer thread starts");
        (Events { tx, broken }, thread)
    }

    /// Hand an event to the writer; false if it cannot take it (do not serve, then).
    pub fn send(&self, event: Event) -> bool {
        if self.broken.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(Message::Event(Box::new(event))) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Ask the writer to flush what it holds and end (events sent later are not written).
    pub fn stop(&self) {
        self.broken.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Message::Stop);
    }
}

fn write_events(rx: Receiver<Message>, out: Box<dyn Write + Send>, broken: &AtomicBool) {
    let mut writer = Writer {
        out,
        buf: Vec::with_capacity(2 * FLUSH_BYTES),
        failed: false,
    };
    // wait for the first event of a batch (a stop, or every sender gone: the end)
    while let Ok(Message::Event(event)) = rx.recv() {
        writer.add(&event);
        // then let the batch gather for FLUSH_AFTER, asleep, and take it whole: a sender only
        // wakes this thread (a system call on the request path) for a batch's first event, and
        // this thread wakes once per batch, not once per event
        std::thread::sleep(FLUSH_AFTER);
        let stop = loop {
            match rx.try_recv() {
                Ok(Message::Event(event)) => writer.add(&event),
                Ok(Message::Stop) | Err(TryRecvError::Disconnected) => break true,
                Err(TryRecvError::Empty) => break false,
            }
            if writer.buf.len() >= FLUSH_BYTES {
                writer.flush();
            }
        };
        writer.flush();
        if writer.failed {
            broken.store(true, Ordering::Relaxed);
        }
        if stop {
            return;
        }
    }
    writer.flush();
}

struct Writer {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    /// The output failed (stdout closed by its reader): nothing more is written.
    failed: bool,
}

impl Writer {
    fn add(&mut self, event: &Event) {
        if self.failed {
            return;
        }
        if serde_json::to_writer(&mut self.buf, event).is_ok() {
            self.buf.push(b'\n');
        }
    }

    fn flush(&mut self) {
        if self.failed || self.buf.is_empty() {
            self.buf.clear();
            return;
        }
        if let Err(e) = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
        {
            eprintln!("fastlane: cannot write events ({e}); no more requests are served here");
            self.failed = true;
        }
        self.buf.clear();
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An output the tests read back.
    #[derive(Clone, Default)]
    pub struct Sink(pub Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    pub fn event(path: &str) -> Event {
        Event {
            ts: 1.5,
            request_id: "r".into(),
            method: "GET",
            path: path.into(),
            query: String::new(),
            grant: "g".into(),
            interaction: "read",
            resource_type: "Observation".into(),
            status: 200,
            result_count: 1,
            patients: vec!["a".into()],
            latency_ms: 0.25,
        }
    }

    #[test]
    fn writes_lines_and_flushes() {
        let sink = Sink::default();
        let (events, thread) = Events::start(Box::new(sink.clone()));
        assert!(events.send(event("/fhir/Observation/o1")));
        std::thread::sleep(FLUSH_AFTER * 2); // flushed FLUSH_AFTER after the event
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\"ts\":1.5,\"request_id\":\"r\",\"method\":\"GET\",\"path\":\"/fhir/Observation/o1\",\
             \"query\":\"\",\"grant\":\"g\",\"interaction\":\"read\",\"resource_type\":\"Observation\",\
             \"status\":200,\"result_count\":1,\"patients\":[\"a\"],\"latency_ms\":0.25}\n"
        );
        assert!(events.send(event("/2")));
        events.stop();
        thread.join().unwrap();
        assert_eq!(
            sink.0
                .lock()
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            2
        );
        assert!(!events.send(event("/3")));
    }

    #[test]
    fn a_closed_output_refuses_events() {
        let (events, thread) = Events::start(Box::new(Closed));
        assert!(events.send(event("/1")));
        std::thread::sleep(FLUSH_AFTER * 2);
        assert!(!events.send(event("/2")));
        events.stop();
        thread.join().unwrap();
    }
}
