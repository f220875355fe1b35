//! A span held as the bytes of its `spans` row: ClickHouse's RowBinary encoding, made once
//! when the span arrives. The sampler buffers spans for seconds until their trace is
//! decided; as [`SpanRow`]s each one owns some thirty separately allocated strings (about
//! 1.9 KB of heap a span), as packed bytes it is one allocation the size of its row, and
//! writing it is a copy. The resource's columns are encoded once and shared by the spans
//! of one resource; the decision's two columns (`sample_rate`, `sampled_by`), the last of
//! the table, are appended when the row is written.
//!
//! The encoding is the one the `clickhouse` crate gives a [`SpanRow`] (strings and arrays
//! are a LEB128 length and the items, fixed strings their bytes, numbers little-endian, a
//! UUID its two 64-bit halves); `unpack` reads it back, and the store's tests insert
//! packed rows into a real ClickHouse and read them as [`SpanRow`]s.

use super::SpanRow;
use std::sync::Arc;
use weft_model::{SpanKind, StatusCode};

/// Offsets of the fixed-size columns at the start of every row.
const TENANT: usize = 0;
const TRACE_ID: usize = 16;
const SPAN_ID: usize = 32;
const PARENT_SPAN_ID: usize = 40;
const FIXED: usize = 48;

/// One span's `spans` row in RowBinary, with what the sampler reads without decoding.
#[derive(Clone, Debug)]
pub struct PackedSpan {
    /// Every column but the resource's two and the decision's two: `tenant_id` …
    /// `attribute_values`, then (from `tail_at`) `event_times_unix_nano` …
    /// `link_attributes`.
    row: Box<[u8]>,
    tail_at: u32,
    /// Where `name`'s bytes are in `row`, and where `attribute_keys` begins.
    name_at: (u32, u32),
    attributes_at: u32,
    /// `resource_keys` and `resource_values`, shared by the spans of one resource.
    resource: Arc<[u8]>,
    service: Arc<str>,
    start_time_unix_nano: u64,
    duration_ns: u64,
    kind: u8,
    status_code: u8,
    /// The decision's columns, set by [`PackedSpan::stamp`].
    sample_rate: f32,
    /// `None`: no rule (the empty string).
    sampled_by: Option<Arc<str>>,
}

/// The encoded columns of one resource, and its service name.
#[derive(Clone, Debug)]
pub struct PackedResource {
    bytes: Arc<[u8]>,
    service: Arc<str>,
}

impl PackedResource {
    /// The resource's `service.name` as the spans' `service_name` column holds it.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The encoded `resource_keys` and `resource_values` columns, in that order.
    pub fn columns(&self) -> &[u8] {
        &self.bytes
    }

    pub fn new(service: &str, keys: &[String], values: &[String]) -> PackedResource {
        let mut bytes = Vec::with_capacity(strings_len(keys) + strings_len(values));
        put_strings(&mut bytes, keys);
        put_strings(&mut bytes, values);
        PackedResource {
            bytes: bytes.into(),
            service: service.into(),
        }
    }
}

/// The two RowBinary encodings a decoder that writes rows itself needs beside plain
/// little-endian numbers and fixed strings (their bytes).
pub mod rowbinary {
    /// An unsigned LEB128 number: the length of a string or an array.
    pub fn put_leb128(buffer: &mut Vec<u8>, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                buffer.push(byte);
                return;
            }
            buffer.push(byte | 0x80);
        }
    }

    /// A `String`: its length, then its bytes.
    pub fn put_str(buffer: &mut Vec<u8>, value: &str) {
        put_leb128(buffer, value.len() as u64);
        buffer.extend_from_slice(value.as_bytes());
    }
}

use rowbinary::{put_leb128, put_str};

fn put_strings(buffer: &mut Vec<u8>, values: &[String]) {
    put_leb128(buffer, values.len() as u64);
    for value in values {
        put_str(buffer, value);
    }
}

