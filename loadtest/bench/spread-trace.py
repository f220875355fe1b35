#!/usr/bin/env python3
"""Sends one large trace to ingest over OTLP/HTTP JSON, in batches spread over time, so that
its spans are stored in many parts, as a long-running job's trace is.

    loadtest/bench/spread-trace.py SPANS [SPREAD_S] [BATCHES] [PAUSE_S]

SPANS spans (one root and its children, three levels deep) with start times spread evenly
over the SPREAD_S seconds (default 3600) that end now; the root spans all of them and is
sent first, so the sampler keeps the trace as slow. The rest follow in BATCHES requests
(default 60), PAUSE_S seconds apart (default 5): run it beside a load so other spans are
written between the batches. Prints the trace id. Key: WEFT_DEMO_INGEST_KEY (.weft/demo.env).
"""
import json, os, random, sys, time, urllib.error, urllib.request

spans_n = int(sys.argv[1])
spread = float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 60
pause = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
key = os.environ["WEFT_DEMO_INGEST_KEY"]
url = os.environ.get("WEFT_INGEST_URL", "http://127.0.0.1:4318") + "/v1/traces"

rng = random.SystemRandom()
trace_id = "%032x" % rng.getrandbits(128)
end = time.time_ns()
start = end - int(spread * 1e9)
step = (end - start) // max(spans_n, 1)
services = ["batch-scheduler", "report-builder", "warehouse", "mailer"]


def span_id():
    return "%016x" % (rng.getrandbits(63) | 1)


root = span_id()
spans = []
parents = [root]
for i in range(1, spans_n):
    s = start + i * step
    parent = parents[rng.randrange(len(parents))] if len(parents) < 200 or i % 3 else root
    sid = span_id()
    if len(parents) < 200:
        parents.append(sid)
    spans.append({
        "traceId": trace_id, "spanId": sid, "parentSpanId": parent,
        "name": "process chunk %d" % (i % 50), "kind": 1,
        "startTimeUnixNano": str(s), "endTimeUnixNano": str(s + step // 2),
        "attributes": [{"key": "chunk", "value": {"intValue": str(i)}},
                       {"key": "job.name", "value": {"stringValue": "nightly-report"}}],
        "_service": services[i % len(services)],
    })


def send(batch):
    by_service = {}
    for span in batch:
        by_service.setdefault(span.pop("_service"), []).append(span)
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
        "scopeSpans": [{"scope": {"name": "spread-trace"}, "spans": group}],
    } for name, group in by_service.items()]}
    data = json.dumps(body).encode()
    # Ingest answers 503 or 429 with Retry-After while the bus is full or the tenant over
    # its rate (a load beside this one can do both), or refuses the connection while it
    # restarts: wait and send again, as SDKs do.
    for attempt in range(120):
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "content-type": "application/json", "x-api-key": key})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()
            return
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503):
                raise
            time.sleep(float(error.headers.get("retry-after") or 1))
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)  # ingest restarting beside the run: try again
    raise SystemExit("ingest kept refusing the batch")


send([{"traceId": trace_id, "spanId": root, "name": "nightly report", "kind": 2,
       "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
       "_service": services[0]}])
per = -(-len(spans) // batches) if spans else 0
for b in range(batches):
    chunk = spans[b * per:(b + 1) * per]
    if chunk:
        time.sleep(pause)
        send(chunk)
print(trace_id)
