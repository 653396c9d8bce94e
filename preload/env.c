/* SPDX-License-Identifier: MIT */
/*
 * env.c - the program's environment as it would be without faultline.
 *
 * The launcher gives the target LD_PRELOAD (the shim first) and
 * FAULTLINE_CHANNEL, FAULTLINE_DEPTH and FAULTLINE_HEAP_SAMPLE.  A program
 * sees its environment: bash, make, perl and python copy every variable
 * into tables of their own, and the heap they allocate after them moves by
 * as much (bash: two more pages copied after its forks, measured), `env`
 * prints them, programs pass them on or refuse LD_PRELOAD.  So once the
 * shim has read them (shim_init, recording on) it takes them out of
 * environ: in place, since the array main() gets as envp is the same one,
 * and LD_PRELOAD goes back to what the user had (or goes).  Every exec the
 * program makes gets them back (shim_env_exec), so the next image is
 * recorded too, even one the program gave an environment of its own (env -i).
 * An image whose LD_PRELOAD does not start with this library's file name
 * (a shim copied under another name through FAULTLINE_PRELOAD, or a program
 * that reordered it) is left as it is.
 *
 * What no hook sees keeps the program's environment and so loses the shim
 * in the new image: raw execve system calls, and glibc's internal spawns
 * other than system() and popen() (wordexp): the collector counts such
 * images (shim_absent) as it did images whose LD_PRELOAD the program removed.
 *
 * Everything here is the shim's work (shim_busy), without malloc: the saved
 * variables live in static buffers (the program may reuse the memory of its
 * initial environment, as setproctitle does), an exec's array on the stack
 * of the hook (a vfork child must not map memory: it shares its parent's).
 */
#include <stdbool.h>

#include "preload.h"

#define PRELOAD_EQ "LD_PRELOAD="
#define SHIM_FILE "libfaultline-preload.so"
#define PRELOAD_LEN (sizeof(PRELOAD_EQ) - 1)

static const char *const ours[] = { FL_CHAN_ENV "=", "FAULTLINE_DEPTH=", "FAULTLINE_HEAP_SAMPLE=" };
#define NOURS (sizeof(ours) / sizeof(ours[0]))

static bool hidden;                   /* this image took them out: execs put them back */
static char saved[NOURS][sizeof(shim_chan_path) + 32]; /* "FAULTLINE_...=value", as given */
static char shim_path[4096];          /* the first entry of LD_PRELOAD: this library */
static char user_preload[8192];       /* "LD_PRELOAD=" and what followed the shim in it */

static bool is_ours(const char *entry)
{
	for (size_t i = 0; i < NOURS; i++)
		if (shim_starts(entry, ours[i]))
			return true;
	return false;
}

/* Copy n bytes of src into dst[cap], NUL-terminated: false if they do not fit. */
static bool copy(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		return false;
	shim_copy_bytes(dst, src, n);
	dst[n] = 0;
	return true;
}

/* The end of the first entry of a preload list (separated by ':' or ' '). */
static const char *entry_end(const char *v)
{
	while (*v && *v != ':' && *v != ' ')
		v++;
	return v;
}

/* Save what the next images need; false (nothing hidden) if anything is missing or too long. */
static bool save(char **env, char **preload)
{
	size_t found = 0;

	*preload = NULL;
	for (char **e = env; *e; e++) {
		for (size_t i = 0; i < NOURS; i++)
			if (shim_starts(*e, ours[i]) && !saved[i][0]) {
				if (!copy(saved[i], sizeof(saved[i]), *e, shim_strlen(*e)))
					return false;
				found++;
			}
		if (!*preload && shim_starts(*e, PRELOAD_EQ))
			*preload = *e;
	}
	if (found != NOURS || !*preload)
		return false;
	const char *v = *preload + PRELOAD_LEN, *end = entry_end(v), *base = end;
	while (base > v && base[-1] != '/')
		base--;
	/* the launcher puts this library first; an image whose LD_PRELOAD says otherwise is left as it is */
	if (end - base != (long)(sizeof(SHIM_FILE) - 1) || !shim_starts(base, SHIM_FILE) ||
	    !copy(shim_path, sizeof(shim_path), v, (size_t)(end - v)))
		return false;
	while (*end == ':' || *end == ' ')
		end++;
	user_preload[0] = 0;
	return !*end || (copy(user_preload, sizeof(user_preload), PRELOAD_EQ, PRELOAD_LEN) &&
			 copy(user_preload + PRELOAD_LEN, sizeof(user_preload) - PRELOAD_LEN, end, shim_strlen(end)));
}

void shim_env_hide(void)
{
	extern char **__environ;
	char **env = __environ, *preload, **to;

	shim_busy++;
	if (!env || !save(env, &preload)) {
		shim_busy--;
		return;
	}
	to = env;
	for (char **e = env; *e; e++) {
		if (is_ours(*e))
			continue;
		if (*e == preload) {
			if (!user_preload[0])
				continue;
			*to++ = user_preload;
			continue;
		}
		*to++ = *e;
	}
	*to = NULL;
	hidden = true;
	shim_busy--;
}

size_t shim_env_exec_size(char *const envp[], size_t *preload_size)
{
	size_t n = 0, pre = PRELOAD_LEN + shim_strlen(shim_path) + 2;
	bool seen = false;

	if (!hidden)
		return 0;
	for (; envp && envp[n]; n++) {
		if (n == SHIM_ENV_MAX)
			return 0;
		if (!seen && shim_starts(envp[n], PRELOAD_EQ)) {
			pre += shim_strlen(envp[n]);
			seen = true;
		}
	}
	if (pre > SHIM_ENV_PRELOAD_MAX)
		return 0;
	*preload_size = pre;
	return n + NOURS + 2;
}

/*
 * The environment for the next image: envp without faultline's variables,
 * then LD_PRELOAD with the shim first (before what envp's LD_PRELOAD held,
 * unless that already starts with it) and the three variables as this image
 * got them.  out and preload have the sizes shim_env_exec_size(envp) gave.
 */
char *const *shim_env_exec(char *const envp[], char **out, char *preload)
{
	const char *theirs = NULL;
	size_t k = 0, n = shim_strlen(shim_path);
	char *p = preload;

	shim_busy++;
	for (; envp && *envp; envp++) {
		if (is_ours(*envp))
			continue;
		if (shim_starts(*envp, PRELOAD_EQ)) {
			if (!theirs)
				theirs = *envp + PRELOAD_LEN;
			continue;
		}
		out[k++] = *envp;
	}
	shim_copy_bytes(p, PRELOAD_EQ, PRELOAD_LEN);
	p += PRELOAD_LEN;
	if (!theirs || entry_end(theirs) != theirs + n || !shim_starts(theirs, shim_path)) {
		shim_copy_bytes(p, shim_path, n); /* the shim first, unless theirs starts with it already */
		p += n;
		if (theirs && *theirs)
			*p++ = ':';
	}
	if (theirs)
		shim_copy_str(p, (size_t)-1, theirs);
	else
		*p = 0;
	out[k++] = preload;
	for (size_t i = 0; i < NOURS; i++)
		out[k++] = saved[i];
	out[k] = NULL;
	shim_busy--;
	return out;
}