/// An upper bound of a string array's encoded size.
fn strings_len(values: &[String]) -> usize {
    10 + values.iter().map(|v| v.len() + 10).sum::<usize>()
}

/// Reads RowBinary written by the functions above. Rows are made here, so a read past the
/// end is a bug: it panics rather than answer wrong.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Reader<'a> {
        Reader { bytes, at }
    }

    fn leb128(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.bytes[self.at];
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        taken
    }

    fn str(&mut self) -> &'a str {
        let n = self.leb128() as usize;
        // Every string was written from a `&str`.
        std::str::from_utf8(self.take(n)).expect("packed strings are UTF-8")
    }

    fn skip_str(&mut self) {
        let n = self.leb128() as usize;
        self.at += n;
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().expect("N bytes taken")
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn strings(&mut self) -> Vec<String> {
        let n = self.leb128() as usize;
        (0..n).map(|_| self.str().to_owned()).collect()
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = self.leb128() as usize;
        self.take(n)
    }

    /// The value paired with `key` in the parallel arrays (keys, then values) that start
    /// here: the first key that matches.
    fn lookup(&mut self, key: &str) -> Option<&'a str> {
        let keys = self.leb128() as usize;
        let mut position = None;
        for i in 0..keys {
            if self.bytes() == key.as_bytes() && position.is_none() {
                position = Some(i);
            }
        }
        let position = position?;
        let values = self.leb128() as usize;
        if position >= values {
            return None;
        }
        for _ in 0..position {
            self.skip_str();
        }
        Some(self.str())
    }
}

/// A row written by a decoder of its own (the sampler reads OTLP straight into rows):
/// `row` holds the columns as [`PackedSpan::pack`] writes them, and the marks say where.
pub struct EncodedSpan {
    pub row: Vec<u8>,
    /// Where `name`'s bytes begin (after their length) and how many there are.
    pub name_at: (u32, u32),
    /// Where `attribute_keys` begins, and `event_times_unix_nano` (the resource's
    /// columns go between the two).
    pub attributes_at: u32,
    pub tail_at: u32,
    pub start_time_unix_nano: u64,
    pub duration_ns: u64,
    pub kind: u8,
    pub status_code: u8,
}

impl PackedSpan {
    /// A span from its encoded row and its resource, not yet decided (rate 1, no rule).
    pub fn from_encoded(encoded: EncodedSpan, resource: &PackedResource) -> PackedSpan {
        PackedSpan {
            row: encoded.row.into_boxed_slice(),
            tail_at: encoded.tail_at,
            name_at: encoded.name_at,
            attributes_at: encoded.attributes_at,
            resource: resource.bytes.clone(),
            service: resource.service.clone(),
            start_time_unix_nano: encoded.start_time_unix_nano,
            duration_ns: encoded.duration_ns,
            kind: encoded.kind,
            status_code: encoded.status_code,
            sample_rate: 1.0,
            sampled_by: None,
        }
    }

