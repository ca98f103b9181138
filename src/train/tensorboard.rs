//! TensorBoard event files: scalars a training run logs, in the files `tensorboard --logdir`
//! reads, and a reader for them.
//!
//! An event file (`events.out.tfevents.<unix seconds>.<host>`) is a sequence of TFRecords, each
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC-32C of those 8 bytes | length bytes | u32 masked CRC-32C of them
//! ```
//!
//! where the mask of a CRC-32C (Castagnoli) `c` is `((c >> 15) | (c << 17)) + 0xa282ead8`
//! (wrapping), both CRCs stored little-endian. Each record is an `Event` protobuf
//! (`tensorflow/core/util/event.proto`); this module writes and reads these fields of it:
//!
//! ```text
//! Event      { double wall_time = 1; int64 step = 2;
//!              oneof what { string file_version = 3; Summary summary = 5; SessionLog session_log = 7; } }
//! Summary    { repeated Value value = 1; }
//! Value      { string tag = 1; oneof value { float simple_value = 2; } }
//! SessionLog { SessionStatus status = 1; }          // START = 1
//! ```
//!
//! A file starts with an event holding `file_version: "brain.Event:2"`; every scalar is then an
//! event with one summary value. A run resumed from a checkpoint begins its new file with a
//! `SessionLog` START at the first step after the checkpoint's: TensorBoard's reader then drops the
//! events of the earlier files from that step on, so the curves are not drawn twice. (Its faster
//! loader ignores `SessionLog`, but drops a tag's points at and after any step that tag logs
//! again.) The reader skips the fields it does not know, as protobuf parsers do.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The `file_version` of the first event of every file: the version TensorBoard reads today.
pub const FILE_VERSION: &str = "brain.Event:2";

/// The prefix of every event file's name; TensorBoard reads the files whose names contain
/// `tfevents`.
pub const FILE_PREFIX: &str = "events.out.tfevents.";

/// One event: when, at which step, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    pub wall_time: f64,
    /// The training step it belongs to.
    pub step: i64,
    /// What the event holds.
    pub what: What,
}

/// What an [`Event`] holds (the `oneof what` of `Event`).
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// The format version, in the first event of a file ([`FILE_VERSION`]).
    FileVersion(String),
    /// A summary: its scalar values (`simple_value`), in order; values of other kinds (images,
    /// histograms, tensors) are left out by the reader and never written.
    Summary(Vec<Scalar>),
    /// A session log: a run (re)started, stopped or saved a checkpoint.
    SessionLog(SessionStatus),
    /// Something else this module does not read (a graph, run metadata, ...), or nothing.
    Other,
}

/// One scalar of a summary: its tag (`train/loss`) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The series it belongs to.
    pub tag: String,
    /// Its value (`simple_value`, a `float` in the protobuf).
    pub value: f32,
}

/// The status of a `SessionLog` (`SessionLog.SessionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// `STATUS_UNSPECIFIED` (0).
    Unspecified,
    /// `START` (1): a run (re)started at the event's step; TensorBoard drops earlier events at
    /// that step and later.
    Start,
    /// `STOP` (2).
    Stop,
    /// `CHECKPOINT` (3).
    Checkpoint,
    /// A value this enum does not name.
    Unknown(i32),
}

impl SessionStatus {
    /// The protobuf enum value.
    pub fn value(self) -> i32 {
        match self {
            SessionStatus::Unspecified => 0,
            SessionStatus::Start => 1,
            SessionStatus::Stop => 2,
            SessionStatus::Checkpoint => 3,
            SessionStatus::Unknown(v) => v,
        }
    }

    /// The status of a protobuf enum value.
    pub fn from_value(value: i32) -> Self {
        match value {
            0 => SessionStatus::Unspecified,
            1 => SessionStatus::Start,
            2 => SessionStatus::Stop,
            3 => SessionStatus::Checkpoint,
            v => SessionStatus::Unknown(v),
        }
    }
}

