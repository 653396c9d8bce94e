/* SPDX-License-Identifier: MIT */
/*
 * store.c - the SQLite writer (see store.h).  WAL mode, synchronous=OFF
 * while recording: a crash of faultline itself loses at most the open
 * transaction; the target's own death loses nothing (its records are in the
 * channel).
 *
 * The recording is a finished, private file (docs/security.md): it is
 * written under a temporary name next to the output (mode 0600, made with
 * O_EXCL), and only when it is closed is it taken out of WAL mode (one
 * self-contained file that read-only media and `sqlite3 -readonly` can
 * read) and renamed into place.  So --force replaces only a finished file,
 * never a recording in progress (that one has its own temporary name), and
 * never writes through a symbolic link.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"
#include "sqlrows.h"
#include "store.h"
#include "vec.h"

enum stmt {
	S_EVENT, S_VMA, S_FRAME, S_STACK, S_STACK_FRAME,
	S_FRAME_SYM, S_FAULT, S_SITE, S_RSS, S_PROCESS, S_PROCESS_EXE, S_PROCESS_SHIM,
	S_PROCESS_END, S_PROCESS_FAULTS, S_PROCESS_PREXEC, S_LOSS, S_MESSAGE, S_RUN_END,
	S_SMAPS, S_SMAPS_TOTALS, S_SMAPS_HELD, S_SMAPS_DROP, S_REGION_DROP, S_PIECE_DROP, S_REGION_RSS, S_PIECE_RSS, S_FEATURE, S_HEAP_SAMPLE, S_COUNT
};

#define COLUMN_(c, name) #name ","
#define PARAM_(c, name) "?,"
static const char *const stmt_sql[S_COUNT] = {
	[S_EVENT] = "INSERT INTO event(proc_id,pid,tid,time_ns,seq,kind,a0,a1,a2,a3,a4,a5,result,errno,"
		    "source,path,stack_id,id,faultline) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[S_VMA] = "INSERT INTO vma(proc_id,pid,start,end,prot,flags,kind,path,offset,inode,created_ns,"
		  "created_by,parent_id,origin_id,how,id,destroyed_ns,destroyed_by) "
		  "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[S_FRAME] = "INSERT INTO frame(module,rel_addr) VALUES(?,?)",
	[S_STACK] = "INSERT INTO stack(depth) VALUES(?)",
	[S_STACK_FRAME] = "INSERT INTO stack_frame(stack_id,idx,frame_id) VALUES(?,?,?)",
	[S_FRAME_SYM] = "UPDATE frame SET build_id=?, function=?, func_off=?, file=?, line=? WHERE id=?",
	[S_FAULT] = "INSERT INTO fault(vma_id,proc_id,time_ns," FL_FAULT_CLASSES(COLUMN_) "reads,writes,execs,thp,"
		    "faultline) VALUES(?,?,?," FL_FAULT_CLASSES(PARAM_) "?,?,?,?,?)",
	[S_SITE] = "INSERT INTO fault_site(vma_id,proc_id,class,frame_id,count,faultline,callers_id,callers_end)"
		   " VALUES(?,?,?,?,?,?,?,?)",
	[S_RSS] = "INSERT INTO rss(proc_id,time_ns,anon,file,shmem,swap,source) VALUES(?,?,?,?,?,?,?)",
	[S_PROCESS] = "INSERT INTO process(pid,ppid,parent_id,exe,start_ns) VALUES(?,?,?,?,?)",
	[S_PROCESS_EXE] = "UPDATE process SET exe=?, argv=coalesce(?,argv) WHERE id=?",
	[S_PROCESS_SHIM] = "UPDATE process SET shim=1 WHERE id=?",
	[S_PROCESS_END] = "UPDATE process SET end_ns=?, exit_code=?, exit_signal=? WHERE id=?",
	[S_PROCESS_FAULTS] = "UPDATE process SET min_flt=?, maj_flt=?, min_flt_before=?, maj_flt_before=?, "
			     "min_flt_gup=?, maj_flt_gup=? WHERE id=?",
	[S_PROCESS_PREXEC] = "UPDATE process SET min_flt_before=coalesce(min_flt_before,0)+?, "
			     "maj_flt_before=coalesce(maj_flt_before,0)+? WHERE id=?",
	[S_LOSS] = "INSERT INTO loss(cause,count,detail) VALUES(?,?,?) "
		   "ON CONFLICT(cause) DO UPDATE SET count=excluded.count, detail=excluded.detail",
	[S_MESSAGE] = "INSERT INTO message(time_ns,pid,text) VALUES(?,?,?)",
	[S_FEATURE] = "INSERT OR REPLACE INTO kernel_feature(name,state,feature,how) VALUES(?,?,?,?)",
	[S_RUN_END] = "UPDATE run SET complete=1, end_ns=?, exit_status=?",
	[S_SMAPS] = "INSERT INTO smaps_sample(proc_id,time_ns,reason,cost_ns,regions,rss,pss,anon,swap,rss_stat) "
		    "VALUES(?,?,?,?,?,?,?,?,?,?)",
	[S_SMAPS_TOTALS] = "UPDATE smaps_sample SET cost_ns=?, regions=?, rss=?, pss=?, anon=?, swap=? WHERE id=?",
	[S_SMAPS_HELD] = "UPDATE smaps_sample SET held_ns=? WHERE id=?",
	[S_SMAPS_DROP] = "DELETE FROM smaps_sample WHERE id=?",
	[S_REGION_DROP] = "DELETE FROM region_rss WHERE sample_id=?",
	[S_PIECE_DROP] = "DELETE FROM piece_rss WHERE sample_id=?",
	[S_REGION_RSS] = "INSERT INTO region_rss(sample_id,start,end,prot,shared,path,rss,pss,anon,swap,private_dirty) "
			 "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	[S_PIECE_RSS] = "INSERT INTO piece_rss(sample_id,region_start,vma_id,rss,anon,swap,exact) VALUES(?,?,?,?,?,?,?)",
	[S_HEAP_SAMPLE] = "INSERT INTO heap_sample(proc_id,tid,addr,size,weight,mean,fn,alloc_ns,free_ns,"
			  "end_how,stack_id) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
};

/*
 * The rows of the busiest tables (event, vma, fault, fault_site,
 * stack_frame, heap_sample) go in BATCH_ROWS at a time, by one INSERT of
 * that many rows: SQLite's work per statement (the step, the halt, the
 * resets, a copy per text bound) was a fifth of each row's.  A row waits
 * here, its values copied, until the batch fills, or a commit, the close or
 * a statement on its table takes the rest one by one (batch_flush).  No
 * batched row's id is asked of SQLite: event and vma ids are the store's
 * own, and nothing names the others'.
 */
