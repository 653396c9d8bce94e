/* SPDX-License-Identifier: MIT */
/* shimmaps.c - assembling the shim's mapping snapshots (see shimmaps.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shimmaps.h"
#include "strtab.h"

void fl_shimmaps_begin(struct fl_shimmaps *s, __u32 nmappings, __u32 flags, __u64 time_ns)
{
	free(s->v);
	s->v = calloc(nmappings ? nmappings : 1, sizeof(*s->v));
	s->n = 0;
	s->want = nmappings;
	s->flags = flags;
	s->time_ns = time_ns;
}

bool fl_shimmaps_add(struct fl_shimmaps *s, const struct fl_mapping *m)
{
	if (!s->v || s->n >= s->want)
		return false;
	struct fl_vma *v = &s->v[s->n++];
	memset(v, 0, sizeof(*v));
	v->start = m->start;
	v->end = m->end;
	v->offset = m->offset;
	v->inode = m->inode;
	v->prot = m->prot;
	v->flags = (m->flags & FL_MAP_SHARED) ? MAP_SHARED : MAP_PRIVATE;
	if (!m->inode && !m->path[0])
		v->flags |= MAP_ANONYMOUS;
	v->kind = fl_model_kind(m->path, v->flags);
	v->path = m->path[0] ? fl_strtab_intern(m->path) : NULL;
	if (!m->inode && m->path[0] != '/')
		v->offset = 0;
	return s->n == s->want;
}

void fl_shimmaps_keep(struct fl_shimmaps *s)
{
	free(s->last);
	s->last = s->v;
	s->nlast = s->n;
	s->last_ns = s->time_ns;
	s->v = NULL;
	s->want = s->n = 0;
}

void fl_shimmaps_free(struct fl_shimmaps *s)
{
	free(s->v);
	free(s->last);
	memset(s, 0, sizeof(*s));
}
