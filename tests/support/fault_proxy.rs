//! THIS IS A FAKE. A test-only HTTP proxy in front of a real registry that
//! misbehaves on purpose, because the real `docker-registry` 2.8.2 cannot:
//! it never rate-limits, never fails, and ignores `n` on `tags/list`.
//!
//! - Faults, queued per path substring and consumed one per matching
//!   request: an HTTP status (429 with `Retry-After`, 500, 503), a dropped
//!   connection, a truncated body, a body that trickles in slowly, a
//!   delay, a redirect elsewhere, a body of the test's choosing (malformed
//!   JSON, an HTML error page, tags no real registry accepts), a header
//!   rewritten on a forwarded answer (a wrong `Content-Type`, a forged
//!   `Docker-Content-Digest`), a request held until the test has acted.
//! - Paging of `tags/list` the way Quay and friends do it: at most `cap`
//!   tags per page, `n` honoured or ignored, `last` honoured, and a
//!   `Link: <...>; rel="next"` header while more remain. The proxy fetches
//!   the whole list from the registry behind it and slices it.
//! - Every request it sees is recorded (with the fault it got), so tests
//!   assert exact counts.
//!
//! Everything else is forwarded unchanged (headers, `Authorization`,
//! status, body). Never use it as evidence of how a real registry behaves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http1::{Reply, Request, Response, Server};

/// Something the proxy does instead of forwarding one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` when given).
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Close the connection without answering.
    Drop,
    /// Forward, but send only the first 10 bytes of the body and close.
    Truncate,
    /// Forward, trickling the body in 10 pieces over `total`.
    Slow { total: Duration },
    /// Forward after holding the request for this long (to observe concurrency).
    Delay(Duration),
    /// Answer `307 Temporary Redirect` to this absolute URL.
    Redirect(String),
    /// Answer with this status, content type and body instead of forwarding.
    Body {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// Forward, but replace (or add) one header of the answer.
    SetHeader { name: String, value: String },
    /// Raise `arrived` when the request comes in, then forward it once the
    /// test lowers it again: the test acts at that exact point (e.g. moves
    /// a tag in the real registry while crowsnest waits for an answer).
    Hold { arrived: Signal },
}

/// A flag the proxy and a test share (see [`Fault::Hold`]).
#[derive(Clone, Debug, Default)]
pub struct Signal(Arc<std::sync::atomic::AtomicBool>);