#define BATCH_ROWS 16
#define BATCH_COLS (8 + FL_F_NCLASS)  /* the widest of the batched statements (fault) */

struct cell {
	int type;            /* SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT */
	union {
		sqlite3_int64 i; /* the integer, or the text's offset in text */
		double f;
	};
};

struct batch {
	enum stmt one;       /* the table's single-row INSERT, for the rest of a batch */
	sqlite3_stmt *many;  /* the same INSERT of BATCH_ROWS rows (many_stmt) */
	int ncols, n;        /* columns of a row; rows held */
	struct cell cells[BATCH_ROWS][BATCH_COLS];
	char *text;          /* the held rows' texts, each ending in NUL */
	size_t ntext, captext;
};

enum { B_EVENT, B_VMA, B_FAULT, B_SITE, B_STACK_FRAME, B_HEAP, B_COUNT };
static const enum stmt batched[B_COUNT] = {
	[B_EVENT] = S_EVENT, [B_VMA] = S_VMA, [B_FAULT] = S_FAULT, [B_SITE] = S_SITE,
	[B_STACK_FRAME] = S_STACK_FRAME, [B_HEAP] = S_HEAP_SAMPLE,
};

struct fl_store {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	struct batch batch[B_COUNT];
	char *path;             /* the temporary file being written */
	int fd;                 /* that file, as made: the directory may be the target's to change */
	char *final;            /* the name it gets when finished */
	bool force;             /* the final name may replace an existing file */
	uid_t uid;              /* owner to give the file (-1: keep ours) */
	gid_t gid;
	char error[512];        /* first write error */
	int rc;                 /* first write error as -errno */
	__s64 last_vma_id;      /* vma ids are assigned here so origin_id can name a row itself */
	__s64 last_event_id;    /* and event ids, so an event can be named before it is written */
	struct pathless { __s64 id; __u64 inode; __u32 dev; } *pathless; /* file rows written without a path */
	size_t npathless, cappathless;
};

#define KIND_NAME_(c, name, value) [FL_K_##c] = #name,
static const char *const kind_names[FL_K_COUNT] = { FL_KINDS(KIND_NAME_) };

const char *fl_kind_name(unsigned kind)
{
	return kind < FL_K_COUNT ? kind_names[kind] : "unknown";
}

#define CLASS_NAME_(c, name) [FL_F_##c] = #name,
static const char *const class_names[FL_F_NCLASS] = { FL_FAULT_CLASSES(CLASS_NAME_) };

const char *fl_fault_class_name(unsigned cls)
{
	return cls < FL_F_NCLASS ? class_names[cls] : "other";
}

#define END_NAME_(c, name) [FL_CALLERS_##c] = #name,
static const char *const caller_end_names[FL_CALLERS_NEND] = { FL_CALLER_ENDS(END_NAME_) };

const char *fl_caller_end_name(unsigned end)
{
	return end < FL_CALLERS_NEND ? caller_end_names[end] : NULL;
}

#define HOW_NAME_(c, name) [FL_HOW_##c] = #name,
static const char *const how_names[FL_HOW_COUNT] = { FL_HOWS(HOW_NAME_) };

const char *fl_how_name(unsigned how)
{
	return how < FL_HOW_COUNT ? how_names[how] : "resync";
}

/* argv as a JSON array of strings. Returns a malloc'd string. */
static char *json_array(char *const *argv)
{
	size_t cap = 64, n = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	out[n++] = '[';
	for (size_t i = 0; argv[i]; i++) {
		size_t need = n + 2 * strlen(argv[i]) * 3 + 16;
		if (need > cap) {
			cap = need * 2;
			char *p = realloc(out, cap);
			if (!p) {
				free(out);
				return NULL;
			}
			out = p;
		}
		if (i)
			out[n++] = ',';
		out[n++] = '"';
		for (const unsigned char *c = (const unsigned char *)argv[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				n += sprintf(out + n, "\\%c", *c);
			else if (*c < 0x20)
				n += sprintf(out + n, "\\u%04x", *c);
			else
				out[n++] = (char)*c;
		}
		out[n++] = '"';
	}
	out[n++] = ']';
	out[n] = 0;
	return out;
}

/* Map an SQLite result code to -errno for callers. */
static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_PERM: case SQLITE_READONLY: case SQLITE_AUTH: return -EACCES;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_CANTOPEN: return -ENOENT;
	default: return -EIO;
	}
}

