#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/out.h"
#include "gpuctl/yaml.h"

int out_want_color(FILE *f)
{
	const char *nc = getenv("NO_COLOR");
	if (nc && *nc)
		return 0;
	const char *term = getenv("TERM");
	if (term && !strcmp(term, "dumb"))
		return 0;
	return isatty(fileno(f));
}

void out_colored(FILE *f, int enabled, enum out_color c, const char *s)
{
	static const char *const codes[] = { "", "\033[32m", "\033[33m", "\033[31m", "\033[2m", "\033[1m" };
	if (!enabled || c == OUT_PLAIN) {
		fputs(s, f);
		return;
	}
	fputs(codes[c], f);
	fputs(s, f);
	fputs("\033[0m", f);
}

void out_doc(FILE *f, const cJSON *doc, const char *format)
{
	if (format && !strcmp(format, "yaml")) {
		struct buf b = BUF_INIT;
		yaml_emit(doc, &b);
		fwrite(b.s, 1, b.len, f);
		buf_release(&b);
		return;
	}
	char *s = cJSON_Print(doc);
	fputs(s, f);
	fputc('\n', f);
	free(s);
}

int out_finish(struct gerr *err)
{
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		return gerr_set(err, GERR_IO, "cannot write the output: %s",
				errno ? strerror(errno) : "write error");
	return 0;
}
