/* Writing a report file so that a reader (a CI job) never sees half of it,
 * and so that nobody can make us write somewhere else: the temporary file
 * has an unpredictable name and is created exclusively, never through a
 * symlink someone placed there. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gpuctl/util.h"
#include "gpuctl/buf.h"
#include "gpuctl/report.h"

/* 0 written; -1 failed (err set); 1 tmp exists already (err untouched). */
static int write_via(const char *path, const char *tmp, report_fill_fn fill, const void *ud, struct gerr *err)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			return 1;
		return gerr_set(err, GERR_IO, "cannot write %s: cannot create %s: %s", path, tmp, strerror(errno));
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return gerr_set(err, GERR_IO, "cannot write %s: %s: %s", path, tmp, strerror(e));
	}
	const char *step = "write";
	errno = 0;
	fill(f, ud);
	if (fflush(f) != 0 || ferror(f) || (step = "fsync", fsync(fd) < 0)) {
		int e = errno ? errno : EIO;
		fclose(f);
		unlink(tmp);
		return gerr_set(err, GERR_IO, "cannot write %s: %s %s: %s", path, step, tmp, strerror(e));
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return gerr_set(err, GERR_IO, "cannot write %s: %s", path, strerror(e));
	}
	/* the rename itself survives a crash once the folder is synced */
	char *dir = path_dir(path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(dir);
	return 0;
}

struct bytes {
	const char *data;
	size_t len;
};

static void fill_bytes(FILE *f, const void *ud)
{
	const struct bytes *b = ud;
	fwrite(b->data, 1, b->len, f);
}

int report_write_file_via(const char *path, const char *tmp, const char *data, size_t len, struct gerr *err)
{
	struct bytes b = { data, len };
	int rc = write_via(path, tmp, fill_bytes, &b, err);
	if (rc == 1)
		return gerr_set(err, GERR_IO, "cannot write %s: %s exists already", path, tmp);
	return rc;
}

static void random_hex(char *out, size_t n)
{
	unsigned char r[16] = { 0 };
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* no entropy yet: the exclusive create still protects us, the name is only less hidden */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long v = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16) ^ (unsigned long)ts.tv_sec;
		for (size_t i = 0; i < sizeof(r); i++, v = v * 6364136223846793005UL + 1442695040888963407UL)
			r[i] ^= (unsigned char)(v >> 56);
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++)
		out[i] = hex[(r[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
	out[n] = '\0';
}

int report_write_file_fill(const char *path, report_fill_fn fill, const void *ud, struct gerr *err)
{
	if (!strcmp(path, "-")) {
		errno = 0;
		fill(stdout, ud);
		if (ferror(stdout))
			return gerr_set(err, GERR_IO, "cannot write to standard output: %s",
					strerror(errno ? errno : EIO));
		return 0;
	}
	char *dir = path_dir(path);
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int rc = 1;
	for (int attempt = 0; rc == 1 && attempt < 16; attempt++) {
		char suffix[17];
		random_hex(suffix, 16);
		char *tmp = xasprintf("%s/.%s.%s.tmp", dir, base, suffix);
		rc = write_via(path, tmp, fill, ud, err);
		free(tmp);
	}
	free(dir);
	if (rc == 1)
		return gerr_set(err, GERR_IO, "cannot write %s: no free temporary name beside it", path);
	return rc;
}

int report_write_file(const char *path, const char *data, size_t len, struct gerr *err)
{
	struct bytes b = { data, len };
	return report_write_file_fill(path, fill_bytes, &b, err);
}