/* Remember the first write error; later writes become no-ops. */
static void fail(struct fl_store *s, int rc, const char *what)
{
	if (s->rc)
		return;
	s->rc = sqlite_errno(rc);
	if (sqlite3_extended_errcode(s->db) == SQLITE_READONLY_DBMOVED) /* SQLite checks the name at each write */
		snprintf(s->error, sizeof(s->error), "writing %s failed: its temporary file %s was moved or "
			 "replaced while recording (by the target?)", s->final, s->path);
	else
		snprintf(s->error, sizeof(s->error), "writing %s failed (%s): %s", s->final, what,
			 (rc & 0xff) == SQLITE_FULL ? "disk full" : sqlite3_errmsg(s->db));
}

/* Run a bound statement to completion and reset it.  Returns the new rowid or 0 on failure. */
static __s64 run(struct fl_store *s, enum stmt i)
{
	sqlite3_stmt *st = s->st[i];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		fail(s, rc, "insert");
		return 0;
	}
	return sqlite3_last_insert_rowid(s->db);
}

static void bind_text(sqlite3_stmt *st, int col, const char *z)
{
	if (z)
		sqlite3_bind_text(st, col, z, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, col);
}

/* Bind an id column, 0 meaning NULL. */
static void bind_id(sqlite3_stmt *st, int col, __s64 id)
{
	if (id)
		sqlite3_bind_int64(st, col, id);
	else
		sqlite3_bind_null(st, col);
}

/* b for the statement one: its columns are its parameters. */
static int batch_init(struct batch *b, enum stmt one)
{
	b->one = one;
	b->ncols = 0;
	for (const char *c = stmt_sql[one]; *c; c++)
		b->ncols += *c == '?';
	return b->ncols > BATCH_COLS ? SQLITE_ERROR : SQLITE_OK;
}

/* b's INSERT of BATCH_ROWS rows, prepared when a batch first fills: a short run never needs it. */
static sqlite3_stmt *many_stmt(struct fl_store *s, struct batch *b)
{
	char *sql;

	if (!b->many && (sql = fl_sql_many_rows(stmt_sql[b->one], BATCH_ROWS))) {
		int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &b->many, NULL);
		if (rc != SQLITE_OK)
			fail(s, rc, "insert");
		free(sql);
	}
	return b->many;
}

/* Column col (1-based) of the row being made in b. */
static void cell_int(struct batch *b, int col, sqlite3_int64 v)
{
	b->cells[b->n][col - 1] = (struct cell){ SQLITE_INTEGER, { v } };
}

static void cell_null(struct batch *b, int col)
{
	b->cells[b->n][col - 1] = (struct cell){ SQLITE_NULL, { 0 } };
}

static void cell_double(struct batch *b, int col, double v)
{
	b->cells[b->n][col - 1] = (struct cell){ SQLITE_FLOAT, { .f = v } };
}

/* An id column, 0 meaning NULL. */
static void cell_id(struct batch *b, int col, __s64 id)
{
	if (id)
		cell_int(b, col, id);
	else
		cell_null(b, col);
}

/* A text column (NULL: NULL), copied: the row outlives the caller's string. */
static void cell_text(struct batch *b, int col, const char *z)
{
	size_t len = z ? strlen(z) + 1 : 0;

	if (!z || fl_vec_reserve((void **)&b->text, &b->captext, b->ntext + len, 1)) {
		cell_null(b, col); /* out of memory: NULL, as a failed bind would leave it */
		return;
	}
	memcpy(b->text + b->ntext, z, len);
	b->cells[b->n][col - 1] = (struct cell){ SQLITE_TEXT, { (sqlite3_int64)b->ntext } };
	b->ntext += len;
}

/* Row r of b into st's parameters from first on. */
static void bind_row(const struct batch *b, sqlite3_stmt *st, int r, int first)
{
	for (int c = 0; c < b->ncols; c++) {
		const struct cell *v = &b->cells[r][c];
		if (v->type == SQLITE_INTEGER)
			sqlite3_bind_int64(st, first + c, v->i);
		else if (v->type == SQLITE_TEXT)
			sqlite3_bind_text(st, first + c, b->text + v->i, -1, SQLITE_STATIC);
		else if (v->type == SQLITE_FLOAT)
			sqlite3_bind_double(st, first + c, v->f);
		else
			sqlite3_bind_null(st, first + c);
	}
}

/* Writes the rows b holds: all at once when they are BATCH_ROWS, else one by one. */
static void batch_flush(struct fl_store *s, struct batch *b)
{
	sqlite3_stmt *many = !s->rc && b->n == BATCH_ROWS ? many_stmt(s, b) : NULL;

	if (many) {
		for (int r = 0; r < BATCH_ROWS; r++)
			bind_row(b, many, r, 1 + r * b->ncols);
		int rc = sqlite3_step(many);
		sqlite3_reset(many);
		if (rc != SQLITE_DONE)
			fail(s, rc, "insert");
	} else {
		for (int r = 0; r < b->n && !s->rc; r++) {
			bind_row(b, s->st[b->one], r, 1);
			run(s, b->one);
		}
	}
	b->n = 0;
	b->ntext = 0;
}

