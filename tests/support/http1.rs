//! A minimal HTTP/1.1 server on std threads, for the test-only token issuer
//! and the fault-injecting proxy. It reads a request head (and a body with
//! `Content-Length`), hands it to a handler, and writes what the handler
//! says: a response, a response whose body trickles, or a dropped
//! connection. Connections are kept alive as clients expect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/v2/demo/app/tags/list?n=100`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The decoded value of a query parameter.
    pub fn query(&self, key: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// A response to write. `Content-Length` is added from the body unless the
/// headers already carry one (a HEAD response forwards the GET length).
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status)
            .header("Content-Type", "application/json")
            .body(value.to_string().into_bytes())
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

/// What the server does with a request.
pub enum Reply {
    Send(Response),
    /// Writes the head at once, then the body in `chunks` pieces with
    /// `pause` before each.
    Trickle {
        response: Response,
        chunks: usize,
        pause: Duration,
    },
    /// Closes the connection without answering.
    Drop,
    /// Writes the head and the first `bytes` of the body, then closes.
    Truncate {
        response: Response,
        bytes: usize,
    },
}

pub type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A server on an ephemeral loopback port; stops accepting when dropped.
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let stopping = stopping.clone();
                std::thread::spawn(move || serve_connection(stream, &*handler, &stopping));
            }
        });
        Server { port, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, stop: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let close = request
            .header("Connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let head_only = request.method == "HEAD";
        let ok = match handler(&request) {
            Reply::Send(response) => write_response(&mut writer, &response, head_only).is_ok(),
            Reply::Trickle {
                response,
                chunks,
                pause,
            } => trickle(&mut writer, &response, chunks, pause).is_ok(),
            Reply::Drop => false,
            Reply::Truncate { response, bytes } => {
                let _ = write_head(&mut writer, &response);
                let _ = writer.write_all(&response.body[..bytes.min(response.body.len())]);
                let _ = writer.flush();
                false
            }
        };
        if !ok || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_head(writer: &mut TcpStream, response: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    let has_length = response
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Content-Length"));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())
}

fn write_response(
    writer: &mut TcpStream,
    response: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    write_head(writer, response)?;
    if !head_only {
        writer.write_all(&response.body)?;
    }
    writer.flush()
}

fn trickle(
    writer: &mut TcpStream,
    response: &Response,
    chunks: usize,
    pause: Duration,
) -> std::io::Result<()> {
    write_head(writer, response)?;
    writer.flush()?;
    let size = response.body.len().div_ceil(chunks.max(1)).max(1);
    for piece in response.body.chunks(size) {
        std::thread::sleep(pause);
        writer.write_all(piece)?;
        writer.flush()?;
    }
    Ok(())
}