    /// Packs `row`, whose resource columns are `resource` (its `resource_keys` and
    /// `resource_values` are not read).
    pub fn pack(row: &SpanRow, resource: &PackedResource) -> PackedSpan {
        let texts = row.trace_state.len()
            + row.service_name.len()
            + row.name.len()
            + row.status_message.len()
            + row.scope_name.len()
            + row.scope_version.len();
        let capacity = FIXED
            + 60
            + texts
            + strings_len(&row.attribute_keys)
            + strings_len(&row.attribute_values)
            + row.event_times_unix_nano.len() * 8
            + strings_len(&row.event_names)
            + strings_len(&row.event_attributes)
            + row.link_trace_ids.len() * 24
            + strings_len(&row.link_attributes)
            + 30;
        let mut bytes = Vec::with_capacity(capacity);
        let (high, low) = row.tenant_id.as_u64_pair();
        bytes.extend_from_slice(&high.to_le_bytes());
        bytes.extend_from_slice(&low.to_le_bytes());
        bytes.extend_from_slice(&row.trace_id);
        bytes.extend_from_slice(&row.span_id);
        bytes.extend_from_slice(&row.parent_span_id);
        put_str(&mut bytes, &row.trace_state);
        put_str(&mut bytes, &row.service_name);
        put_leb128(&mut bytes, row.name.len() as u64);
        let name_at = (bytes.len() as u32, row.name.len() as u32);
        bytes.extend_from_slice(row.name.as_bytes());
        bytes.push(row.kind);
        bytes.extend_from_slice(&row.start_time.to_le_bytes());
        bytes.extend_from_slice(&row.start_time_unix_nano.to_le_bytes());
        bytes.extend_from_slice(&row.duration_ns.to_le_bytes());
        bytes.push(row.status_code);
        put_str(&mut bytes, &row.status_message);
        put_str(&mut bytes, &row.scope_name);
        put_str(&mut bytes, &row.scope_version);
        let attributes_at = bytes.len() as u32;
        put_strings(&mut bytes, &row.attribute_keys);
        put_strings(&mut bytes, &row.attribute_values);
        let tail_at = bytes.len() as u32;
        put_leb128(&mut bytes, row.event_times_unix_nano.len() as u64);
        for time in &row.event_times_unix_nano {
            bytes.extend_from_slice(&time.to_le_bytes());
        }
        put_strings(&mut bytes, &row.event_names);
        put_strings(&mut bytes, &row.event_attributes);
        put_leb128(&mut bytes, row.link_trace_ids.len() as u64);
        for id in &row.link_trace_ids {
            bytes.extend_from_slice(id);
        }
        put_leb128(&mut bytes, row.link_span_ids.len() as u64);
        for id in &row.link_span_ids {
            bytes.extend_from_slice(id);
        }
        put_strings(&mut bytes, &row.link_attributes);
        PackedSpan {
            row: bytes.into_boxed_slice(),
            tail_at,
            name_at,
            attributes_at,
            resource: resource.bytes.clone(),
            service: resource.service.clone(),
            start_time_unix_nano: row.start_time_unix_nano,
            duration_ns: row.duration_ns,
            kind: row.kind,
            status_code: row.status_code,
            sample_rate: row.sample_rate,
            sampled_by: (!row.sampled_by.is_empty()).then(|| row.sampled_by.as_str().into()),
        }
    }

    /// Packs a row with its own resource columns.
    pub fn from_row(row: &SpanRow) -> PackedSpan {
        let resource =
            PackedResource::new(&row.service_name, &row.resource_keys, &row.resource_values);
        PackedSpan::pack(row, &resource)
    }

    /// Sets the decision's columns.
    pub fn stamp(&mut self, sample_rate: f32, sampled_by: &Arc<str>) {
        self.sample_rate = sample_rate;
        self.sampled_by = (!sampled_by.is_empty()).then(|| sampled_by.clone());
    }

    /// Appends the whole row, as an INSERT … FORMAT RowBinary of `spans` takes it.
    pub fn write_to(&self, buffer: &mut Vec<u8>) {
        let tail_at = self.tail_at as usize;
        buffer.extend_from_slice(&self.row[..tail_at]);
        buffer.extend_from_slice(&self.resource);
        buffer.extend_from_slice(&self.row[tail_at..]);
        buffer.extend_from_slice(&self.sample_rate.to_le_bytes());
        put_str(buffer, self.sampled_by());
    }

    /// The encoded row's length.
    pub fn row_len(&self) -> usize {
        self.row.len() + self.resource.len() + 4 + 1 + self.sampled_by().len()
    }

    /// Heap and inline bytes this span holds, counting the shared resource in full (a
    /// bound on the safe side).
    pub fn held_bytes(&self) -> usize {
        size_of::<PackedSpan>() + self.row.len() + self.resource.len()
    }

    pub fn tenant_id(&self) -> uuid::Uuid {
        let mut at = Reader::new(&self.row, TENANT);
        let high = at.u64();
        uuid::Uuid::from_u64_pair(high, at.u64())
    }