/* The row made in b is complete: held, the batch written when full. */
static void batch_add(struct fl_store *s, struct batch *b)
{
	if (++b->n == BATCH_ROWS)
		batch_flush(s, b);
}

/* Every held row written: before a commit, and before a statement reads or changes their tables. */
static void flush_batches(struct fl_store *s)
{
	for (int i = 0; i < B_COUNT; i++)
		batch_flush(s, &s->batch[i]);
}

static int exec_sql(struct fl_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		fail(s, rc, msg ? msg : "exec");
		sqlite3_free(msg);
	}
	return rc;
}

/* The output name: refuse what must never be replaced or written through. */
static int check_output(const char *path, bool force, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISLNK(st.st_mode)) {
		/* even dangling: a link planted in a shared directory would
		 * send root's write anywhere */
		snprintf(err, errlen, "%s is a symbolic link; faultline does not write through links "
			 "(name the file itself)", path);
		return -ELOOP;
	}
	if (!force) {
		snprintf(err, errlen, "%s already exists (use --force to overwrite)", path);
		return -EEXIST;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -EINVAL;
	}
	return 0;
}

/* Make "DIR/.BASE.XXXXXX" next to path, 0600 and exclusive.  Returns the
 * malloc'd name and its open file in *fd, or NULL (errno set). */
static char *make_temp(const char *path, int *fd)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path) + 1 : 0;
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);

	if (!tmp)
		return NULL;
	snprintf(tmp, n, "%.*s.%s.XXXXXX", dirlen, path, slash ? slash + 1 : path);
	*fd = mkostemp(tmp, O_CLOEXEC);   /* O_EXCL, mode 0600 */
	if (*fd < 0) {
		int e = errno;
		free(tmp);
		errno = e;
		return NULL;
	}
	return tmp;
}

/* Remove path and what SQLite keeps beside it. */
static void unlink_db(const char *path)
{
	char aux[PATH_MAX + 8];

	unlink(path);
	snprintf(aux, sizeof(aux), "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof(aux), "%s-shm", path);
	unlink(aux);
}

int fl_store_create(struct fl_store **out, const char *path, bool force, char *err, size_t errlen)
{
	int rc = check_output(path, force, err, errlen);
	if (rc)
		return rc;
	struct fl_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->final = strdup(path))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->force = force;
	s->fd = -1;
	s->uid = (uid_t)-1;
	s->gid = (gid_t)-1;
	if (!(s->path = make_temp(path, &s->fd))) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		free(s->final);
		free(s);
		return rc;
	}
	/* NOMUTEX: one thread writes (the heartbeat thread never touches the store); a lock per call cost ~4% */
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		/*
		 * synchronous=OFF: a crash of the machine may lose the tail of a
		 * recording, never the target's data; fsyncs while it runs would
		 * slow it down for nothing.  Set before the switch to WAL, which
		 * otherwise syncs four times (5-10 ms of every start).
		 */
		rc = sqlite3_exec(s->db, "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL; "
				  "PRAGMA cache_size=-65536;", NULL, NULL, NULL);
	/* the schema in the first transaction, not one commit per table */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, fl_schema_sql, NULL, NULL, NULL);
	for (int i = 0; rc == SQLITE_OK && i < S_COUNT; i++)
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
	for (int i = 0; rc == SQLITE_OK && i < B_COUNT; i++)
		rc = batch_init(&s->batch[i], batched[i]);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot create %s: %s", path, sqlite3_errmsg(s->db));
		int e = sqlite_errno(rc);
		s->rc = 0;
		fl_store_discard(s);
		return e;
	}
	*out = s;
	return 0;
}

void fl_store_set_owner(struct fl_store *s, uid_t uid, gid_t gid)
{
	s->uid = uid;
	s->gid = gid;
}

void fl_store_commit(struct fl_store *s)
{
	flush_batches(s);
	if (s->rc)
		return;
	if (exec_sql(s, "COMMIT") == SQLITE_OK)
		exec_sql(s, "BEGIN");
}

/* Commit, checkpoint, and leave WAL mode: afterwards the file holds
 * everything and nothing beside it is needed to read it. */
static void seal(struct fl_store *s)
{
	flush_batches(s);
	if (!s->rc && sqlite3_get_autocommit(s->db) == 0)
		exec_sql(s, "COMMIT");
	if (!s->rc) {
		int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		if (rc != SQLITE_OK) /* the WAL keeps the data if the checkpoint cannot run */
			fail(s, rc, "checkpoint");
	}
	if (!s->rc)
		exec_sql(s, "PRAGMA journal_mode=DELETE");
}

static void close_db(struct fl_store *s)
{
	for (int i = 0; i < S_COUNT; i++) {
		sqlite3_finalize(s->st[i]);
		s->st[i] = NULL;
	}
	for (int i = 0; i < B_COUNT; i++) {
		sqlite3_finalize(s->batch[i].many);
		s->batch[i].many = NULL;
	}
	sqlite3_close(s->db);
	s->db = NULL;
}

