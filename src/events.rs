//! Event publisher to containerd: an ordered queue drained by one thread over
//! ttrpc `containerd.services.events.ttrpc.v1.Events/Forward`, retried while
//! containerd is away. Publishing never blocks the caller and never panics.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::Response;

use crate::wire;

const SERVICE: &str = "containerd.services.events.ttrpc.v1.Events";
/// Queue bound: beyond it the oldest events are dropped (and logged).
const MAX_QUEUE: usize = 4096;

/// Converts a wall-clock time to a protobuf timestamp.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

/// An event message and its protobuf type name. A fixed name, not
/// `descriptor()`: building reflection tables would cost the shim hundreds
/// of kB of heap for the rest of its life.
pub trait Event: Message {
    const TYPE_NAME: &'static str;
}

macro_rules! events {
    ($($t:ident),*) => {
        $(impl Event for containerd_shim_protos::events::task::$t {
            const TYPE_NAME: &'static str = concat!("containerd.events.", stringify!($t));
        })*
    };
}

events!(
    TaskCreate,
    TaskStart,
    TaskExit,
    TaskDelete,
    TaskExecAdded,
    TaskExecStarted,
    TaskPaused,
    TaskResumed,
    TaskOOM,
    TaskCheckpointed
);

/// containerd's own container-update message, which every containerd
/// client decodes (`ctr events` prints it): the shim sends its hardening
/// report as one, under [`HARDENING_TOPIC`].
impl Event for containerd_shim_protos::events::container::ContainerUpdate {
    const TYPE_NAME: &'static str = "containerd.events.ContainerUpdate";
}

/// The topic of the hardening report published at Create.
pub const HARDENING_TOPIC: &str = "/nucleus/hardening";

/// Packs an event into an Any with containerd's type URL (the full name).
pub fn pack<M: Event>(m: &M) -> Any {
    Any {
        type_url: M::TYPE_NAME.to_string(),
        value: m.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Envelope>,
    /// The drain thread holds an item it has not delivered yet.
    in_flight: bool,
    closed: bool,
}

/// Sends events to containerd in the order they were published.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<(Mutex<Queue>, Condvar)>,
    namespace: String,
}

impl Publisher {
    /// Starts the drain thread for `ttrpc_address` (a socket path, with or
    /// without `unix://`). An empty address makes a publisher that drops events.
    pub fn start(ttrpc_address: &str, namespace: &str) -> std::io::Result<Self> {
        let p = Publisher {
            inner: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            namespace: namespace.to_string(),
        };
        let address = ttrpc_address
            .strip_prefix("unix://")
            .unwrap_or(ttrpc_address)
            .to_string();
        let inner = p.inner.clone();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(64 * 1024)
            .spawn(move || drain(inner, address))?;
        Ok(p)
    }

    /// Queues `event` under `topic`, stamped now.
    pub fn publish<M: Event>(&self, topic: &str, event: &M) {
        let mut env = Envelope::new();
        env.timestamp = Some(timestamp(SystemTime::now())).into();
        env.namespace = self.namespace.clone();
        env.topic = topic.to_string();
        env.event = Some(pack(event)).into();
        log::debug!("publish {topic}");
        let (lock, cv) = &*self.inner;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        if q.items.len() >= MAX_QUEUE {
            if let Some(old) = q.items.pop_front() {
                log::error!("event queue full: dropping {}", old.topic);
            }
        }
        q.items.push_back(env);
        cv.notify_all();
    }

    /// Waits until every queued event was delivered, or `timeout` passed.
    /// Returns whether the queue is empty.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.inner;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !q.items.is_empty() || q.in_flight {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = cv
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Stops the drain thread after what is queued (used at exit).
    pub fn close(&self) {
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        cv.notify_all();
    }
}

struct Client {
    stream: UnixStream,
    next_id: u32,
}

impl Client {
    fn connect(address: &str) -> std::io::Result<Self> {
        let stream = UnixStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client { stream, next_id: 1 })
    }

    /// Sends one envelope; `Ok(Err(msg))` when containerd answered with an error.
    fn forward(&mut self, env: &Envelope) -> std::io::Result<Result<(), String>> {
        let mut req = ForwardRequest::new();
        req.envelope = Some(env.clone()).into();
        let payload = req.write_to_bytes().map_err(std::io::Error::other)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(2);
        let f = wire::request_frame(id, SERVICE, "Forward", payload, 10_000_000_000);
        std::io::Write::write_all(&mut self.stream, &f)?;
        loop {
            let (h, body) = wire::read_frame(&mut self.stream)?;
            if h.stream_id != id || h.kind != wire::TYPE_RESPONSE {
                continue;
            }
            let resp = wire::decode_message::<Response>(&body).map_err(std::io::Error::other)?;
            return Ok(match resp.status.as_ref() {
                Some(s) if s.code.value() != 0 => Err(s.message.clone()),
                _ => Ok(()),
            });
        }
    }
}

