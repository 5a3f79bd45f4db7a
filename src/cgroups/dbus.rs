//! A minimal D-Bus client: enough to call methods on systemd (`StartTransientUnit`, `StopUnit`).
//!
//! It speaks the wire protocol directly over a unix socket: `EXTERNAL` authentication, then
//! little-endian method calls, waiting for the reply whose `REPLY_SERIAL` matches (signals and
//! other messages are skipped).  Only the types systemd's calls need are marshalled
//! (`y b u t s o g v a( )`).  Every fd is O_CLOEXEC (std's `UnixStream`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::{Context, Error, Result};

/// A value to marshal.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    U32(u32),
    U64(u64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// A variant holding one value.
    Variant(Box<Value>),
    /// An array of values of the element signature given.
    Array(String, Vec<Value>),
    /// A struct.
    Struct(Vec<Value>),
}

impl Value {
    /// The D-Bus signature of this value.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Variant(_) => "v".into(),
            Value::Array(el, _) => format!("a{el}"),
            Value::Struct(v) => format!("({})", v.iter().map(Value::signature).collect::<String>()),
        }
    }
}

/// Alignment of the first type in `sig`.
fn sig_align(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'y') | Some(b'g') | Some(b'v') => 1,
        Some(b'b') | Some(b'u') | Some(b's') | Some(b'o') | Some(b'a') => 4,
        Some(b't') | Some(b'(') | Some(b'{') => 8,
        _ => 1,
    }
}

/// A marshalling buffer; alignment is relative to its start (messages and bodies both start
/// 8-aligned).
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// Marshal `v`.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U32(x) => self.u32(*x),
            Value::U64(x) => {
                self.align(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) | Value::ObjectPath(s) => self.string(s),
            Value::Signature(s) => self.sig(s),
            Value::Variant(inner) => {
                self.sig(&inner.signature());
                self.value(inner);
            }
            Value::Array(el, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.align(sig_align(el));
                let start = self.buf.len();
                for it in items {
                    self.value(it);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.align(8);
                for f in fields {
                    self.value(f);
                }
            }
        }
    }
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// A method reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The reply body's signature.
    pub signature: String,
    /// The raw little- or big-endian body.
    pub body: Vec<u8>,
    /// Whether the body is big-endian.
    pub big_endian: bool,
}