static void free_store(struct fl_store *s)
{
	for (int i = 0; i < B_COUNT; i++)
		free(s->batch[i].text);
	if (s->fd >= 0)
		close(s->fd);
	free(s->pathless);
	free(s->path);
	free(s->final);
	free(s);
}

/* Move from to to: over an existing file only with --force (rename never
 * follows a link at to: it replaces the link itself). */
static int move(const char *from, const char *to, bool force)
{
	if (force)
		return rename(from, to);
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

/*
 * Whether the temporary name still names the file we made.  The directory
 * may be writable by the target (under sudo it runs as the user, often in
 * their own directory): a name swapped for a link to another file must not
 * be given to the user, nor be renamed into place as the recording.  The
 * owner is changed through our descriptor; the rename below still goes by
 * name, so a swap after this test moves the target's own file, never
 * anyone else's (rename does not follow links).
 */
static bool still_ours(const struct fl_store *s)
{
	struct stat ours, named;

	return !fstat(s->fd, &ours) && !lstat(s->path, &named) && ours.st_dev == named.st_dev &&
	       ours.st_ino == named.st_ino;
}

/* chown of a file SQLite made beside ours (a WAL a failed checkpoint kept), if it is one: ours, one link. */
static int give_file(const char *path, uid_t uid, gid_t gid)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), rc = -1;
	struct stat st;

	if (fd < 0)
		return -1;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_nlink == 1)
		rc = fchown(fd, uid, gid);
	else
		errno = EPERM;
	close(fd);
	return rc;
}

/*
 * The file is complete as far as it goes: give it to its owner and its name.
 * If the WAL could not be folded in (disk full), it moves along with it:
 * the committed data is there.
 */
static void place(struct fl_store *s)
{
	char wal[PATH_MAX + 8], final_wal[PATH_MAX + 8];
	bool has_wal;

	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	snprintf(final_wal, sizeof(final_wal), "%s-wal", s->final);
	has_wal = access(wal, F_OK) == 0;
	if (!still_ours(s)) {
		if (!s->rc) {
			s->rc = -EPERM;
			snprintf(s->error, sizeof(s->error), "%s was replaced while recording (by the target?); "
				 "the recording is not moved to %s", s->path, s->final);
		}
		return;
	}
	if (s->uid != (uid_t)-1) {
		if (fchown(s->fd, s->uid, s->gid) < 0 || (has_wal && give_file(wal, s->uid, s->gid) < 0))
			fprintf(stderr, "faultline: cannot give %s to uid %u: %s\n", s->final,
				(unsigned)s->uid, strerror(errno));
	}
	/* an older file's leftovers must not be read as part of this one */
	if (s->force) {
		unlink(final_wal);
		snprintf(final_wal, sizeof(final_wal), "%s-shm", s->final);
		unlink(final_wal);
		snprintf(final_wal, sizeof(final_wal), "%s-wal", s->final);
	}
	snprintf(wal, sizeof(wal), "%s-shm", s->path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if ((has_wal && move(wal, final_wal, s->force) < 0) || move(s->path, s->final, s->force) < 0) {
		int e = errno;
		if (!s->rc) {
			s->rc = -e;
			snprintf(s->error, sizeof(s->error), e == EEXIST ?
				 "%s appeared while recording; the recording is kept as %s" :
				 "cannot rename the recording to %s (%s); it is kept as %s",
				 s->final, e == EEXIST ? s->path : strerror(e), s->path);
		}
	}
}

void fl_store_fill_paths(struct fl_store *s,
			 void (*resolve)(const __u32 *dev, const __u64 *inode, size_t n, const char **out))
{
	size_t n = s->npathless;
	__u32 *dev = calloc(n + 1, sizeof(*dev));
	__u64 *inode = calloc(n + 1, sizeof(*inode));
	const char **path = calloc(n + 1, sizeof(*path));
	sqlite3_stmt *st = NULL;

	flush_batches(s); /* the rows it names */
	if (!s->rc && n && dev && inode && path &&
	    sqlite3_prepare_v2(s->db, "UPDATE vma SET path = ?1 WHERE id = ?2", -1, &st, NULL) == SQLITE_OK) {
		for (size_t i = 0; i < n; i++) {
			dev[i] = s->pathless[i].dev;
			inode[i] = s->pathless[i].inode;
		}
		resolve(dev, inode, n, path);
		for (size_t i = 0; i < n; i++) {
			if (!path[i])
				continue;
			sqlite3_bind_text(st, 1, path[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, s->pathless[i].id);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
	}
	sqlite3_finalize(st);
	free(dev);
	free(inode);
	free(path);
}

int fl_store_finish(struct fl_store *s)
{
	int rc;

	seal(s);
	close_db(s);
	place(s);
	rc = s->rc;
	return rc;
}

void fl_store_discard(struct fl_store *s)
{
	if (!s)
		return;
	close_db(s);
	unlink_db(s->path);
	free_store(s);
}

void fl_store_close(struct fl_store *s)
{
	if (!s)
		return;
	if (s->db)
		close_db(s);
	free_store(s);
}

const char *fl_store_error(const struct fl_store *s)
{
	return s->rc ? s->error : NULL;
}

void fl_store_run_begin(struct fl_store *s, const struct fl_run_info *ri)
{
	if (s->rc)
		return;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db,
		"INSERT INTO run(id,version,command,argv,cwd,host,kernel,page_size,fidelity,fidelity_note,"
		"stack_depth,start_ns,start_unix) VALUES(1,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		fail(s, rc, "run");
		return;
	}
	char *argv_json = json_array(ri->argv);
	bind_text(st, 1, ri->version);
	bind_text(st, 2, ri->argv[0]);
	bind_text(st, 3, argv_json ? argv_json : "[]");
	bind_text(st, 4, ri->cwd);
	bind_text(st, 5, ri->host);
	bind_text(st, 6, ri->kernel);
	sqlite3_bind_int64(st, 7, ri->page_size);
	bind_text(st, 8, ri->fidelity);
	bind_text(st, 9, ri->fidelity_note);
	sqlite3_bind_int(st, 10, (int)ri->stack_depth);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)ri->start_ns);
	sqlite3_bind_int64(st, 12, ri->start_unix);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		fail(s, rc, "run");
	sqlite3_finalize(st);
	free(argv_json);
}

