/* SPDX-License-Identifier: MIT */
/* shimdec.h - decoding the records of the shim channel into the ingest. */
#ifndef FL_SHIMDEC_H
#define FL_SHIMDEC_H

#include <linux/types.h>

#include "faultline.h"

/* A record from the shim channel; ingest is the struct fl_ingest (matches fl_channel_fn). */
void fl_shimdec_record(void *ingest, const struct fl_rec *rec);

#endif /* FL_SHIMDEC_H */
