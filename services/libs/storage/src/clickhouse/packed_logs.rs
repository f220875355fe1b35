//! The log lines of one bus message as their `logs` rows in RowBinary, in one buffer.
//!
//! The sampler reads a message's protobuf in place and writes each line's row straight
//! into the buffer; writing them is a copy. Decoding into `prost`'s structs, building a
//! [`LogRow`] per line (the resource's columns cloned into each) and serialising those
//! rows cost more than the rest of a line's way through the sampler.
//!
//! The encoding is the one the `clickhouse` crate gives a [`LogRow`] ([`PackedLogs::push_row`]
//! writes it from one, for inserts of rows); the store's tests insert packed lines into a
//! real ClickHouse and read them back as [`LogRow`]s, and the sampler's check its own
//! writer against [`PackedLogs::push_row`] byte for byte.

use super::LogRow;
use super::packed::rowbinary::{put_leb128, put_str};

/// Rows of the lines of one bus message (`message`, its stream sequence).
#[derive(Clone, Debug, Default)]
pub struct PackedLogs {
    message: u64,
    bytes: Vec<u8>,
    lines: Vec<PackedLine>,
}

/// Where one line's row is in the buffer, and what the store's checks read of it.
#[derive(Clone, Copy, Debug)]
struct PackedLine {
    start: u32,
    end: u32,
    /// The row's `time` (whole seconds).
    time: u32,
    line: u32,
}

impl PackedLogs {
    pub fn new(message: u64) -> PackedLogs {
        PackedLogs {
            message,
            ..PackedLogs::default()
        }
    }

    /// The buffer a writer appends a row to, then calls [`Self::end_row`].
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// The stream sequence of the message the lines came in.
    pub fn message(&self) -> u64 {
        self.message
    }

    /// The number the next row takes in its message (its `message_line`).
    pub fn next_line(&self) -> u32 {
        self.lines.len() as u32
    }

    /// Ends the row written from `start` (the buffer's length before it), whose `time`
    /// is `time`: appends its `message` and `message_line` columns.
    pub fn end_row(&mut self, start: usize, time: u32) {
        self.finish_row(start, time, self.message, self.next_line());
    }

    fn finish_row(&mut self, start: usize, time: u32, message: u64, line: u32) {
        self.bytes.extend_from_slice(&message.to_le_bytes());
        self.bytes.extend_from_slice(&line.to_le_bytes());
        self.lines.push(PackedLine {
            start: start as u32,
            end: self.bytes.len() as u32,
            time,
            line,
        });
    }

    /// Appends `row` as it is, its `message` and `message_line` included.
    pub fn push_row(&mut self, row: &LogRow) {
        let start = self.bytes.len();
        let bytes = &mut self.bytes;
        let (high, low) = row.tenant_id.as_u64_pair();
        bytes.extend_from_slice(&high.to_le_bytes());
        bytes.extend_from_slice(&low.to_le_bytes());
        bytes.extend_from_slice(&row.time.to_le_bytes());
        bytes.extend_from_slice(&row.time_unix_nano.to_le_bytes());
        bytes.extend_from_slice(&row.observed_time_unix_nano.to_le_bytes());
        bytes.extend_from_slice(&row.trace_id);
        bytes.extend_from_slice(&row.span_id);
        bytes.push(row.severity_number);
        put_str(bytes, &row.severity_text);
        put_str(bytes, &row.body);
        put_str(bytes, &row.service_name);
        put_str(bytes, &row.scope_name);
        put_str(bytes, &row.scope_version);
        for strings in [
            &row.attribute_keys,
            &row.attribute_values,
            &row.resource_keys,
            &row.resource_values,
        ] {
            put_leb128(bytes, strings.len() as u64);
            for value in strings {
                put_str(bytes, value);
            }
        }
        self.finish_row(start, row.time, row.message, row.message_line);
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The first and last `time` of the lines (`None` without lines).
    pub fn seconds(&self) -> Option<(u32, u32)> {
        let first = self.lines.iter().map(|l| l.time).min()?;
        let last = self.lines.iter().map(|l| l.time).max()?;
        Some((first, last))
    }

    /// Keeps the lines whose `message_line` `keep` is true of.
    pub fn retain_lines(&mut self, mut keep: impl FnMut(u32) -> bool) {
        self.lines.retain(|l| keep(l.line));
    }

    /// The rows' bytes in order, as an INSERT … FORMAT RowBinary of `logs` takes them.
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        self.lines
            .iter()
            .map(|line| &self.bytes[line.start as usize..line.end as usize])
    }
}