/// Why the bytes of an event file cannot be read. Offsets count bytes from the start of the file
/// to the start of the record at fault.
///
/// [`read_events`] returns it inside [`Error::Io`] (kind `InvalidData`) with the file's path;
/// [`EventFileError::of`] takes it back out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFileError {
    /// The file ends inside a record: it needs `needed` more bytes from `offset`, and has
    /// `available`.
    Truncated {
        /// Start of the record.
        offset: u64,
        /// Bytes the record needs from its start (header, data and CRC as far as known).
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// The masked CRC-32C stored after a record's length does not match the length.
    LengthCrc {
        /// Start of the record.
        offset: u64,
        /// The CRC in the file.
        stored: u32,
        /// The CRC of the length as read.
        computed: u32,
    },
    /// The masked CRC-32C stored after a record's data does not match the data.
    DataCrc {
        /// Start of the record.
        offset: u64,
        /// The CRC in the file.
        stored: u32,
        /// The CRC of the data as read.
        computed: u32,
    },
    /// A record's data is not a valid `Event` protobuf.
    Malformed {
        /// Start of the record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for EventFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventFileError::Truncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "the record at byte {offset} is truncated: it needs {needed} bytes, {available} remain"
            ),
            EventFileError::LengthCrc {
                offset,
                stored,
                computed,
            } => write!(
                f,
                "the record at byte {offset} has a bad length CRC: stored {stored:#010x}, computed {computed:#010x}"
            ),
            EventFileError::DataCrc {
                offset,
                stored,
                computed,
            } => write!(
                f,
                "the record at byte {offset} has a bad data CRC: stored {stored:#010x}, computed {computed:#010x}"
            ),
            EventFileError::Malformed { offset, reason } => {
                write!(f, "the record at byte {offset} is not an Event: {reason}")
            }
        }
    }
}

impl std::error::Error for EventFileError {}

impl EventFileError {
    /// The event file error inside `error`, when [`read_events`] returned one.
    pub fn of(error: &Error) -> Option<&EventFileError> {
        match error {
            Error::Io { source, .. } => source.get_ref()?.downcast_ref(),
            _ => None,
        }
    }

    fn into_error(self, path: &Path) -> Error {
        Error::io(path, io::Error::new(io::ErrorKind::InvalidData, self))
    }
}

/// Writes events to a new event file, one record at a time; each record reaches the file before
/// the call returns, so a crash loses nothing already logged.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// A new event file in `dir` (made if missing), named
    /// `events.out.tfevents.<unix seconds>.<host>` (with `.2`, `.3`, ... appended when that name
    /// is taken), starting with the [`FILE_VERSION`] event.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let now = wall_time();
        let base = format!("{FILE_PREFIX}{:010}.{}", now as u64, host_name());
        let mut n = 1u32;
        let (path, file) = loop {
            let path = match n {
                1 => dir.join(&base),
                n => dir.join(format!("{base}.{n}")),
            };
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(Error::io(path, e)),
            }
        };
        let mut writer = EventWriter { path, file };
        writer.write(&Event {
            wall_time: now,
            step: 0,
            what: What::FileVersion(FILE_VERSION.to_string()),
        })?;
        Ok(writer)
    }

    /// A new event file (as [`EventWriter::create`]) for a run resumed from a checkpoint taken
    /// at step `checkpoint_step`: after the file version it writes a `SessionLog` START at step
    /// `checkpoint_step + 1`, the first step the resumed run logs, so that TensorBoard drops the
    /// earlier files' events after the checkpoint (which the resumed run logs anew) and keeps
    /// those up to it.
    pub fn create_resumed(dir: impl AsRef<Path>, checkpoint_step: u64) -> Result<Self> {
        let mut writer = Self::create(dir)?;
        let step = proto_step(checkpoint_step.saturating_add(1))?;
        writer.write(&Event {
            wall_time: wall_time(),
            step,
            what: What::SessionLog(SessionStatus::Start),
        })?;
        Ok(writer)
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs `value` as the point of series `tag` at `step`, timed now. A step beyond `i64::MAX`
    /// (the protobuf's type) is an [`Error::Config`].
    pub fn scalar(&mut self, tag: &str, step: u64, value: f32) -> Result<()> {
        let step = proto_step(step)?;
        self.write(&Event {
            wall_time: wall_time(),
            step,
            what: What::Summary(vec![Scalar {
                tag: tag.to_string(),
                value,
            }]),
        })
    }

    /// Appends `event` as one record.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        let record = frame(&event.encode());
        self.file
            .write_all(&record)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Seconds since the Unix epoch (0 on a clock set before it).
fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The machine's name, reduced to characters safe in a file name, or the crate's name.
fn host_name() -> String {
    let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        env!("CARGO_PKG_NAME").to_string()
    } else {
        name
    }
}

fn proto_step(step: u64) -> Result<i64> {
    i64::try_from(step)
        .map_err(|_| Error::config("step", format!("{step} is beyond an event's int64 step")))
}

