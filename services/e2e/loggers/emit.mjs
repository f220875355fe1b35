// Writes log lines to stdout through pino, winston and bunyan, configured as their
// documentation shows, one line with the given trace and span ids and one without per
// logger. Usage: node emit.mjs TRACE_ID SPAN_ID
import bunyan from "bunyan";
import pino from "pino";
import winston from "winston";

const [traceId, spanId] = process.argv.slice(2);

const p = pino({ name: "shop-pino" }, pino.destination({ sync: true }));
p.child({ trace_id: traceId, span_id: spanId }).info({ order: { id: 7, total: 12.5 } }, "order placed");
p.debug("not logged: below pino's default level");
p.warn("pino without ids");

const w = winston.createLogger({
  level: "info",
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  defaultMeta: { service: "shop-winston" },
  transports: [new winston.transports.Console()],
});
w.warn("stock low", { traceId, spanId, sku: "A1" });
w.info("winston without ids");

const b = bunyan.createLogger({ name: "shop-bunyan" });
b.error({ trace: { id: traceId }, span: { id: spanId }, card: "visa" }, "payment failed");
b.info("bunyan without ids");

// winston's console transport writes asynchronously; let it finish before exiting.
w.on("finish", () => process.exit(0));
w.end();
