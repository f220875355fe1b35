"""Emits log lines through OpenTelemetry Python's logging handler, inside active spans,
configured only by the standard OTEL_* variables (OTEL_EXPORTER_OTLP_PROTOCOL picks the
exporter, as the SDK's auto-configuration does). Prints what a reader must find as JSON:
the trace id and, per message, the span id it was logged under ("" outside any span)."""

import json
import logging
import os

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

resource = Resource.create()  # service.name from OTEL_SERVICE_NAME
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
set_logger_provider(logger_provider)

log = logging.getLogger("checkout")
log.setLevel(logging.DEBUG)
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider))

tracer = trace.get_tracer("weft-e2e")
seen = {}
with tracer.start_as_current_span("POST /checkout") as root:
    log.info("checkout started")
    seen["checkout started"] = format(root.get_span_context().span_id, "016x")
    with tracer.start_as_current_span("charge card") as child:
        log.warning("card declined, retrying", extra={"customer": "O'Brien", "attempt": 2})
        seen["card declined, retrying"] = format(child.get_span_context().span_id, "016x")
    trace_id = format(root.get_span_context().trace_id, "032x")
log.error("nightly report failed")
seen["nightly report failed"] = ""

tracer_provider.shutdown()
logger_provider.shutdown()
print(json.dumps({"trace_id": trace_id, "spans": seen}))
