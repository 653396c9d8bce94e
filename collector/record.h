/* SPDX-License-Identifier: MIT */
/* record.h - `faultline record`: launch a command and record it into a store. */
#ifndef FL_RECORD_H
#define FL_RECORD_H

/* argv[0] is "record". Returns the target's exit status (128+N for signal N), or 1/2/127 on error. */
int fl_cmd_record(int argc, char **argv);

#endif
