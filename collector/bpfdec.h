/* SPDX-License-Identifier: MIT */
/*
 * bpfdec.h - decoding BPF's records (they match struct fl_bpf_ops; ingest
 * is the struct fl_ingest).  Fault counts go to faults.h.
 */
#ifndef FL_BPFDEC_H
#define FL_BPFDEC_H

#include <linux/types.h>

#include "faultline.h"

void fl_bpfdec_call(void *ingest, const struct fl_call *c);
void fl_bpfdec_task(void *ingest, const struct fl_task *t);
void fl_bpfdec_rss(void *ingest, const struct fl_rss *r);
void fl_bpfdec_vma(void *ingest, const struct fl_vma_rec *v);

#endif /* FL_BPFDEC_H */
