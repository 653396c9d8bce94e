#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn schema.sql into a C header: the SQL as a string, and its version
(the PRAGMA user_version line) as FL_SCHEMA_VERSION, so the schema's text and
its version live in one file."""
import re
import sys

src, dst = sys.argv[1], sys.argv[2]
sql = open(src, encoding="utf-8").read()
m = re.search(r"^PRAGMA user_version\s*=\s*(\d+);", sql, re.M)
if not m:
    sys.exit(f"{src}: no 'PRAGMA user_version = N;' line")
m2 = re.search(r"^PRAGMA application_id\s*=\s*(\d+);", sql, re.M)
if not m2:
    sys.exit(f"{src}: no 'PRAGMA application_id = N;' line")
def c_string(lines):
    return "\n".join('"%s\\n"' % l.replace("\\", "\\\\").replace('"', '\\"') for l in lines) or '""'


# Indexes are built when a recording ends: maintaining them on every insert
# would slow the recorder down while the target runs.
lines = sql.splitlines()
body = c_string(l for l in lines if not l.startswith("CREATE INDEX"))
indexes = c_string(l for l in lines if l.startswith("CREATE INDEX"))
with open(dst, "w", encoding="utf-8") as f:
    f.write("/* Generated from common/schema.sql by embed_schema.py; do not edit. */\n")
    f.write("#ifndef FL_SCHEMA_H\n#define FL_SCHEMA_H\n")
    f.write(f"#define FL_SCHEMA_VERSION {m.group(1)}\n")
    f.write(f"#define FL_APPLICATION_ID {m2.group(1)}\n")
    f.write(f"static const char fl_schema_sql[] =\n{body};\n")
    f.write(f"static const char fl_schema_indexes_sql[] =\n{indexes};\n#endif\n")
