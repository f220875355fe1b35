//! The writer: collects rows from every partition consumer and writes them to ClickHouse
//! in batches, retrying with backoff while ClickHouse is unavailable. A request's sender
//! is told only after its spans (with their trace index rows, which ClickHouse makes
//! from them in the same statement) and its metrics (RED metrics and service edges) are
//! stored. Each is one INSERT per batch, in that order.
//!
//! Spans are stored once: an INSERT whose answer is lost (it may have been applied, or
//! may still be running) is waited for by its query id, and the spans it stored are
//! left out of the retry. Spans of a redelivered message are checked the same way
//! before they reach the sampler (see `claims.rs`).
//!
//! A message's metrics are counted once however often it is delivered: with its metric
//! rows go markers, one per minute they fall in, that name the message (see
//! [`MetricRow`]), and before writing the metrics of a message that was delivered before
//! (or after an INSERT whose outcome is unknown) the writer asks the table whether it
//! holds a marker of the message, and leaves it out if so. A message's rows of one table
//! and their markers are in one INSERT, which ClickHouse applies whole, so "counted" is
//! all or nothing per message and table.
//!
//! One batch that can never be stored must not stop storage for every partition and
//! tenant sharing the writer. A failure ClickHouse gives because of the data itself (see
//! [`refused_for_its_data`]) is not retried: the batch is halved, request by request,
//! until the requests that fail are isolated; those are refused (their senders keep the
//! messages in the dead-letter stream) and everything else is written.

use crate::config::WriterConfig;
use crate::logs::INSERT_END_WAIT;
use crate::metrics::{SamplerMetrics, TableLabels};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_model::TenantId;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::{
    ClickHouse, ClickHouseError, MetricRow, PackedSpan, ServiceEdgeRow, SpanMetricRow,
};

/// What became of a request's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// ClickHouse refuses these rows for what they contain; retrying cannot help.
    Refused(String),
}

/// Which bus message a request carries, so its metrics are counted once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef {
    /// Its stream sequence; 0 when unknown, and then it is never looked up.
    pub sequence: u64,
    /// Delivered before: its metrics may be stored already.
    pub redelivered: bool,
}

/// The rows of one bus message; `written` fires once their fate is durable. Dropping it
/// unfired means "not written": the sender must not acknowledge its message.
pub struct WriteRequest {
    pub message: MessageRef,
    pub tenant: TenantId,
    /// The spans kept.
    pub spans: Vec<PackedSpan>,
    /// RED metrics and service edges of every span the message carried.
    pub span_metrics: Vec<SpanMetricRow>,
    pub edges: Vec<ServiceEdgeRow>,
    pub written: oneshot::Sender<Written>,
}

pub fn spawn(
    store: ClickHouse,
    config: WriterConfig,
    metrics: SamplerMetrics,
    shutdown: CancellationToken,
) -> (mpsc::Sender<Vec<WriteRequest>>, JoinHandle<()>) {
    // Requests come in batches (a handler's pulled batch, a round of decisions), so a
    // few sends carry thousands of requests and no sender waits behind hundreds of
    // others for a slot.
    let (requests_tx, requests_rx) = mpsc::channel(64);
    let writer = Writer {
        store,
        metrics,
        shutdown,
        grace: config.shutdown_grace,
    };
    let handle = tokio::spawn(run(writer, config, requests_rx));
    (requests_tx, handle)
}

struct Writer {
    store: ClickHouse,
    metrics: SamplerMetrics,
    shutdown: CancellationToken,
    grace: Duration,
}

/// One request of a group: how many of the group's spans are its own, and its metric
/// rows until they are stored (`None` from then on, also in the halves of a group).
struct Part {
    spans: usize,
    message: MessageRef,
    tenant: TenantId,
    span_metrics: Option<Vec<SpanMetricRow>>,
    edges: Option<Vec<ServiceEdgeRow>>,
    written: oneshot::Sender<Written>,
}

/// A metrics table as the writer counts parts in it.
trait PartRows: MetricRow {
    /// The part's rows of this table that are not stored yet.
    fn rows(part: &Part) -> &Option<Vec<Self>>;
    fn of(part: &mut Part) -> &mut Option<Vec<Self>>;
}

impl PartRows for SpanMetricRow {
    fn rows(part: &Part) -> &Option<Vec<Self>> {
        &part.span_metrics
    }

