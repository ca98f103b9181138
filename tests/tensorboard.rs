//! TensorBoard event files: the writer's records against those PyTorch's `SummaryWriter` wrote
//! (`golden/tensorboard/events.out.tfevents.example`), the reader against that file, and the
//! reader's errors on damaged files.

use std::path::{Path, PathBuf};

use lstm_wgpu::Error;
use lstm_wgpu::train::tensorboard::{
    Event, EventFileError, EventWriter, FILE_PREFIX, FILE_VERSION, Scalar, SessionStatus, What,
    crc32c, frame, parse_events, read_events, records,
};

/// The scalars in the example file, in the order PyTorch wrote them.
const EXAMPLE_SCALARS: [(&str, i64, f32); 7] = [
    ("train/loss", 1, 2.3035),
    ("train/accuracy", 1, 0.047),
    ("train/loss", 200, 0.9123),
    ("train/accuracy", 200, 0.672),
    ("train/loss", 400, 0.6543),
    ("train/accuracy", 400, 0.781),
    ("test/accuracy", 10000, 0.8953),
];

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tensorboard/events.out.tfevents.example")
}

fn example_bytes() -> Vec<u8> {
    std::fs::read(example_path()).expect("the example event file")
}

/// A fresh empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "lstm-wgpu-tensorboard-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The one event file in `dir`.
fn only_event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one event file in {dir:?}: {files:?}"
    );
    files.into_iter().next().unwrap()
}

