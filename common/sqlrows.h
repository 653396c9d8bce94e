/* SPDX-License-Identifier: MIT */
/*
 * sqlrows.h - one INSERT of many rows made from its one-row form: SQLite's
 * work per statement (the step, the halt, the resets) is paid once for them
 * all (the store's batches, the summaries' site rows).
 */
#ifndef FL_SQLROWS_H
#define FL_SQLROWS_H

#include <stdlib.h>
#include <string.h>

/* The INSERT of `rows` rows made from one of a row ("... VALUES(?,...,?)"), malloc'd, or NULL. */
static inline char *fl_sql_many_rows(const char *one, int rows)
{
	const char *values = strstr(one, "VALUES(");
	size_t head, group;
	char *sql, *o;

	if (!values || rows < 1)
		return NULL;
	head = (size_t)(values - one) + strlen("VALUES");
	group = strlen(values + strlen("VALUES"));
	if (!(sql = o = malloc(head + (size_t)rows * (group + 1) + 1)))
		return NULL;
	memcpy(o, one, head);
	o += head;
	for (int r = 0; r < rows; r++) {
		if (r)
			*o++ = ',';
		memcpy(o, values + strlen("VALUES"), group);
		o += group;
	}
	*o = '\0';
	return sql;
}

#endif /* FL_SQLROWS_H */