int (*fl_store_summarize)(sqlite3 *db, const char *path, const char *file);

void fl_store_run_end(struct fl_store *s, __u64 end_ns, int exit_status)
{
	flush_batches(s);
	if (s->rc)
		return;
	exec_sql(s, fl_schema_indexes_sql);
	sqlite3_bind_int64(s->st[S_RUN_END], 1, (sqlite3_int64)end_ns);
	sqlite3_bind_int(s->st[S_RUN_END], 2, exit_status);
	run(s, S_RUN_END);
	/*
	 * The readers' summaries, after every row, in a transaction of their own: part of them is
	 * made on a thread, through a second connection that reads the file once everything before
	 * is committed and checkpointed into it.  That connection opens it by name (SQLite resolves
	 * even /proc/self/fd/N to the name), and without following links: a target that swaps the
	 * name meanwhile feeds it a file it could read itself, and the next write here fails
	 * (SQLITE_READONLY_DBMOVED) unless it swapped it back.  A file with the rows but not the
	 * summaries (they failed, or the recorder died meanwhile, before the file got its name)
	 * reads as complete, its readers summing the rows (summary.h).
	 */
	fl_store_commit(s);
	if (!s->rc && fl_store_summarize) {
		bool whole = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) == SQLITE_OK;
		fl_store_summarize(s->db, s->final, whole && still_ours(s) ? s->path : NULL);
	}
}

void fl_store_loss(struct fl_store *s, const char *cause, __u64 count, const char *detail)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_LOSS];
	bind_text(st, 1, cause);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	bind_text(st, 3, detail);
	run(s, S_LOSS);
}

void fl_store_kernel_feature(struct fl_store *s, const char *name, const char *state,
			     const char *feature, const char *how)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_FEATURE];
	bind_text(st, 1, name);
	bind_text(st, 2, state);
	bind_text(st, 3, feature);
	bind_text(st, 4, how);
	run(s, S_FEATURE);
}

void fl_store_message(struct fl_store *s, __u64 time_ns, __u32 pid, const char *text)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_MESSAGE];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time_ns);
	bind_id(st, 2, pid);
	bind_text(st, 3, text);
	run(s, S_MESSAGE);
}

__s64 fl_store_process(struct fl_store *s, __u32 pid, __u32 ppid, __s64 parent_id,
		       const char *exe, __u64 start_ns)
{
	if (s->rc)
		return 0;
	sqlite3_stmt *st = s->st[S_PROCESS];
	sqlite3_bind_int64(st, 1, pid);
	bind_id(st, 2, ppid);
	bind_id(st, 3, parent_id);
	bind_text(st, 4, exe);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)start_ns);
	return run(s, S_PROCESS);
}

void fl_store_process_exe(struct fl_store *s, __s64 proc_id, const char *exe, char *const *argv)
{
	if (s->rc)
		return;
	char *json = argv ? json_array(argv) : NULL;
	sqlite3_stmt *st = s->st[S_PROCESS_EXE];
	bind_text(st, 1, exe);
	bind_text(st, 2, json);
	sqlite3_bind_int64(st, 3, proc_id);
	run(s, S_PROCESS_EXE);
	free(json);
}

void fl_store_process_shim(struct fl_store *s, __s64 proc_id)
{
	if (s->rc)
		return;
	sqlite3_bind_int64(s->st[S_PROCESS_SHIM], 1, proc_id);
	run(s, S_PROCESS_SHIM);
}

void fl_store_process_end(struct fl_store *s, __s64 proc_id, __u64 end_ns, int exit_code, int exit_signal)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_PROCESS_END];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)end_ns);
	if (exit_code >= 0)
		sqlite3_bind_int(st, 2, exit_code);
	if (exit_signal >= 0)
		sqlite3_bind_int(st, 3, exit_signal);
	sqlite3_bind_int64(st, 4, proc_id);
	run(s, S_PROCESS_END);
}

void fl_store_process_faults(struct fl_store *s, __s64 proc_id, __u64 min_flt, __u64 maj_flt,
			     const __u64 before[2], const __u64 gup[2])
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_PROCESS_FAULTS];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)min_flt);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)maj_flt);
	for (int i = 0; i < 2; i++) {
		if (before)
			sqlite3_bind_int64(st, 3 + i, (sqlite3_int64)before[i]);
		if (gup)
			sqlite3_bind_int64(st, 5 + i, (sqlite3_int64)gup[i]);
	}
	sqlite3_bind_int64(st, 7, proc_id);
	run(s, S_PROCESS_FAULTS);
}

