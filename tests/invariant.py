# SPDX-License-Identifier: MIT
"""The invariant every recording must satisfy (docs/faults.md, "Totals"):
for every process, min_flt + maj_flt = classified + before + gup.

Every suite's record helper calls check_recording() on what it recorded, so
the invariant is checked at the end of every test run that makes a recording,
by the same code users run (`faultline report --format json`, totals_match).
"""
import json
import os
import subprocess


def check_recording(faultline, db, explained_by=()):
    """Raise AssertionError when a process of db breaks the invariant.
    explained_by: loss causes (each counting faults) that a test provokes on
    purpose; the faults missing from the classes must then be exactly theirs.
    A recording that could not be written (a test of bad input or a full
    disk) has nothing to check."""
    if not os.path.exists(db):
        return
    p = subprocess.run([faultline, "report", "--all", "--format", "json", db], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        return  # not a recording (the test made it fail on purpose); its own checks say so
    rep = json.loads(p.stdout)
    bad, missing = [], 0
    for proc in rep["processes"]:
        f = proc.get("faults")
        if f and f.get("totals_match") is False:
            miss = proc["min_flt"] + proc["maj_flt"] - f["total"] - f["before_tracking"] - f["get_user_pages"]
            missing += miss
            bad.append("pid %d (%s): min_flt %d + maj_flt %d != %d classified + %d before + %d gup"
                       % (proc["pid"], proc["exe"], proc["min_flt"], proc["maj_flt"], f["total"],
                          f["before_tracking"], f["get_user_pages"]))
    explained = sum(l["count"] for l in rep["losses"] if l["cause"] in explained_by)
    if bad and missing != explained:
        raise AssertionError("%s: the totals do not add up (losses: %s)\n  %s"
                             % (db, rep.get("losses"), "\n  ".join(bad)))