fn drain(inner: Arc<(Mutex<Queue>, Condvar)>, address: String) {
    let (lock, cv) = &*inner;
    let mut client: Option<Client> = None;
    let mut backoff = Duration::from_millis(20);
    // Failed attempts for the event at the head of the queue.
    let mut failures = 0u32;
    // Events queued behind it while containerd was away, still to go.
    let mut backlog = 0usize;
    loop {
        let env = {
            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
            while q.items.is_empty() && !q.closed {
                q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            let Some(e) = q.items.front().cloned() else {
                return;
            };
            q.in_flight = true;
            e
        };
        let delivered = if address.is_empty() {
            true
        } else {
            if client.is_none() {
                client = Client::connect(&address).ok();
            }
            match client.as_mut().map(|c| c.forward(&env)) {
                Some(Ok(Ok(()))) => true,
                Some(Ok(Err(msg))) => {
                    log::warn!("containerd refused event {}: {msg}", env.topic);
                    true
                }
                Some(Err(e)) => {
                    log::warn!("publishing {} to {address}: {e}; retrying", env.topic);
                    client = None;
                    false
                }
                None => false,
            }
        };
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        if delivered && failures > 0 {
            log::info!(
                "delivered {} after {} attempts (containerd was away)",
                env.topic,
                failures + 1
            );
            backlog = q.items.len().saturating_sub(1);
        } else if delivered && backlog > 0 {
            log::info!("delivered {}, queued while containerd was away", env.topic);
            backlog -= 1;
        }
        failures = if delivered { 0 } else { failures + 1 };
        if delivered {
            q.items.pop_front();
            backoff = Duration::from_millis(20);
        }
        q.in_flight = false;
        cv.notify_all();
        if !delivered {
            if q.closed {
                log::error!("dropping {} undelivered events at exit", q.items.len());
                return;
            }
            drop(q);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::events::task::TaskStart;
    use containerd_shim_protos::ttrpc::Request;
    use std::os::unix::net::UnixListener;

    /// A minimal Events server that records topics in order, answering OK.
    fn serve(listener: UnixListener, n: usize) -> std::thread::JoinHandle<Vec<String>> {
        std::thread::spawn(move || {
            let mut topics = Vec::new();
            let (mut s, _) = listener.accept().unwrap();
            while topics.len() < n {
                let (h, body) = wire::read_frame(&mut s).unwrap();
                let req = Request::parse_from_bytes(&body).unwrap();
                assert_eq!(req.service, SERVICE);
                let fwd = ForwardRequest::parse_from_bytes(&req.payload).unwrap();
                topics.push(fwd.envelope.topic.clone());
                assert_eq!(fwd.envelope.event.type_url, "containerd.events.TaskStart");
                let f = wire::response_frame(h.stream_id, Ok(vec![]));
                std::io::Write::write_all(&mut s, &f).unwrap();
            }
            topics
        })
    }

    #[test]
    fn type_names_match_the_protobuf_full_names() {
        use containerd_shim_protos::events::task::{TaskCreate, TaskExit, TaskOOM};
        use containerd_shim_protos::protobuf::MessageFull;
        assert_eq!(TaskCreate::TYPE_NAME, TaskCreate::descriptor().full_name());
        assert_eq!(TaskExit::TYPE_NAME, TaskExit::descriptor().full_name());
        assert_eq!(TaskOOM::TYPE_NAME, TaskOOM::descriptor().full_name());
    }

    #[test]
    fn events_are_delivered_in_order_after_containerd_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("ttrpc.sock");
        let p = Publisher::start(sock.to_str().unwrap(), "ns").unwrap();
        // containerd is not there yet: events queue up.
        for i in 0..3 {
            let mut e = TaskStart::new();
            e.pid = i;
            p.publish(&format!("/tasks/start/{i}"), &e);
        }
        assert!(!p.flush(Duration::from_millis(100)));
        let server = serve(UnixListener::bind(&sock).unwrap(), 3);
        assert!(p.flush(Duration::from_secs(10)));
        assert_eq!(
            server.join().unwrap(),
            vec!["/tasks/start/0", "/tasks/start/1", "/tasks/start/2"]
        );
    }
}