    pub fn trace_id(&self) -> [u8; 16] {
        Reader::new(&self.row, TRACE_ID).array()
    }

    pub fn span_id(&self) -> [u8; 8] {
        Reader::new(&self.row, SPAN_ID).array()
    }

    pub fn parent_span_id(&self) -> [u8; 8] {
        Reader::new(&self.row, PARENT_SPAN_ID).array()
    }

    pub fn service_name(&self) -> &str {
        &self.service
    }

    pub fn name(&self) -> &str {
        let (at, len) = (self.name_at.0 as usize, self.name_at.1 as usize);
        std::str::from_utf8(&self.row[at..at + len]).expect("packed strings are UTF-8")
    }

    /// Start in whole seconds, as the `start_time` column.
    pub fn start_time(&self) -> u32 {
        // The column after `name` and `kind`.
        Reader::new(&self.row, (self.name_at.0 + self.name_at.1) as usize + 1).u32()
    }

    pub fn start_time_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }

    pub fn duration_ns(&self) -> u64 {
        self.duration_ns
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    pub fn status_code(&self) -> u8 {
        self.status_code
    }

    pub fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    pub fn sampled_by(&self) -> &str {
        self.sampled_by.as_deref().unwrap_or("")
    }

    /// The row read back (tests, and whoever needs every column).
    pub fn unpack(&self) -> SpanRow {
        let mut r = Reader::new(&self.row, 0);
        let (high, low) = (r.u64(), r.u64());
        let trace_id = r.array();
        let span_id = r.array();
        let parent_span_id = r.array();
        let trace_state = r.str().to_owned();
        let service_name = r.str().to_owned();
        let name = r.str().to_owned();
        let kind = r.u8();
        let start_time = r.u32();
        let start_time_unix_nano = r.u64();
        let duration_ns = r.u64();
        let status_code = r.u8();
        let status_message = r.str().to_owned();
        let scope_name = r.str().to_owned();
        let scope_version = r.str().to_owned();
        let attribute_keys = r.strings();
        let attribute_values = r.strings();
        let mut resource = Reader::new(&self.resource, 0);
        let resource_keys: Vec<String> = resource.strings();
        let resource_values: Vec<String> = resource.strings();
        let events = r.leb128() as usize;
        let event_times_unix_nano = (0..events).map(|_| r.u64()).collect();
        let event_names = r.strings();
        let event_attributes = r.strings();
        let links = r.leb128() as usize;
        let link_trace_ids = (0..links).map(|_| r.array()).collect();
        let links = r.leb128() as usize;
        let link_span_ids = (0..links).map(|_| r.array()).collect();
        let link_attributes = r.strings();
        SpanRow {
            tenant_id: uuid::Uuid::from_u64_pair(high, low),
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            service_name,
            name,
            kind,
            start_time,
            start_time_unix_nano,
            duration_ns,
            status_code,
            status_message,
            scope_name,
            scope_version,
            attribute_keys,
            attribute_values,
            resource_keys: resource_keys.into(),
            resource_values: resource_values.into(),
            event_times_unix_nano,
            event_names,
            event_attributes,
            link_trace_ids,
            link_span_ids,
            link_attributes,
            sample_rate: self.sample_rate,
            sampled_by: self.sampled_by().to_owned(),
        }
    }
}

impl weft_model::sampling::SpanFacts for PackedSpan {
    fn name(&self) -> &str {
        PackedSpan::name(self)
    }

    fn service(&self) -> &str {
        &self.service
    }