impl Signal {
    /// Waits until the proxy raised the flag (a held request arrived).
    pub fn wait_raised(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while !self.0.load(Ordering::SeqCst) {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Lets the held request go on.
    pub fn release(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl PartialEq for Signal {
    fn eq(&self, other: &Signal) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Signal {}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    /// A 200 with this body and content type.
    pub fn body(content_type: &str, body: impl Into<Vec<u8>>) -> Fault {
        Fault::Body {
            status: 200,
            content_type: content_type.to_owned(),
            body: body.into(),
        }
    }

    pub fn set_header(name: &str, value: &str) -> Fault {
        Fault::SetHeader {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    pub fn too_many(retry_after: &str) -> Fault {
        Fault::Status {
            status: 429,
            retry_after: Some(retry_after.to_owned()),
        }
    }
}

/// How `tags/list` is paged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paging {
    /// At most this many tags per page; `None` forwards as is.
    pub cap: Option<usize>,
    /// Whether a smaller `n` from the client is honoured.
    pub honour_n: bool,
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub authorization: Option<String>,
    pub fault: Option<Fault>,
    /// Status returned (0 when the connection was dropped).
    pub status: u16,
    pub at: Instant,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

struct State {
    upstream: String,
    paging: Paging,
    faults: Mutex<Vec<(String, VecDeque<Fault>)>>,
    seen: Mutex<Vec<Seen>>,
    client: reqwest::blocking::Client,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub struct FaultProxy {
    server: Server,
    state: Arc<State>,
}

impl FaultProxy {
    /// Proxies `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, paging: Paging) -> FaultProxy {
        let upstream = upstream.to_owned();
        // The blocking client is built on a plain thread so an async test
        // may start the proxy.
        let client = std::thread::spawn(|| {
            reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("build the proxy's client")
        })
        .join()
        .expect("build the proxy's client");
        let state = Arc::new(State {
            upstream,
            paging,
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            client,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let handling = state.clone();
        let server = Server::start(Arc::new(move |request: &Request| {
            handle(&handling, request)
        }));
        FaultProxy { server, state }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    /// The next requests whose path contains `path_contains` get `faults`, in order.
    pub fn inject(&self, path_contains: &str, faults: &[Fault]) {
        self.state
            .faults
            .lock()
            .expect("faults")
            .push((path_contains.to_owned(), faults.iter().cloned().collect()));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }

    /// The most requests that were being handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Requests seen whose path contains `part`.
    pub fn seen_matching(&self, part: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path().contains(part))
            .collect()
    }
}

fn next_fault(state: &State, path: &str) -> Option<Fault> {
    let mut faults = state.faults.lock().expect("faults");
    faults
        .iter_mut()
        .find(|(part, queue)| path.contains(part.as_str()) && !queue.is_empty())
        .and_then(|(_, queue)| queue.pop_front())
}

fn handle(state: &State, request: &Request) -> Reply {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let reply = handle_counted(state, request);
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    reply
}

fn handle_counted(state: &State, request: &Request) -> Reply {
    let fault = next_fault(state, request.path());
    let record = |status: u16| {
        state.seen.lock().expect("seen").push(Seen {
            method: request.method.clone(),
            target: request.target.clone(),
            authorization: request.header("Authorization").map(str::to_owned),
            fault: fault.clone(),
            status,
            at: Instant::now(),
        });
    };
    match &fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            record(*status);
            let mut response = Response::json(
                *status,
                &serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "injected by the fault proxy"}]}),
            );
            if let Some(after) = retry_after {
                response = response.header("Retry-After", after);
            }
            return Reply::Send(response);
        }
        Some(Fault::Drop) => {
            record(0);
            return Reply::Drop;
        }
        Some(Fault::Redirect(location)) => {
            record(307);
            return Reply::Send(Response::new(307).header("Location", location));
        }
        Some(Fault::Body {
            status,
            content_type,
            body,
        }) => {
            record(*status);
            return Reply::Send(
                Response::new(*status)
                    .header("Content-Type", content_type)
                    .body(body.clone()),
            );
        }
        Some(Fault::Delay(pause)) => std::thread::sleep(*pause),
        Some(Fault::Hold { arrived }) => {
            arrived.0.store(true, Ordering::SeqCst);
            // Released by the test; never held longer than a minute.
            let until = Instant::now() + Duration::from_secs(60);
            while arrived.0.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        _ => {}
    }
    let response = if request.method == "GET"
        && request.path().ends_with("/tags/list")
        && state.paging.cap.is_some()
    {
        paged(state, request)
    } else {
        forward(state, request, request.target.as_str())
    };
    let response = match &fault {
        Some(Fault::SetHeader { name, value }) => {
            let mut response = response;
            response
                .headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            response.header(name, value)
        }
        _ => response,
    };
    record(response.status);
    match fault {
        Some(Fault::Truncate) => Reply::Truncate {
            response,
            bytes: 10,
        },
        Some(Fault::Slow { total }) => Reply::Trickle {
            response,
            chunks: 10,
            pause: total / 10,
        },
        _ => Reply::Send(response),
    }
}

fn forward(state: &State, request: &Request, target: &str) -> Response {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("an HTTP method");
    let mut outgoing = state
        .client
        .request(method, format!("{}{target}", state.upstream));
    for (name, value) in &request.headers {
        if !["host", "connection", "content-length"].contains(&name.to_ascii_lowercase().as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    if !request.body.is_empty() {
        outgoing = outgoing.body(request.body.clone());
    }
    let Ok(upstream) = outgoing.send() else {
        return Response::new(502);
    };
    let status = upstream.status().as_u16();
    let mut response = Response::new(status);
    for (name, value) in upstream.headers() {
        let lower = name.as_str();
        if ["connection", "transfer-encoding", "keep-alive"].contains(&lower) {
            continue;
        }
        if lower == "content-length" && request.method != "HEAD" {
            continue;
        }
        if let Ok(value) = value.to_str() {
            response = response.header(name.as_str(), value);
        }
    }
    response.body(upstream.bytes().map(|b| b.to_vec()).unwrap_or_default())
}

fn paged(state: &State, request: &Request) -> Response {
    let path = request.path().to_owned();
    let full = forward(state, request, &path);
    if full.status != 200 {
        return full;
    }
    let Ok(listing) = serde_json::from_slice::<serde_json::Value>(&full.body) else {
        return Response::new(502);
    };
    let name = listing["name"].as_str().unwrap_or_default().to_owned();
    let tags: Vec<String> = listing["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let cap = state.paging.cap.expect("paging has a cap");
    let size = match request.query("n").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if state.paging.honour_n => n.clamp(1, cap),
        _ => cap,
    };
    let start = match request.query("last") {
        Some(last) => tags
            .iter()
            .position(|t| *t == last)
            .map_or(tags.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<&String> = tags.iter().skip(start).take(size).collect();
    let mut response = Response::json(200, &serde_json::json!({"name": name, "tags": page}));
    if start + page.len() < tags.len() {
        if let Some(last) = page.last() {
            let mut next = format!("{path}?last={}", url_escape(last));
            if state.paging.honour_n {
                next.push_str(&format!("&n={size}"));
            }
            response = response.header("Link", &format!("<{next}>; rel=\"next\""));
        }
    }
    response
}

fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
