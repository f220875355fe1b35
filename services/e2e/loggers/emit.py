"""Writes log lines to stdout through structlog and python-json-logger, configured as
their documentation shows, one line with the given trace and span ids and one without
per logger. Usage: python emit.py TRACE_ID SPAN_ID"""

import logging
import sys

import structlog
from pythonjsonlogger.json import JsonFormatter

trace_id, span_id = sys.argv[1:3]

structlog.configure(
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ],
    logger_factory=structlog.PrintLoggerFactory(sys.stdout),
)
log = structlog.get_logger().bind(service="shop-structlog")
log.info("cart emptied", trace_id=trace_id, span_id=span_id, items=3)
log.warning("structlog without ids")

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp=True))
std = logging.getLogger("shop-pjl")
std.addHandler(handler)
std.setLevel(logging.INFO)
std.error("refund refused", extra={"trace_id": trace_id, "span_id": span_id, "refund": {"amount": 5}})
std.info("python-json-logger without ids")