/// Reads every event of the event file at `path`, checking both CRCs of every record. A bad CRC,
/// a truncated record or a record that is not an `Event` is an [`Error::Io`] of kind
/// `InvalidData` holding an [`EventFileError`] ([`EventFileError::of`]).
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_events(&bytes).map_err(|e| e.into_error(path))
}

/// The events in the bytes of an event file (see [`read_events`]).
pub fn parse_events(bytes: &[u8]) -> Result<Vec<Event>, EventFileError> {
    let mut events = Vec::new();
    for (offset, data) in records_at(bytes)? {
        let event = decode_event(data).map_err(|reason| EventFileError::Malformed {
            offset: offset as u64,
            reason,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// The data of every record in the bytes of a TFRecord file, each checked against its CRCs.
pub fn records(bytes: &[u8]) -> Result<Vec<&[u8]>, EventFileError> {
    Ok(records_at(bytes)?.into_iter().map(|(_, r)| r).collect())
}

/// [`records`] with the offset of each record.
fn records_at(bytes: &[u8]) -> Result<Vec<(usize, &[u8])>, EventFileError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let truncated = |needed: u64| EventFileError::Truncated {
            offset: pos as u64,
            needed,
            available: rest.len() as u64,
        };
        let (Some(len_bytes), Some(len_crc)) = (le_u64(rest, 0), le_u32(rest, 8)) else {
            return Err(truncated(12));
        };
        let computed = masked_crc32c(&rest[..8]);
        if computed != len_crc {
            return Err(EventFileError::LengthCrc {
                offset: pos as u64,
                stored: len_crc,
                computed,
            });
        }
        // Checked before any slicing or allocation: a length near u64::MAX is merely truncated.
        let needed = len_bytes.saturating_add(16);
        let Some(end) = usize::try_from(needed).ok().filter(|&n| n <= rest.len()) else {
            return Err(truncated(needed));
        };
        let data = &rest[12..end - 4];
        let stored = le_u32(rest, end - 4).ok_or_else(|| truncated(needed))?;
        let computed = masked_crc32c(data);
        if computed != stored {
            return Err(EventFileError::DataCrc {
                offset: pos as u64,
                stored,
                computed,
            });
        }
        out.push((pos, data));
        pos += end;
    }
    Ok(out)
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `data` framed as one TFRecord: its length, the length's masked CRC, the data, its masked CRC.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// CRC-32C (Castagnoli, reflected polynomial `0x82F63B78`) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The CRC-32C of `bytes` masked as TFRecord stores it: rotated right by 15 bits, plus
/// `0xa282ead8`.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

impl Event {
    /// The `Event` protobuf of this event, as a protobuf library writes it: fields in number
    /// order, `wall_time` and `step` left out when zero (proto3 defaults), the `what` always
    /// written. [`What::Other`] writes no `what`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.wall_time.to_bits() != 0 {
            key(&mut out, 1, FIXED64);
            out.extend_from_slice(&self.wall_time.to_le_bytes());
        }
        if self.step != 0 {
            key(&mut out, 2, VARINT);
            varint(&mut out, self.step as u64);
        }
        match &self.what {
            What::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
            What::Summary(scalars) => {
                let mut summary = Vec::new();
                for s in scalars {
                    let mut value = Vec::new();
                    if !s.tag.is_empty() {
                        bytes_field(&mut value, 1, s.tag.as_bytes());
                    }
                    key(&mut value, 2, FIXED32);
                    value.extend_from_slice(&s.value.to_le_bytes());
                    bytes_field(&mut summary, 1, &value);
                }
                bytes_field(&mut out, 5, &summary);
            }
            What::SessionLog(status) => {
                let mut log = Vec::new();
                if status.value() != 0 {
                    key(&mut log, 1, VARINT);
                    // An enum is an int32: a negative one is sign-extended to 64 bits.
                    varint(&mut log, i64::from(status.value()) as u64);
                }
                bytes_field(&mut out, 7, &log);
            }
            What::Other => {}
        }
        out
    }
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One field of a protobuf message, as read off the wire.
enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(&'a [u8]),
    Fixed32([u8; 4]),
}

impl Field<'_> {
    fn wire_name(&self) -> &'static str {
        match self {
            Field::Varint(_) => "a varint",
            Field::Fixed64(_) => "a 64-bit value",
            Field::Len(_) => "a length-delimited value",
            Field::Fixed32(_) => "a 32-bit value",
        }
    }
}