void fl_store_process_prexec(struct fl_store *s, __s64 proc_id, const __u64 faults[2])
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_PROCESS_PREXEC];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)faults[0]);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)faults[1]);
	sqlite3_bind_int64(st, 3, proc_id);
	run(s, S_PROCESS_PREXEC);
}

__s64 fl_store_event_reserve(struct fl_store *s)
{
	return ++s->last_event_id;
}

__s64 fl_store_event(struct fl_store *s, __s64 proc_id, const struct fl_call *c,
		     const char *source, const char *path, __s64 stack_id)
{
	return fl_store_event_at(s, fl_store_event_reserve(s), proc_id, c, source, path, stack_id);
}

__s64 fl_store_event_at(struct fl_store *s, __s64 id, __s64 proc_id, const struct fl_call *c,
			const char *source, const char *path, __s64 stack_id)
{
	struct batch *b = &s->batch[B_EVENT];

	if (s->rc)
		return 0;
	cell_int(b, 1, proc_id);
	cell_int(b, 2, c->pid);
	cell_int(b, 3, c->tid);
	cell_int(b, 4, (sqlite3_int64)c->time_ns);
	cell_int(b, 5, (sqlite3_int64)c->seq);
	cell_text(b, 6, fl_kind_name(c->kind));
	for (int i = 0; i < 6; i++)
		cell_int(b, 7 + i, (sqlite3_int64)c->args[i]);
	cell_int(b, 13, c->result);
	cell_int(b, 14, c->err);
	cell_text(b, 15, source);
	cell_text(b, 16, path);
	cell_id(b, 17, stack_id);
	cell_int(b, 18, id);
	cell_int(b, 19, !!(c->flags & FL_CALL_FAULTLINE));
	batch_add(s, b);
	return s->rc ? 0 : id;
}

__s64 fl_store_vma_id(struct fl_store *s)
{
	return ++s->last_vma_id;
}

__s64 fl_store_vma_last(const struct fl_store *s)
{
	return s->last_vma_id;
}

void fl_store_vma(struct fl_store *s, __s64 id, const struct fl_vma_row *r)
{
	struct batch *b = &s->batch[B_VMA];

	if (s->rc || !id)
		return;
	cell_int(b, 1, r->proc_id);
	cell_int(b, 2, r->pid);
	cell_int(b, 3, (sqlite3_int64)r->start);
	cell_int(b, 4, (sqlite3_int64)r->end);
	cell_int(b, 5, (int)r->prot);
	cell_int(b, 6, (int)r->flags);
	cell_text(b, 7, r->kind);
	cell_text(b, 8, r->path);
	cell_int(b, 9, (sqlite3_int64)r->offset);
	cell_id(b, 10, (__s64)r->inode);
	cell_int(b, 11, (sqlite3_int64)r->created_ns);
	cell_id(b, 12, r->created_by);
	cell_id(b, 13, r->parent_id);
	cell_int(b, 14, r->origin_id ? r->origin_id : id);
	cell_text(b, 15, fl_how_name(r->how));
	cell_int(b, 16, id);
	if (!r->path && r->inode && r->kind && !strcmp(r->kind, "file") &&
	    !fl_vec_reserve((void **)&s->pathless, &s->cappathless, s->npathless + 1, sizeof(*s->pathless)))
		s->pathless[s->npathless++] = (struct pathless){ id, r->inode, r->dev };
	cell_id(b, 17, (__s64)r->destroyed_ns);
	cell_id(b, 18, r->destroyed_by);
	batch_add(s, b);
}

__s64 fl_store_frame(struct fl_store *s, const char *module, __u64 rel_addr)
{
	if (s->rc)
		return 0;
	bind_text(s->st[S_FRAME], 1, module);
	sqlite3_bind_int64(s->st[S_FRAME], 2, (sqlite3_int64)rel_addr);
	return run(s, S_FRAME);
}

__s64 fl_store_stack(struct fl_store *s, const __s64 *frame_ids, unsigned n)
{
	if (s->rc)
		return 0;
	sqlite3_bind_int(s->st[S_STACK], 1, (int)n);
	__s64 id = run(s, S_STACK);
	for (unsigned i = 0; id && i < n; i++) {
		struct batch *b = &s->batch[B_STACK_FRAME];
		cell_int(b, 1, id);
		cell_int(b, 2, (int)i);
		cell_int(b, 3, frame_ids[i]);
		batch_add(s, b);
	}
	return id;
}

void fl_store_frame_symbol(struct fl_store *s, __s64 frame_id, const char *build_id,
			   const char *function, __u64 func_off, const char *file, int line)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_FRAME_SYM];
	bind_text(st, 1, build_id);
	bind_text(st, 2, function);
	if (function)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)func_off);
	bind_text(st, 4, file);
	if (file && line > 0)
		sqlite3_bind_int(st, 5, line);
	sqlite3_bind_int64(st, 6, frame_id);
	run(s, S_FRAME_SYM);
}

