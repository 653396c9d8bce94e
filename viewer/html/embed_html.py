#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn viewer/html/report.html into a C header: the page before and after its
<!--DATA--> line, which `faultline html` replaces with the recording's data."""
import sys

src, dst = sys.argv[1], sys.argv[2]
page = open(src, encoding="utf-8").read()
head, sep, tail = page.partition("<!--DATA-->\n")
if not sep:
    sys.exit(f"{src}: no <!--DATA--> line")


def c_string(text):
    return "\n".join('"%s\\n"' % l.replace("\\", "\\\\").replace('"', '\\"') for l in text.splitlines()) or '""'


with open(dst, "w", encoding="utf-8") as f:
    f.write("/* Generated from viewer/html/report.html by embed_html.py; do not edit. */\n")
    f.write("#ifndef FL_REPORT_HTML_H\n#define FL_REPORT_HTML_H\n")
    f.write(f"static const char fl_html_head[] =\n{c_string(head)};\n")
    f.write(f"static const char fl_html_tail[] =\n{c_string(tail)};\n#endif\n")
