"""Runs Weft's SQL catalogue on the current ClickHouse engine, in-process through chdb.

Driven by tests/clickhouse_compat.rs, which passes on stdin one JSON object:
    {"create_database": SQL, "database": NAME, "statements": [SQL, ...], "drop_database": SQL}
Every statement runs in order in one chdb session, inside that database. Prints one JSON
line with the engine's version, then one per statement:
    {"engine": "26.9.2.1"}
    {"index": 0, "accepted": true, "error": null, "result": "<hex of the RowBinary result>"}
RowBinary is the format the Rust client reads results in.
"""

import json
import sys

import chdb
from chdb import session


def run(session_, sql):
    try:
        result = session_.query(sql, "RowBinary")
    except Exception as error:  # chdb raises ChdbError, a RuntimeError, for rejected SQL
        return {"accepted": False, "error": str(error).strip(), "result": ""}
    return {"accepted": True, "error": None, "result": result.bytes().hex()}


def main():
    request = json.load(sys.stdin)
    print(json.dumps({"engine": chdb.engine_version}), flush=True)
    # Without a path the session keeps its databases in a temporary directory that it
    # removes when closed, so nothing is left behind even if the drop fails.
    with session.Session() as engine:
        engine.query(request["create_database"], "CSV")
        engine.query("USE `{}`".format(request["database"]), "CSV")
        for index, sql in enumerate(request["statements"]):
            print(json.dumps({"index": index, **run(engine, sql)}), flush=True)
        engine.query(request["drop_database"], "CSV")


if __name__ == "__main__":
    main()
