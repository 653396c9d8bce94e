/* SPDX-License-Identifier: MIT */
/*
 * faults.h - BPF fault counts and fault sites (ingest is the struct
 * fl_ingest), held until the VMA rows they belong to are known.
 */
#ifndef FL_FAULTS_H
#define FL_FAULTS_H

#include <linux/types.h>
#include <stdbool.h>

#include "faultline.h"

struct fl_ingest;

/* Records drained from BPF's maps (match struct fl_bpf_ops). */
void fl_faults_add(void *ingest, const struct fl_fault_key *k, const struct fl_fault_counts *c);
void fl_faults_add_site(void *ingest, const struct fl_site_key *k, __u64 count);

/*
 * Attribute the fault counts read (at read_ns) since the last call to
 * VMAs.  Call it after consuming the BPF records written up to that read.
 * Counts of an exec whose record is not read yet wait for a later call,
 * unless this is the last one: what fits no VMA then is lost.
 */
void fl_faults_attribute(struct fl_ingest *g, __u64 read_ns, bool last);

void fl_faults_free(struct fl_ingest *g);

#endif /* FL_FAULTS_H */
