/* SPDX-License-Identifier: MIT */
/* placeholder until the viewer lands */
#include <stdio.h>
#include "viewer.h"
int fl_cmd_report(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int fl_cmd_vmas(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int fl_cmd_stacks(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int fl_cmd_sql(int argc, char **argv) { (void)argc; (void)argv; return 1; }