    fn start_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }

    fn duration_ns(&self) -> u64 {
        self.duration_ns
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_otlp(i32::from(self.status_code))
    }

    fn kind(&self) -> SpanKind {
        SpanKind::from_otlp(i32::from(self.kind))
    }

    fn is_root(&self) -> bool {
        self.parent_span_id() == [0; 8]
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        Reader::new(&self.row, self.attributes_at as usize)
            .lookup(key)
            .or_else(|| Reader::new(&self.resource, 0).lookup(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_model::sampling::SpanFacts;

    fn row() -> SpanRow {
        SpanRow {
            tenant_id: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            trace_id: [7; 16],
            span_id: [8; 8],
            parent_span_id: [9; 8],
            trace_state: "k=v".into(),
            service_name: "checkout".into(),
            name: "POST /orders ✓".into(),
            kind: 2,
            start_time: 1_700_000_000,
            start_time_unix_nano: 1_700_000_000_123_456_789,
            duration_ns: 250_000_000,
            status_code: 2,
            status_message: "boom".into(),
            scope_name: "io.opentelemetry.http".into(),
            scope_version: "1.2".into(),
            attribute_keys: vec!["http.route".into(), "retry".into(), "x".repeat(200)],
            attribute_values: vec!["/orders".into(), "3".into(), "long".into()],
            resource_keys: vec!["service.name".into(), "host.name".into()].into(),
            resource_values: vec!["checkout".into(), "node-1".into()].into(),
            event_times_unix_nano: vec![1, u64::MAX],
            event_names: vec!["exception".into(), String::new()],
            event_attributes: vec![r#"{"exception.type":"Boom"}"#.into(), "{}".into()],
            link_trace_ids: vec![[1; 16]],
            link_span_ids: vec![[2; 8]],
            link_attributes: vec!["{}".into()],
            sample_rate: 4.0,
            sampled_by: "keep-slow".into(),
        }
    }

    #[test]
    fn a_packed_row_reads_back_whole() {
        let row = row();
        let packed = PackedSpan::from_row(&row);
        assert_eq!(packed.unpack(), row);
        assert_eq!(packed.tenant_id(), row.tenant_id);
        assert_eq!(packed.trace_id(), row.trace_id);
        assert_eq!(packed.span_id(), row.span_id);
        assert_eq!(packed.parent_span_id(), row.parent_span_id);
        assert_eq!(PackedSpan::name(&packed), "POST /orders ✓");
        assert_eq!(packed.start_time(), row.start_time);
        let mut written = Vec::new();
        packed.write_to(&mut written);
        assert_eq!(written.len(), packed.row_len());
    }

    #[test]
    fn a_stamp_sets_the_decision_columns() {
        let mut packed = PackedSpan::from_row(&row());
        packed.stamp(10.0, &Arc::from("probabilistic"));
        let read = packed.unpack();
        assert_eq!(
            (read.sample_rate, read.sampled_by.as_str()),
            (10.0, "probabilistic")
        );
    }

    #[test]
    fn attributes_are_found_on_the_span_and_then_on_its_resource() {
        let packed = PackedSpan::from_row(&row());
        assert_eq!(packed.attribute("http.route"), Some("/orders"));
        assert_eq!(packed.attribute("retry"), Some("3"));
        assert_eq!(packed.attribute(&"x".repeat(200)), Some("long"));
        assert_eq!(packed.attribute("host.name"), Some("node-1"));
        assert_eq!(packed.attribute("service.name"), Some("checkout"));
        assert_eq!(packed.attribute("missing"), None);
        assert!(!packed.is_root());
        assert_eq!(packed.status(), StatusCode::Error);
        assert_eq!(SpanFacts::kind(&packed), SpanKind::Server);
    }

    #[test]
    fn a_span_without_attributes_events_or_links_packs_small() {
        let mut row = row();
        row.attribute_keys.clear();
        row.attribute_values.clear();
        row.event_times_unix_nano.clear();
        row.event_names.clear();
        row.event_attributes.clear();
        row.link_trace_ids.clear();
        row.link_span_ids.clear();
        row.link_attributes.clear();
        row.parent_span_id = [0; 8];
        let packed = PackedSpan::from_row(&row);
        assert_eq!(packed.unpack(), row);
        assert_eq!(packed.attribute("http.route"), None);
        assert_eq!(packed.attribute("host.name"), Some("node-1"));
        assert!(packed.is_root());
    }
}