    fn of(part: &mut Part) -> &mut Option<Vec<Self>> {
        &mut part.span_metrics
    }
}

impl PartRows for ServiceEdgeRow {
    fn rows(part: &Part) -> &Option<Vec<Self>> {
        &part.edges
    }

    fn of(part: &mut Part) -> &mut Option<Vec<Self>> {
        &mut part.edges
    }
}

/// Requests written together: their spans moved into one vector, with each request's
/// part so a failing group can be split back at request boundaries.
struct Group {
    spans: Vec<PackedSpan>,
    parts: Vec<Part>,
}

impl Group {
    fn of(requests: Vec<WriteRequest>) -> Group {
        let mut spans = Vec::with_capacity(requests.iter().map(|r| r.spans.len()).sum());
        let mut parts = Vec::with_capacity(requests.len());
        for request in requests {
            parts.push(Part {
                spans: request.spans.len(),
                message: request.message,
                tenant: request.tenant,
                span_metrics: Some(request.span_metrics),
                edges: Some(request.edges),
                written: request.written,
            });
            spans.extend(request.spans);
        }
        Group { spans, parts }
    }

    fn halves(mut self) -> (Group, Group) {
        let second_parts = self.parts.split_off(self.parts.len() / 2);
        let first_rows: usize = self.parts.iter().map(|part| part.spans).sum();
        let second_spans = self.spans.split_off(first_rows);
        (
            self,
            Group {
                spans: second_spans,
                parts: second_parts,
            },
        )
    }

    /// Leaves out the spans `stored` says are stored, keeping each part's count; returns
    /// how many.
    fn leave_out(&mut self, stored: impl Fn(&PackedSpan) -> bool) -> usize {
        let before = self.spans.len();
        let mut spans = std::mem::take(&mut self.spans).into_iter();
        let mut kept = Vec::with_capacity(before);
        for part in &mut self.parts {
            let mut count = 0;
            for span in spans.by_ref().take(part.spans) {
                if !stored(&span) {
                    kept.push(span);
                    count += 1;
                }
            }
            part.spans = count;
        }
        self.spans = kept;
        before - self.spans.len()
    }

    fn tell(self, written: impl Fn() -> Written) {
        for part in self.parts {
            let _ = part.written.send(written());
        }
    }
}

/// How one attempt to store a group ended.
enum Attempt {
    Stored,
    Refused(String),
    /// Shutdown's grace period ran out; the messages are left for redelivery.
    GaveUp,
}

/// The INSERTs of a group, in order: its spans are counted once they are stored (and
/// so findable: ClickHouse indexes their traces as it stores them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Spans,
    SpanMetrics,
    ServiceEdges,
}

impl Step {
    fn next(self) -> Option<Step> {
        match self {
            Step::Spans => Some(Step::SpanMetrics),
            Step::SpanMetrics => Some(Step::ServiceEdges),
            Step::ServiceEdges => None,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Step::Spans => "spans",
            Step::SpanMetrics => table_of::<SpanMetricRow>(),
            Step::ServiceEdges => table_of::<ServiceEdgeRow>(),
        }
    }
}

fn table_of<R: MetricRow>() -> &'static str {
    R::TABLE
}

impl Writer {
    /// One timed INSERT.
    async fn timed(
        &self,
        table: &'static str,
        insert: impl Future<Output = Result<(), ClickHouseError>>,
    ) -> Result<(), ClickHouseError> {
        let labels = TableLabels { table };
        let started = Instant::now();
        let result = insert.await;
        match &result {
            Ok(()) => self
                .metrics
                .write_seconds
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => {
                self.metrics.write_failures.get_or_create(&labels).inc();
            }
        }
        result
    }

    /// Writes the batch, isolating requests ClickHouse refuses for their data.
    async fn flush(&self, batch: Vec<WriteRequest>) {
        if batch.is_empty() {
            return;
        }
        let mut groups = vec![Group::of(batch)];
        while let Some(mut group) = groups.pop() {
            match self.store_group(&mut group).await {
                Attempt::Stored => group.tell(|| Written::Stored),
                Attempt::Refused(reason) if group.parts.len() == 1 => {
                    self.metrics.requests_refused.inc();
                    tracing::error!(spans = group.spans.len(), %reason, "clickhouse refuses a message's spans");
                    group.tell(|| Written::Refused(reason.clone()));
                }
                Attempt::Refused(_) => {
                    let (first, second) = group.halves();
                    groups.push(second);
                    groups.push(first);
                }
                // Dropping the senders leaves every unwritten message for redelivery.
                Attempt::GaveUp => return,
            }
        }
    }