impl Reply {
    /// The first argument when it is a string or object path.
    pub fn first_string(&self) -> Option<String> {
        if !matches!(self.signature.as_bytes().first(), Some(b's') | Some(b'o'))
            || self.body.len() < 4
        {
            return None;
        }
        let n = read_u32(&self.body[0..4], self.big_endian) as usize;
        self.body
            .get(4..4 + n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

fn read_u32(b: &[u8], be: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// A D-Bus error reply: `errno` EIO unless the caller maps the name.
#[derive(Debug, Clone)]
pub struct DbusError {
    /// e.g. `org.freedesktop.systemd1.UnitExists`.
    pub name: String,
    /// The error message.
    pub message: String,
}

/// A connection.
pub struct Conn {
    sock: UnixStream,
    serial: u32,
}

impl Conn {
    /// Connect to the socket at `path`, authenticate, and (for a bus) say Hello.
    pub fn connect(path: &Path, bus: bool) -> Result<Conn> {
        let sock = UnixStream::connect(path)
            .with_context(|| format!("connect to D-Bus socket `{}`", path.display()))?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .context("set D-Bus socket timeout")?;
        let mut c = Conn { sock, serial: 0 };
        c.auth()?;
        if bus {
            c.call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )?
            .map_err(|e| {
                Error::new(libc::EIO, format!("D-Bus Hello: {}: {}", e.name, e.message))
            })?;
        }
        Ok(c)
    }

    fn auth(&mut self) -> Result<()> {
        // SAFETY: trivial libc call.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .context("D-Bus: send AUTH")?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            crate::bail!(
                libc::EACCES,
                "D-Bus authentication rejected: `{}`",
                line.trim()
            );
        }
        self.sock
            .write_all(b"BEGIN\r\n")
            .context("D-Bus: send BEGIN")
    }

    fn read_line(&mut self) -> Result<String> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\r\n") {
            let n = self.sock.read(&mut b).context("D-Bus: read auth reply")?;
            if n == 0 {
                crate::bail!(
                    libc::ECONNRESET,
                    "D-Bus: connection closed during authentication"
                );
            }
            out.push(b[0]);
            if out.len() > 4096 {
                crate::bail!(libc::EPROTO, "D-Bus: auth line too long");
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Call `member` and wait for its reply: `Ok(Ok(reply))`, or `Ok(Err(error reply))`.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<std::result::Result<Reply, DbusError>> {
        self.serial += 1;
        let serial = self.serial;
        let mut body = Writer::default();
        for a in args {
            body.value(a);
        }
        let sig: String = args.iter().map(Value::signature).collect();
        let field = |code: u8, v: Value| {
            Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))])
        };
        let mut fields = vec![
            field(1, Value::ObjectPath(path.into())),
            field(2, Value::Str(iface.into())),
            field(3, Value::Str(member.into())),
            field(6, Value::Str(dest.into())),
        ];
        if !sig.is_empty() {
            fields.push(field(8, Value::Signature(sig)));
        }
        let mut m = Writer::default();
        m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
        m.u32(body.buf.len() as u32);
        m.u32(serial);
        m.value(&Value::Array("(yv)".into(), fields));
        m.align(8);
        m.buf.extend_from_slice(&body.buf);
        self.sock
            .write_all(&m.buf)
            .with_context(|| format!("D-Bus: send `{member}`"))?;
        loop {
            let (typ, reply_serial, err_name, reply) = self.read_message()?;
            if reply_serial != Some(serial) {
                continue;
            }
            match typ {
                METHOD_RETURN => return Ok(Ok(reply)),
                ERROR => {
                    return Ok(Err(DbusError {
                        name: err_name.unwrap_or_default(),
                        message: reply.first_string().unwrap_or_default(),
                    }))
                }
                _ => continue,
            }
        }
    }

    fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.sock
            .read_exact(&mut v)
            .context("D-Bus: read message")?;
        Ok(v)
    }

    /// Read one message: (type, REPLY_SERIAL, ERROR_NAME, body).
    fn read_message(&mut self) -> Result<(u8, Option<u32>, Option<String>, Reply)> {
        let fixed = self.read_exact(16)?;
        let be = match fixed[0] {
            b'l' => false,
            b'B' => true,
            x => crate::bail!(libc::EPROTO, "D-Bus: bad endianness byte {x:#x}"),
        };
        let typ = fixed[1];
        let body_len = read_u32(&fixed[4..8], be) as usize;
        let fields_len = read_u32(&fixed[12..16], be) as usize;
        if body_len > 128 << 20 || fields_len > 64 << 10 {
            crate::bail!(libc::EPROTO, "D-Bus: message too large");
        }
        let pad = (8 - (16 + fields_len) % 8) % 8;
        let fields = self.read_exact(fields_len + pad)?;
        let body = self.read_exact(body_len)?;
        // Header fields: array of (yv), each struct 8-aligned relative to the message start
        // (offset 16 here, so aligned the same relative to `fields`).
        let get = |from: usize, len: usize| -> Result<&[u8]> {
            fields
                .get(from..from.saturating_add(len))
                .filter(|_| from.saturating_add(len) <= fields_len)
                .ok_or_else(|| Error::new(libc::EPROTO, "D-Bus: truncated header field"))
        };
        let mut i = 0;
        let mut reply_serial = None;
        let mut err_name = None;
        let mut signature = String::new();
        while i < fields_len {
            i = (i + 7) & !7;
            if i >= fields_len {
                break;
            }
            let head = get(i, 2)?;
            let (code, slen) = (head[0], head[1] as usize);
            let vsig = String::from_utf8_lossy(get(i + 2, slen)?).into_owned();
            i += 3 + slen;
            match vsig.as_str() {
                "u" => {
                    i = (i + 3) & !3;
                    let v = read_u32(get(i, 4)?, be);
                    i += 4;
                    if code == 5 {
                        reply_serial = Some(v);
                    }
                }
                "s" | "o" => {
                    i = (i + 3) & !3;
                    let n = read_u32(get(i, 4)?, be) as usize;
                    let s = String::from_utf8_lossy(get(i + 4, n)?).into_owned();
                    i += 4 + n + 1;
                    if code == 4 {
                        err_name = Some(s);
                    }
                }
                "g" => {
                    let n = get(i, 1)?[0] as usize;
                    let s = String::from_utf8_lossy(get(i + 1, n)?).into_owned();
                    i += 1 + n + 1;
                    if code == 8 {
                        signature = s;
                    }
                }
                "h" => {
                    i = (i + 3) & !3;
                    i += 4;
                }
                other => crate::bail!(
                    libc::EPROTO,
                    "D-Bus: unexpected header field type `{other}`"
                ),
            }
        }
        Ok((
            typ,
            reply_serial,
            err_name,
            Reply {
                signature,
                body,
                big_endian: be,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshal_basic() {
        let mut w = Writer::default();
        w.value(&Value::Byte(1));
        w.value(&Value::Str("ab".into()));
        assert_eq!(w.buf, vec![1, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 0]);
        let mut w = Writer::default();
        // a(sv) with one entry: length excludes the padding before the first struct.
        w.value(&Value::Array(
            "(sv)".into(),
            vec![Value::Struct(vec![
                Value::Str("P".into()),
                Value::Variant(Box::new(Value::Bool(true))),
            ])],
        ));
        assert_eq!(
            w.buf,
            vec![
                16, 0, 0, 0, 0, 0, 0, 0, // len, pad to 8
                1, 0, 0, 0, b'P', 0, // "P"
                1, b'b', 0, // signature "b"
                0, 0, 0, // pad to 4
                1, 0, 0, 0 // true
            ]
        );
        assert_eq!(Value::Array("(sv)".into(), vec![]).signature(), "a(sv)");
    }
}
