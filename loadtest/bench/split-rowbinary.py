#!/usr/bin/env python3
"""Splits a RowBinary dump of weft.logs into files of BATCH rows each, so that each file
is exactly what one INSERT of the sampler carries. RowBinary has no row delimiter: each
row is read field by field by the table's column types (migrations/clickhouse/0004).

    split-rowbinary.py DUMP BATCH OUT_PREFIX   -> OUT_PREFIX.0, OUT_PREFIX.1, ...; prints the count
"""
import sys

# The columns of `logs` in order: fixed sizes in bytes, "s" a String, "a" an Array(String).
LOGS = [16, 4, 8, 8, 16, 8, 1, "s", "s", "s", "s", "s", "a", "a", "a", "a", 8, 4]


def varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def row_end(data, pos):
    for column in LOGS:
        if column == "s":
            size, pos = varint(data, pos)
            pos += size
        elif column == "a":
            items, pos = varint(data, pos)
            for _ in range(items):
                size, pos = varint(data, pos)
                pos += size
        else:
            pos += column
    return pos


def main():
    dump, batch, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = open(dump, "rb").read()
    pos = start = rows = files = 0
    while pos < len(data):
        pos = row_end(data, pos)
        rows += 1
        if rows == batch or pos == len(data):
            with open(f"{prefix}.{files}", "wb") as out:
                out.write(data[start:pos])
            files += 1
            start, rows = pos, 0
    print(files)


if __name__ == "__main__":
    main()