    /// Writes spans, their trace index rows, then their metrics, retrying what may
    /// succeed later; after shutdown, retries only for the grace period. Once a step has
    /// succeeded, a retry goes on from the next one; a step whose INSERT lost its answer
    /// (it may have been applied, or still be running) waits for that INSERT to end and
    /// leaves out what it stored, so nothing is stored twice.
    async fn store_group(&self, group: &mut Group) -> Attempt {
        let mut step = Step::Spans;
        // The current step's INSERT whose answer was lost: it may have stored its rows.
        let mut lost: Option<String> = None;
        let mut delay = Duration::from_millis(100);
        let mut give_up_at: Option<Instant> = None;
        loop {
            // After a lost metrics INSERT, every message it counted is looked up.
            let every_part = lost.is_some();
            let result = match self.leave_out_lost(step, &mut lost, group).await {
                Err(error) => Err(error),
                Ok(()) => {
                    let query_id =
                        format!("weft-{}-{}", step.table(), uuid::Uuid::new_v4().simple());
                    let result = match step {
                        // A group may hold metrics only (of messages whose traces wait for
                        // their decision), or spans only (of decided traces).
                        Step::Spans if group.spans.is_empty() => Ok(()),
                        Step::Spans => {
                            self.timed(
                                "spans",
                                self.store.insert_packed_spans(&group.spans, &query_id),
                            )
                            .await
                        }
                        Step::SpanMetrics => {
                            self.count_once::<SpanMetricRow>(
                                &mut group.parts,
                                every_part,
                                &query_id,
                            )
                            .await
                        }
                        Step::ServiceEdges => {
                            self.count_once::<ServiceEdgeRow>(
                                &mut group.parts,
                                every_part,
                                &query_id,
                            )
                            .await
                        }
                    };
                    if let Err(error) = &result
                        && error.refused_rows().is_none()
                    {
                        lost = Some(query_id);
                    }
                    result
                }
            };
            match result {
                Ok(()) => match step.next() {
                    Some(next) => {
                        step = next;
                        continue;
                    }
                    None => break,
                },
                Err(error) => {
                    if step == Step::Spans
                        && let Some(reason) = error.refused_rows()
                    {
                        return Attempt::Refused(reason);
                    }
                    tracing::warn!(%error, table = step.table(), spans = group.spans.len(), retry_in = ?delay, "clickhouse write failed");
                }
            }
            if self.shutdown.is_cancelled() {
                let give_up = *give_up_at.get_or_insert_with(|| Instant::now() + self.grace);
                if Instant::now() >= give_up {
                    tracing::warn!(
                        spans = group.spans.len(),
                        "shutting down with an unwritten batch; it will be redelivered"
                    );
                    return Attempt::GaveUp;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        if !group.spans.is_empty() {
            self.metrics.spans_written.inc_by(group.spans.len() as u64);
            self.metrics.batch_spans.observe(group.spans.len() as f64);
        }
        tracing::debug!(
            spans = group.spans.len(),
            messages = group.parts.len(),
            "batch written"
        );
        Attempt::Stored
    }

    /// After an INSERT of `step` lost its answer: waits for it to end, then leaves out
    /// the spans it stored (the metrics steps look up every message they count instead,
    /// see [`Self::count_once`]).
    async fn leave_out_lost(
        &self,
        step: Step,
        lost: &mut Option<String>,
        group: &mut Group,
    ) -> Result<(), ClickHouseError> {
        let Some(query_id) = lost.as_deref() else {
            return Ok(());
        };
        self.store
            .await_query_end(query_id, INSERT_END_WAIT)
            .await?;
        match step {
            Step::Spans => {
                let stored = stored_spans(&self.store, group.spans.iter()).await?;
                let left_out = group.leave_out(|span| stored.holds(span));
                if left_out > 0 {
                    self.metrics.spans_already_stored.inc_by(left_out as u64);
                    tracing::info!(
                        spans = left_out,
                        "spans of an INSERT whose answer was lost are stored"
                    );
                }
            }
            Step::SpanMetrics | Step::ServiceEdges => {}
        }
        *lost = None;
        Ok(())
    }

    /// Stores the parts' rows of table `R` as one INSERT, as the query `query_id`, leaving
    /// out the messages the table counts already. `every_part` says that an earlier
    /// INSERT of these rows lost its answer and may have stored them, so every part is
    /// looked up, not only redeliveries.
    async fn count_once<R: PartRows>(
        &self,
        parts: &mut [Part],
        every_part: bool,
        query_id: &str,
    ) -> Result<(), ClickHouseError> {
        self.leave_out_counted::<R>(parts, every_part).await?;
        let counting = parts.iter().filter(|p| R::rows(p).is_some()).count();
        if counting == 0 {
            return Ok(());
        }
        let rows = R::combine(parts.iter().flat_map(with_markers::<R>));
        match self
            .timed(R::TABLE, self.store.insert_metrics(&rows, query_id))
            .await
        {
            Ok(()) => {
                self.stored::<R>(parts.iter_mut(), rows.len());
                Ok(())
            }
            Err(error) => match error.refused_rows() {
                None => Err(error),
                // Rows Weft built itself; should ClickHouse refuse some, the others of
                // the batch are still stored, message by message (one INSERT after the
                // other under the same query id: only the last can have lost its answer,
                // and waiting for the id waits for it).
                Some(_) if counting > 1 => {
                    for part in parts.iter_mut() {
                        if R::rows(part).is_none() {
                            continue;
                        }
                        let rows = R::combine(with_markers::<R>(part));
                        match self
                            .timed(R::TABLE, self.store.insert_metrics(&rows, query_id))
                            .await
                        {
                            Ok(()) => self.stored::<R>(std::iter::once(&mut *part), rows.len()),
                            Err(error) => match error.refused_rows() {
                                Some(reason) => self.refused::<R>(part, &reason),
                                None => return Err(error),
                            },
                        }
                    }
                    Ok(())
                }
                Some(reason) => {
                    for part in parts.iter_mut() {
                        if R::rows(part).is_some() {
                            self.refused::<R>(part, &reason);
                        }
                    }
                    Ok(())
                }
            },
        }
    }

    fn stored<'p, R: PartRows>(&self, parts: impl Iterator<Item = &'p mut Part>, rows: usize) {
        for part in parts {
            *R::of(part) = None;
        }
        let labels = TableLabels { table: R::TABLE };
        self.metrics
            .metric_rows_written
            .get_or_create(&labels)
            .inc_by(rows as u64);
    }

    fn refused<R: PartRows>(&self, part: &mut Part, reason: &str) {
        let rows = R::of(part).take().map_or(0, |rows| rows.len());
        let labels = TableLabels { table: R::TABLE };
        self.metrics
            .metric_rows_refused
            .get_or_create(&labels)
            .inc_by(rows as u64);
        tracing::error!(table = R::TABLE, tenant_id = %part.tenant, rows, %reason, "clickhouse refuses a message's metrics; they are dropped");
    }

    /// Takes out the rows of parts whose message table `R` counts already: a message
    /// delivered again after its metrics were stored (a crash before the acknowledgement,
    /// or a lost one), or with `every_part`, any message of the batch.
    async fn leave_out_counted<R: PartRows>(
        &self,
        parts: &mut [Part],
        every_part: bool,
    ) -> Result<(), ClickHouseError> {
        let labels = TableLabels { table: R::TABLE };
        let mut seen = HashSet::new();
        let mut suspects: HashMap<TenantId, Vec<usize>> = HashMap::new();
        for (index, part) in parts.iter_mut().enumerate() {
            let MessageRef {
                sequence,
                redelivered,
            } = part.message;
            let rows = R::of(part);
            if rows.as_ref().is_none_or(Vec::is_empty) {
                *rows = None;
                continue;
            }
            if sequence == 0 {
                continue;
            }
            // The same message twice in one batch (delivered again while its first copy
            // waited here): the first copy counts it.
            if !seen.insert(sequence) {
                *rows = None;
                self.metrics
                    .messages_already_counted
                    .get_or_create(&labels)
                    .inc();
                continue;
            }
            if redelivered || every_part {
                suspects.entry(part.tenant).or_default().push(index);
            }
        }
        for (tenant, indices) in suspects {
            let messages: Vec<u64> = indices.iter().map(|&i| parts[i].message.sequence).collect();
            let minutes = bounds(
                indices
                    .iter()
                    .flat_map(|&i| R::rows(&parts[i]).iter().flatten().map(R::minute)),
            );
            let counted = self
                .store
                .tenant(tenant)
                .counted_messages::<R>(&messages, minutes)
                .await?;
            for index in indices {
                if counted.contains(&parts[index].message.sequence) {
                    *R::of(&mut parts[index]) = None;
                    self.metrics
                        .messages_already_counted
                        .get_or_create(&labels)
                        .inc();
                    tracing::info!(table = R::TABLE, tenant_id = %tenant, message = parts[index].message.sequence, "metrics of a redelivered message are counted already");
                }
            }
        }
        Ok(())
    }
}

/// Spans the store holds, by tenant, trace and span id.
#[derive(Default)]
pub(crate) struct StoredSpans(HashSet<(uuid::Uuid, [u8; 16], [u8; 8])>);

impl StoredSpans {
    pub(crate) fn holds(&self, span: &PackedSpan) -> bool {
        self.0
            .contains(&(span.tenant_id(), span.trace_id(), span.span_id()))
    }
}

/// Spans of `spans` that the store holds: one look-up per tenant, over the traces of its
/// spans and the seconds they start in.
pub(crate) async fn stored_spans<'s>(
    store: &ClickHouse,
    spans: impl Iterator<Item = &'s PackedSpan>,
) -> Result<StoredSpans, ClickHouseError> {
    let mut stored = StoredSpans::default();
    for (tenant, spans) in by_tenant(spans, |span| span.tenant_id()) {
        let mut traces: Vec<[u8; 16]> = spans.iter().map(|span| span.trace_id()).collect();
        traces.sort_unstable();
        traces.dedup();
        let seconds = bounds(spans.iter().map(|span| span.start_time()));
        let found = store.tenant(tenant).stored_spans(&traces, seconds).await?;
        stored.0.extend(
            found
                .into_iter()
                .map(|span| (tenant.as_uuid(), span.trace_id, span.span_id)),
        );
    }
    Ok(stored)
}

/// Items grouped by tenant.
fn by_tenant<'i, T>(
    items: impl Iterator<Item = &'i T>,
    tenant: impl Fn(&T) -> uuid::Uuid,
) -> HashMap<TenantId, Vec<&'i T>> {
    let mut by_tenant: HashMap<TenantId, Vec<&T>> = HashMap::new();
    for item in items {
        by_tenant
            .entry(TenantId::new(tenant(item)))
            .or_default()
            .push(item);
    }
    by_tenant
}