/// `(tag, step, value)` of every scalar, in file order.
fn scalars(events: &[Event]) -> Vec<(String, i64, f32)> {
    events
        .iter()
        .flat_map(|e| match &e.what {
            What::Summary(values) => values
                .iter()
                .map(|s| (s.tag.clone(), e.step, s.value))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn expected_scalars() -> Vec<(String, i64, f32)> {
    EXAMPLE_SCALARS
        .iter()
        .map(|&(t, s, v)| (t.to_string(), s, v))
        .collect()
}

/// Writes the example's scalars with our writer into `dir` and returns the file.
fn write_example_scalars(dir: &Path) -> PathBuf {
    let mut w = EventWriter::create(dir).unwrap();
    for (tag, step, value) in EXAMPLE_SCALARS {
        w.scalar(tag, step as u64, value).unwrap();
    }
    w.path().to_path_buf()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fails with both byte strings and the first offset where they part; `source` names where
/// `theirs` comes from.
fn assert_same_bytes(what: &str, ours: &[u8], theirs: &[u8], source: &str) {
    if ours != theirs {
        let at = ours
            .iter()
            .zip(theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        panic!(
            "{what}: the bytes differ from offset {at} (lengths {} and {})\n  ours:    {}\n  {source}: {}",
            ours.len(),
            theirs.len(),
            hex(ours),
            hex(theirs)
        );
    }
}

#[test]
fn crc32c_gives_the_standard_check_value() {
    // The check value of CRC-32C (Castagnoli) for the ASCII digits 1-9 (RFC 3720, B.4).
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn the_reader_decodes_the_pytorch_example_to_its_scalars() {
    let events = read_events(example_path()).unwrap();
    assert_eq!(scalars(&events), expected_scalars());
}

#[test]
fn the_pytorch_example_starts_with_the_file_version() {
    let events = read_events(example_path()).unwrap();
    assert_eq!(
        events[0].what,
        What::FileVersion("brain.Event:2".into()),
        "first event: {:?}",
        events[0]
    );
    assert_eq!(FILE_VERSION, "brain.Event:2");
}

#[test]
fn written_scalars_read_back_as_the_same_series() {
    let dir = temp_dir("roundtrip");
    let path = write_example_scalars(&dir);
    // read_events checks both CRCs of every record.
    let events = read_events(&path).unwrap();
    assert_eq!(scalars(&events), expected_scalars());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_written_file_is_named_for_tensorboard_and_starts_with_the_file_version() {
    let dir = temp_dir("first-event");
    let path = EventWriter::create(&dir).unwrap().path().to_path_buf();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(FILE_PREFIX), "file name {name}");
    let seconds = name[FILE_PREFIX.len()..].split('.').next().unwrap();
    assert!(
        seconds.len() == 10 && seconds.bytes().all(|b| b.is_ascii_digit()),
        "file name {name}: no unix seconds after the prefix"
    );
    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].what, What::FileVersion(FILE_VERSION.into()));
    assert_eq!(events[0].step, 0);
    assert!(
        events[0].wall_time > 1.5e9,
        "wall time {}",
        events[0].wall_time
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writers_started_in_the_same_second_write_separate_files() {
    let dir = temp_dir("same-second");
    let a = EventWriter::create(&dir).unwrap();
    let b = EventWriter::create(&dir).unwrap();
    assert_ne!(a.path(), b.path());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Our scalar records and PyTorch's agree in every byte after the wall time (`wall_time` is
/// field 1, a fixed 64-bit value: the first 9 bytes of each record).
#[test]
fn scalar_records_match_pytorch_byte_for_byte_after_the_wall_time() {
    let dir = temp_dir("bytes");
    let ours = std::fs::read(write_example_scalars(&dir)).unwrap();
    let theirs = example_bytes();
    let (ours, theirs) = (records(&ours).unwrap(), records(&theirs).unwrap());
    assert_eq!(ours.len(), theirs.len(), "record counts differ");
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate().skip(1) {
        assert_eq!(
            (o[0], t[0]),
            (0x09, 0x09),
            "record {i} does not start with wall_time"
        );
        assert_same_bytes(
            &format!("scalar record {i} after the wall time"),
            &o[9..],
            &t[9..],
            "PyTorch",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// With PyTorch's wall times, our encoding and framing of each scalar event is PyTorch's record,
/// length and CRCs included.
#[test]
fn scalar_events_encode_and_frame_exactly_as_pytorch_wrote_them() {
    let bytes = example_bytes();
    let events = parse_events(&bytes).unwrap();
    let mut pos = 0;
    for (i, (event, record)) in events.iter().zip(records(&bytes).unwrap()).enumerate() {
        let framed = &bytes[pos..pos + record.len() + 16];
        pos += framed.len();
        if i == 0 {
            continue; // the file version: see the next test
        }
        let What::Summary(values) = &event.what else {
            panic!("event {i} is not a summary: {event:?}");
        };
        let ours = Event {
            wall_time: event.wall_time,
            step: event.step,
            what: What::Summary(vec![Scalar {
                tag: values[0].tag.clone(),
                value: values[0].value,
            }]),
        };
        assert_same_bytes(
            &format!("framed event {i}"),
            &frame(&ours.encode()),
            framed,
            "PyTorch",
        );
    }
}

/// PyTorch's first event adds `source_metadata` (field 10: `SourceMetadata { writer = 1 }`)
/// naming its writer, which this crate does not write; everything else is the same.
#[test]
fn pytorch_first_event_is_ours_plus_its_source_metadata() {
    let bytes = example_bytes();
    let theirs = records(&bytes).unwrap()[0];
    let wall_time = parse_events(&bytes).unwrap()[0].wall_time;
    let ours = Event {
        wall_time,
        step: 0,
        what: What::FileVersion(FILE_VERSION.into()),
    }
    .encode();
    let writer = b"tensorboard.summary.writer.event_file_writer";
    let mut source_metadata = vec![0x52, writer.len() as u8 + 2, 0x0a, writer.len() as u8];
    source_metadata.extend_from_slice(writer);
    assert_same_bytes(
        "first event + source_metadata",
        &[ours, source_metadata].concat(),
        theirs,
        "PyTorch",
    );
}

/// What a `Result` of `read_events` holds, for messages.
fn describe(r: &lstm_wgpu::Result<Vec<Event>>) -> String {
    match r {
        Ok(events) => format!("Ok with {} events", events.len()),
        Err(e) => format!("Err({e})"),
    }
}

#[test]
fn every_flipped_byte_of_the_example_is_a_typed_error() {
    let bytes = example_bytes();
    let starts: Vec<usize> = records(&bytes)
        .unwrap()
        .iter()
        .scan(0, |pos, r| {
            let start = *pos;
            *pos += r.len() + 16;
            Some(start)
        })
        .collect();
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x20;
        let start = *starts.iter().rev().find(|&&s| s <= i).unwrap() as u64;
        let err = parse_events(&damaged).expect_err(&format!("byte {i} flipped still parses"));
        // The length and its CRC are the first 12 bytes of a record, the data and its CRC the
        // rest: a CRC-32C catches every single flipped byte.
        let expected_kind = if (i as u64) < start + 12 {
            "LengthCrc"
        } else {
            "DataCrc"
        };
        let ok = match &err {
            EventFileError::LengthCrc { offset, .. } => {
                expected_kind == "LengthCrc" && *offset == start
            }
            EventFileError::DataCrc { offset, .. } => {
                expected_kind == "DataCrc" && *offset == start
            }
            _ => false,
        };
        assert!(
            ok,
            "byte {i} flipped (record at {start}): expected {expected_kind} at {start}, got {err:?}"
        );
    }
}

#[test]
fn a_flipped_byte_in_a_file_is_an_io_error_naming_the_file() {
    let dir = temp_dir("flipped-file");
    let path = dir.join("events.out.tfevents.damaged");
    let mut bytes = example_bytes();
    bytes[200] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let r = read_events(&path);
    match &r {
        Err(e @ Error::Io { path: p, .. }) if *p == path => {
            assert!(
                matches!(EventFileError::of(e), Some(EventFileError::DataCrc { .. })),
                "{e}"
            );
        }
        _ => panic!("expected Error::Io naming {path:?}, got {}", describe(&r)),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_truncation_inside_a_record_is_a_truncated_error() {
    let bytes = example_bytes();
    let ends: Vec<usize> = records(&bytes)
        .unwrap()
        .iter()
        .scan(0, |pos, r| {
            *pos += r.len() + 16;
            Some(*pos)
        })
        .collect();
    for cut in 0..bytes.len() {
        let r = parse_events(&bytes[..cut]);
        if cut == 0 || ends.contains(&cut) {
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(
                r.as_ref().map(Vec::len),
                Ok(whole),
                "cut at a record boundary, byte {cut}"
            );
        } else {
            assert!(
                matches!(r, Err(EventFileError::Truncated { .. })),
                "cut at byte {cut}: expected Truncated, got {r:?}"
            );
        }
    }
}

#[test]
fn a_length_beyond_the_file_is_truncated_not_an_allocation() {
    let len = u64::MAX.to_le_bytes();
    let mut bytes = len.to_vec();
    bytes.extend_from_slice(&lstm_wgpu::train::tensorboard::masked_crc32c(&len).to_le_bytes());
    bytes.extend_from_slice(b"short");
    let r = parse_events(&bytes);
    assert!(
        matches!(
            r,
            Err(EventFileError::Truncated {
                offset: 0,
                needed: u64::MAX,
                available: 17
            })
        ),
        "got {r:?}"
    );
}

#[test]
fn malformed_protobuf_with_valid_crcs_is_a_malformed_error() {
    let cases: [(&str, &[u8]); 5] = [
        (
            "a varint of 11 bytes",
            &[
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
        ("a string longer than the record", &[0x1a, 0x20, b'b']),
        ("a wall time of 4 bytes", &[0x09, 0, 0, 0, 0]),
        ("field number 0", &[0x00, 0x01]),
        ("wire type 3 (a group)", &[0x1b]),
    ];
    for (what, data) in cases {
        let mut bytes = frame(&[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // a valid first event
        bytes.extend_from_slice(&frame(data));
        let r = parse_events(&bytes);
        assert!(
            matches!(r, Err(EventFileError::Malformed { offset: 25, .. })),
            "{what}: expected Malformed at byte 25, got {r:?}"
        );
    }
}

#[test]
fn a_resumed_writer_starts_a_session_after_the_checkpoint_step() {
    let dir = temp_dir("resumed");
    let mut w = EventWriter::create_resumed(&dir, 469).unwrap();
    w.scalar("train/loss", 600, 0.5).unwrap();
    let events = read_events(only_event_file(&dir)).unwrap();
    let what: Vec<(i64, &What)> = events.iter().map(|e| (e.step, &e.what)).collect();
    assert_eq!(
        what,
        vec![
            (0, &What::FileVersion(FILE_VERSION.into())),
            (470, &What::SessionLog(SessionStatus::Start)),
            (
                600,
                &What::Summary(vec![Scalar {
                    tag: "train/loss".into(),
                    value: 0.5
                }])
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_session_start_record_is_the_protobuf_tensorboard_reads() {
    // Event { wall_time: 1.0, step: 470, session_log: SessionLog { status: START } }, encoded
    // by hand from event.proto: session_log is field 7 of Event, status field 1 of SessionLog.
    let event = Event {
        wall_time: 1.0,
        step: 470,
        what: What::SessionLog(SessionStatus::Start),
    };
    let expected = [
        0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // wall_time = 1.0
        0x10, 0xd6, 0x03, // step = 470
        0x3a, 0x02, 0x08, 0x01, // session_log { status: START }
    ];
    assert_same_bytes(
        "SessionLog START event",
        &event.encode(),
        &expected,
        "by hand",
    );
}

#[test]
fn a_step_beyond_int64_is_a_config_error() {
    let dir = temp_dir("big-step");
    let mut w = EventWriter::create(&dir).unwrap();
    let r = w.scalar("train/loss", u64::MAX, 1.0);
    assert!(matches!(r, Err(Error::Config { .. })), "got {r:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