void fl_store_fault(struct fl_store *s, __s64 vma_id, __s64 proc_id, __u64 time_ns,
		    const struct fl_fault_counts *c, int faultline)
{
	struct batch *b = &s->batch[B_FAULT];

	if (s->rc)
		return;
	cell_int(b, 1, vma_id);
	cell_int(b, 2, proc_id);
	cell_int(b, 3, (sqlite3_int64)time_ns);
	for (int i = 0; i < FL_F_NCLASS; i++)
		cell_int(b, 4 + i, (sqlite3_int64)c->cls[i]);
	cell_int(b, 4 + FL_F_NCLASS, (sqlite3_int64)c->read);
	cell_int(b, 5 + FL_F_NCLASS, (sqlite3_int64)c->write);
	cell_int(b, 6 + FL_F_NCLASS, (sqlite3_int64)c->exec);
	cell_int(b, 7 + FL_F_NCLASS, (sqlite3_int64)c->thp);
	cell_int(b, 8 + FL_F_NCLASS, !!faultline);
	batch_add(s, b);
}

void fl_store_fault_site(struct fl_store *s, __s64 vma_id, __s64 proc_id, const char *cls,
			 __s64 frame_id, __u64 count, int faultline, __s64 callers_id, const char *callers_end)
{
	struct batch *b = &s->batch[B_SITE];

	if (s->rc)
		return;
	cell_int(b, 1, vma_id);
	cell_int(b, 2, proc_id);
	cell_text(b, 3, cls);
	cell_int(b, 4, frame_id);
	cell_int(b, 5, (sqlite3_int64)count);
	cell_int(b, 6, !!faultline);
	cell_id(b, 7, callers_id);
	cell_text(b, 8, callers_end);
	batch_add(s, b);
}

void fl_store_rss(struct fl_store *s, __s64 proc_id, __u64 time_ns, __u64 anon, __u64 file,
		  __u64 shmem, __u64 swap, const char *source)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_RSS];
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time_ns);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)anon);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)file);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)shmem);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)swap);
	bind_text(st, 7, source);
	run(s, S_RSS);
}

__s64 fl_store_smaps_sample(struct fl_store *s, const struct fl_smaps_row *r)
{
	if (s->rc)
		return 0;
	sqlite3_stmt *st = s->st[S_SMAPS];
	sqlite3_bind_int64(st, 1, r->proc_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->time_ns);
	bind_text(st, 3, r->reason);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->cost_ns);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->regions);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->rss);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->pss);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->anon);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)r->swap);
	if (r->rss_stat)
		sqlite3_bind_int64(st, 10, (sqlite3_int64)r->rss_stat);
	return run(s, S_SMAPS);
}

void fl_store_region_rss(struct fl_store *s, __s64 sample_id, const struct fl_region_rss *r)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_REGION_RSS];
	sqlite3_bind_int64(st, 1, sample_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->start);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->end);
	sqlite3_bind_int(st, 4, (int)r->prot);
	sqlite3_bind_int(st, 5, r->shared);
	bind_text(st, 6, r->path[0] ? r->path : NULL);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->rss);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->pss);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)r->anon);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)r->swap);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)r->private_dirty);
	run(s, S_REGION_RSS);
}

void fl_store_piece_rss(struct fl_store *s, __s64 sample_id, __u64 region_start, __s64 vma_id, __u64 rss,
			__u64 anon, __u64 swap, int exact)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_PIECE_RSS];
	sqlite3_bind_int64(st, 1, sample_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)region_start);
	sqlite3_bind_int64(st, 3, vma_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)rss);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)anon);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)swap);
	sqlite3_bind_int(st, 7, exact);
	run(s, S_PIECE_RSS);
}

void fl_store_smaps_totals(struct fl_store *s, __s64 id, const struct fl_smaps_row *r)
{
	if (s->rc)
		return;
	sqlite3_stmt *st = s->st[S_SMAPS_TOTALS];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->cost_ns);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->regions);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->rss);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->pss);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->anon);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->swap);
	sqlite3_bind_int64(st, 7, id);
	run(s, S_SMAPS_TOTALS);
}

void fl_store_smaps_held(struct fl_store *s, __s64 id, __u64 held_ns)
{
	if (s->rc)
		return;
	sqlite3_bind_int64(s->st[S_SMAPS_HELD], 1, (sqlite3_int64)held_ns);
	sqlite3_bind_int64(s->st[S_SMAPS_HELD], 2, id);
	run(s, S_SMAPS_HELD);
}

void fl_store_smaps_drop(struct fl_store *s, __s64 id)
{
	static const enum stmt drop[] = { S_PIECE_DROP, S_REGION_DROP, S_SMAPS_DROP };
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]) && !s->rc; i++) {
		sqlite3_bind_int64(s->st[drop[i]], 1, id);
		run(s, drop[i]);
	}
}

void fl_store_heap_sample(struct fl_store *s, const struct fl_heap_row *r)
{
	struct batch *b = &s->batch[B_HEAP];

	if (s->rc)
		return;
	cell_int(b, 1, r->proc_id);
	cell_int(b, 2, r->tid);
	cell_int(b, 3, (sqlite3_int64)r->addr);
	cell_int(b, 4, (sqlite3_int64)r->size);
	cell_double(b, 5, r->weight);
	cell_int(b, 6, (sqlite3_int64)r->mean);
	cell_text(b, 7, r->fn);
	cell_int(b, 8, (sqlite3_int64)r->alloc_ns);
	cell_id(b, 9, (__s64)r->free_ns);
	cell_text(b, 10, r->end_how);
	cell_id(b, 11, r->stack_id);
	batch_add(s, b);
}