/// The first and last of some seconds (or minutes).
fn bounds(times: impl Iterator<Item = u32>) -> (u32, u32) {
    times.fold((u32::MAX, 0), |(first, last), time| {
        (first.min(time), last.max(time))
    })
}

/// A part's unstored rows of table `R` and, for each minute they fall in, the marker
/// saying that the minute counts the part's message (unless the message is unknown, and
/// so never looked up).
fn with_markers<R: PartRows>(part: &Part) -> Vec<R> {
    let Some(rows) = R::rows(part) else {
        return Vec::new();
    };
    let mut markers: Vec<R> = Vec::new();
    if part.message.sequence != 0 {
        for row in rows {
            if markers.iter().all(|m| m.minute() != row.minute()) {
                markers.push(row.marker(part.message.sequence));
            }
        }
    }
    let mut all = rows.clone();
    all.extend(markers);
    all
}

async fn run(
    writer: Writer,
    config: WriterConfig,
    mut requests_rx: mpsc::Receiver<Vec<WriteRequest>>,
) {
    let mut pending: Vec<WriteRequest> = Vec::new();
    let mut pending_spans = 0usize;
    let mut deadline = Instant::now();
    loop {
        let flush_due = tokio::select! {
            requests = requests_rx.recv() => match requests {
                Some(requests) => {
                    if pending.is_empty() {
                        deadline = Instant::now() + config.flush_interval;
                    }
                    pending_spans += requests.iter().map(|r| r.spans.len()).sum::<usize>();
                    pending.extend(requests);
                    pending_spans >= config.max_batch_spans
                }
                None => {
                    writer.flush(std::mem::take(&mut pending)).await;
                    return;
                }
            },
            _ = tokio::time::sleep_until(deadline), if !pending.is_empty() => true,
            _ = writer.shutdown.cancelled(), if !pending.is_empty() => true,
        };
        if flush_due {
            writer.flush(std::mem::take(&mut pending)).await;
            pending_spans = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The write request of message `sequence`: one span, its metrics and one call.
    fn request(
        tenant: TenantId,
        sequence: u64,
        redelivered: bool,
    ) -> (WriteRequest, oneshot::Receiver<Written>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        let mut span = crate::red::tests::span(
            (sequence as u8, 2, 1),
            ("payments", "POST /charge", 2),
            (now, 40, false),
        );
        span.tenant_id = tenant.as_uuid();
        let mut parent = span.clone();
        (parent.span_id, parent.parent_span_id, parent.service_name) =
            ([1; 8], [0; 8], "checkout".into());
        let mut calls = crate::edges::CallTracker::new(Duration::from_secs(60), 100);
        let edges = calls.observe(std::time::Instant::now(), &[parent, span.clone()]);
        let (written, written_rx) = oneshot::channel();
        let request = WriteRequest {
            message: MessageRef {
                sequence,
                redelivered,
            },
            tenant,
            span_metrics: crate::red::span_metrics(std::slice::from_ref(&span)),
            spans: vec![PackedSpan::from_row(&span)],
            edges,
            written,
        };
        (request, written_rx)
    }

    fn clickhouse_url() -> String {
        std::env::var("WEFT_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
    }

    fn test_store(url: String, database: &str) -> ClickHouse {
        ClickHouse::new(weft_storage::clickhouse::ClickHouseConfig {
            url,
            database: database.to_owned(),
            ..Default::default()
        })
    }

    /// A TCP proxy in front of ClickHouse that, once for each of `markers`, lets the
    /// request whose bytes hold it through and closes the connection instead of passing
    /// on ClickHouse's answer: an INSERT applied whose answer the writer never gets.
    struct AnswerDropper {
        url: String,
        dropped: Arc<Mutex<Vec<&'static str>>>,
    }

    impl AnswerDropper {
        async fn start(upstream: &str, markers: &'static [&'static str]) -> AnswerDropper {
            let upstream = upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let dropped: Arc<Mutex<Vec<&'static str>>> = Arc::default();
            let shared = dropped.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                    tokio::spawn(Self::relay(client, server, markers, shared.clone()));
                }
            });
            AnswerDropper { url, dropped }
        }

        async fn relay(
            client: tokio::net::TcpStream,
            server: tokio::net::TcpStream,
            markers: &'static [&'static str],
            dropped: Arc<Mutex<Vec<&'static str>>>,
        ) {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            // The marker of the request on its way, whose answer is to be dropped.
            let armed: Arc<Mutex<Option<&'static str>>> = Arc::default();
            let arming = armed.clone();
            let requests = async move {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buffer[..read]);
                    for marker in markers {
                        if text.contains(marker) && !dropped.lock().unwrap().contains(marker) {
                            dropped.lock().unwrap().push(marker);
                            *arming.lock().unwrap() = Some(marker);
                        }
                    }
                    if server_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            };
            let answers = async move {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(read) = server_read.read(&mut buffer).await {
                    if read == 0 || armed.lock().unwrap().is_some() {
                        // The answer to the armed request: dropped with the connection.
                        break;
                    }
                    if client_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                () = requests => {}
                () = answers => {}
            }
        }

        fn dropped(&self) -> Vec<&'static str> {
            self.dropped.lock().unwrap().clone()
        }
    }

    fn writer_config() -> WriterConfig {
        WriterConfig {
            flush_interval: Duration::from_millis(50),
            max_batch_spans: 1000,
            shutdown_grace: Duration::from_secs(1),
        }
    }

    /// ClickHouse applies the INSERTs of spans (with their trace index rows) and of their
    /// metrics, but the writer never gets the answers: it waits for each to end, finds
    /// what it stored, and stores nothing twice.
    #[tokio::test]
    async fn an_insert_whose_answer_is_lost_is_stored_once() {
        const MARKERS: &[&str] = &[
            "INTO+spans%28",
            "INTO+%60span_metrics%60",
            "INTO+%60service_edges%60",
        ];
        let database = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
        let direct = test_store(clickhouse_url(), &database);
        direct.migrate().await.unwrap();
        let proxy = AnswerDropper::start(&clickhouse_url(), MARKERS).await;
        let metrics = SamplerMetrics::default();
        let (requests_tx, writer) = spawn(
            test_store(proxy.url.clone(), &database),
            writer_config(),
            metrics.clone(),
            CancellationToken::new(),
        );
        let tenant = TenantId::random();
        let mut waiting = Vec::new();
        let mut requests = Vec::new();
        for sequence in 1..=3 {
            let (request, written_rx) = request(tenant, sequence, false);
            requests.push(request);
            waiting.push(written_rx);
        }
        requests_tx.send(requests).await.unwrap();
        for written_rx in waiting {
            assert_eq!(written_rx.await.unwrap(), Written::Stored);
        }
        drop(requests_tx);
        writer.await.unwrap();
        assert_eq!(proxy.dropped(), MARKERS, "each INSERT lost its answer once");

        let counts = direct.tenant(tenant).stored_counts().await.unwrap();
        assert_eq!(
            (counts.spans, counts.distinct_spans, counts.indexed_spans),
            (3, 3, 3)
        );
        let window = weft_storage::clickhouse::MetricsWindow {
            start_unix_nano: 0,
            end_unix_nano: u64::from(u32::MAX) * 1_000_000_000,
        };
        let red = direct.tenant(tenant).service_red(window).await.unwrap();
        assert_eq!(red[0].spans, 3, "each message counted once");
        let edges = direct.tenant(tenant).service_edges(window).await.unwrap();
        assert_eq!(edges[0].calls, 3, "each call counted once");
        assert_eq!(metrics.spans_already_stored.get(), 3);
        for table in ["span_metrics", "service_edges"] {
            let counted = metrics
                .messages_already_counted
                .get_or_create(&TableLabels { table })
                .get();
            assert_eq!(counted, 3, "{table}: every message found counted");
        }
        direct.drop_database().await.unwrap();
    }

    /// Against the ClickHouse of `WEFT_TEST_CLICKHOUSE_URL`, in a database of its own.
    #[tokio::test]
    async fn a_message_is_counted_once_however_often_it_is_written() {
        let database = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
        let store = test_store(clickhouse_url(), &database);
        store.migrate().await.unwrap();
        let metrics = SamplerMetrics::default();
        let (requests_tx, writer) = spawn(
            store.clone(),
            writer_config(),
            metrics.clone(),
            CancellationToken::new(),
        );
        let tenant = TenantId::random();
        let send = async |requests: Vec<(u64, bool)>| {
            let mut waiting = Vec::new();
            for (sequence, redelivered) in requests {
                let (request, written_rx) = request(tenant, sequence, redelivered);
                requests_tx.send(vec![request]).await.unwrap();
                waiting.push(written_rx);
            }
            for written_rx in waiting {
                assert_eq!(written_rx.await.unwrap(), Written::Stored);
            }
        };
        // Message 7 and, in the same batch, a copy delivered again; then message 8.
        send(vec![(7, false), (7, true), (8, false)]).await;
        // Both delivered again later (a sampler died before acknowledging them), with
        // message 9, which is new although delivered before (its first delivery stored
        // nothing).
        send(vec![(8, true), (7, true), (9, true)]).await;
        drop(requests_tx);
        writer.await.unwrap();

        let window = weft_storage::clickhouse::MetricsWindow {
            start_unix_nano: 0,
            end_unix_nano: u64::from(u32::MAX) * 1_000_000_000,
        };
        let red = store.tenant(tenant).service_red(window).await.unwrap();
        assert_eq!(red.len(), 1);
        assert_eq!(red[0].spans, 3, "messages 7, 8 and 9, once each");
        let edges = store.tenant(tenant).service_edges(window).await.unwrap();
        assert_eq!(edges[0].calls, 3);
        let counted = |table: &'static str| {
            metrics
                .messages_already_counted
                .get_or_create(&TableLabels { table })
                .get()
        };
        assert_eq!(counted("span_metrics"), 3, "7 in the batch, 7 and 8 later");
        assert_eq!(counted("service_edges"), 3);
        store.drop_database().await.unwrap();
    }
}