/// The fields of a protobuf message, in file order; an error ends the iteration.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes, pos: 0 }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(format!("a varint runs past the end at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "a varint longer than 10 bytes ends at byte {}",
            self.pos
        ))
    }

    fn take(&mut self, n: u64) -> std::result::Result<&'a [u8], String> {
        let available = self.bytes.len() - self.pos;
        match usize::try_from(n).ok().filter(|&n| n <= available) {
            Some(n) => {
                self.pos += n;
                Ok(&self.bytes[self.pos - n..self.pos])
            }
            None => Err(format!(
                "a field needs {n} bytes at byte {}, {available} remain",
                self.pos
            )),
        }
    }

    fn next_field(&mut self) -> std::result::Result<Option<(u64, Field<'a>)>, String> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err("field number 0".to_string());
        }
        let field = match (key & 7) as u8 {
            VARINT => Field::Varint(self.varint()?),
            FIXED64 => Field::Fixed64(self.array()?),
            LEN => {
                let n = self.varint()?;
                Field::Len(self.take(n)?)
            }
            FIXED32 => Field::Fixed32(self.array()?),
            wire => {
                return Err(format!(
                    "field {number} has wire type {wire}, which an Event does not use"
                ));
            }
        };
        Ok(Some((number, field)))
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

fn wrong_wire(message: &str, name: &str, field: &Field<'_>) -> String {
    format!("{message}.{name} is {}", field.wire_name())
}

fn utf8(message: &str, name: &str, bytes: &[u8]) -> std::result::Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{message}.{name} is not UTF-8"))
}

/// Decodes one `Event` record; a later `what` replaces an earlier one, as in protobuf.
fn decode_event(bytes: &[u8]) -> std::result::Result<Event, String> {
    let mut event = Event {
        wall_time: 0.0,
        step: 0,
        what: What::Other,
    };
    let mut fields = Fields::new(bytes);
    while let Some((number, field)) = fields.next_field()? {
        match (number, field) {
            (1, Field::Fixed64(b)) => event.wall_time = f64::from_le_bytes(b),
            (2, Field::Varint(v)) => event.step = v as i64,
            (3, Field::Len(b)) => event.what = What::FileVersion(utf8("Event", "file_version", b)?),
            (5, Field::Len(b)) => event.what = What::Summary(decode_summary(b)?),
            (7, Field::Len(b)) => event.what = What::SessionLog(decode_session_log(b)?),
            // Another `what` (graph_def, log_message, tagged_run_metadata, meta_graph_def).
            (4 | 6 | 8 | 9, Field::Len(_)) => event.what = What::Other,
            (n @ (1..=9), f) => return Err(wrong_wire("Event", &format!("field {n}"), &f)),
            _ => {} // source_metadata and fields added later
        }
    }
    Ok(event)
}

fn decode_summary(bytes: &[u8]) -> std::result::Result<Vec<Scalar>, String> {
    let mut scalars = Vec::new();
    let mut fields = Fields::new(bytes);
    while let Some((number, field)) = fields.next_field()? {
        match (number, field) {
            (1, Field::Len(b)) => {
                if let Some(s) = decode_value(b)? {
                    scalars.push(s);
                }
            }
            (1, f) => return Err(wrong_wire("Summary", "value", &f)),
            _ => {}
        }
    }
    Ok(scalars)
}

/// A `Summary.Value` that holds a `simple_value`; `None` for the other kinds.
fn decode_value(bytes: &[u8]) -> std::result::Result<Option<Scalar>, String> {
    let mut tag = String::new();
    let mut value = None;
    let mut fields = Fields::new(bytes);
    while let Some((number, field)) = fields.next_field()? {
        match (number, field) {
            (1, Field::Len(b)) => tag = utf8("Value", "tag", b)?,
            (2, Field::Fixed32(b)) => value = Some(f32::from_le_bytes(b)),
            // Another member of the `oneof value` replaces the simple value.
            (3..=6 | 8, _) => value = None,
            (n @ (1 | 2), f) => return Err(wrong_wire("Value", &format!("field {n}"), &f)),
            _ => {} // node_name, metadata
        }
    }
    Ok(value.map(|value| Scalar { tag, value }))
}

fn decode_session_log(bytes: &[u8]) -> std::result::Result<SessionStatus, String> {
    let mut status = SessionStatus::Unspecified;
    let mut fields = Fields::new(bytes);
    while let Some((number, field)) = fields.next_field()? {
        match (number, field) {
            // An enum is an int32 on the wire: the low 32 bits of the varint.
            (1, Field::Varint(v)) => status = SessionStatus::from_value(v as i32),
            (1, f) => return Err(wrong_wire("SessionLog", "status", &f)),
            _ => {} // checkpoint_path, msg
        }
    }
    Ok(status)
}
