/*
 * report.c - samples, and the one table a run prints.
 *
 * A workload collects one latency per operation into `struct samples` and
 * turns them into rows: median, 99th percentile (nearest rank), operations
 * per second of one caller (1 / mean latency) or of all threads (counted
 * over wall time), and a ratio with what it compares. A row may carry a
 * target ("<= 2x") and its result, PASS or MISS; the result is information
 * only and never changes the exit status.
 *
 * The same rows, and the machine description, are written as JSON with
 * json-c for --json; numbers that do not apply are null there and blank in
 * the table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bench.h"

static struct row *rows;
static size_t nrows, cap_rows;
static char section[96];

struct machine_line {
	char key[32];
	char value[256];
};
static struct machine_line machine[24];
static size_t nmachine;

/* ---- samples ----------------------------------------------------------- */

int samples_add(struct samples *s, int64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		int64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	s->sum += ns;
	return 0;
}

void samples_free(struct samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void samples_merge(struct samples *into, const struct samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		samples_add(into, from->v[i]);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

double samples_pct(struct samples *s, double pct)
{
	size_t rank;

	if (!s->n)
		return NAN;
	qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
	rank = (size_t)ceil(pct / 100.0 * (double)s->n);
	if (rank < 1)
		rank = 1;
	return (double)s->v[rank - 1];
}

double samples_rate(const struct samples *s)
{
	if (!s->n || s->sum <= 0)
		return NAN;
	return 1e9 * (double)s->n / (double)s->sum;
}

/* ---- rows -------------------------------------------------------------- */

void report_section(const char *title)
{
	snprintf(section, sizeof(section), "%s", title);
}

struct row *report_row(const char *subject)
{
	struct row *r;

	if (nrows == cap_rows) {
		size_t cap = cap_rows ? cap_rows * 2 : 64;
		struct row *n = realloc(rows, cap * sizeof(*n));

		if (!n)
			return NULL;
		rows = n;
		cap_rows = cap;
	}
	r = &rows[nrows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->section, sizeof(r->section), "%s", section);
	snprintf(r->subject, sizeof(r->subject), "%s", subject);
	r->median = r->p99 = r->ops = r->ratio = NAN;
	return r;
}

void report_fill(struct row *r, struct samples *s)
{
	r->n = (long)s->n;
	r->median = samples_pct(s, 50);
	r->p99 = samples_pct(s, 99);
	r->ops = samples_rate(s);
}

void report_ratio(struct row *r, double ratio, const char *of)
{
	r->ratio = ratio;
	snprintf(r->ratio_of, sizeof(r->ratio_of), "%s", of);
}

void report_target(struct row *r, const char *target, double value, double limit, bool at_least)
{
	snprintf(r->target, sizeof(r->target), "%s", target);
	if (isnan(value))
		r->result = RESULT_NONE;
	else if (at_least ? value >= limit : value <= limit)
		r->result = RESULT_PASS;
	else
		r->result = RESULT_MISS;
}

void report_machine(const char *key, const char *value)
{
	if (nmachine < sizeof(machine) / sizeof(machine[0])) {
		snprintf(machine[nmachine].key, sizeof(machine[0].key), "%s", key);
		snprintf(machine[nmachine].value, sizeof(machine[0].value), "%s", value);
		nmachine++;
	}
}

/* ---- the table ----------------------------------------------------------- */

static void fmt_time(char *buf, size_t n, double ns)
{
	if (isnan(ns))
		snprintf(buf, n, "-");
	else if (ns < 1e3)
		snprintf(buf, n, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, n, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, n, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, n, "%.2f s", ns / 1e9);
}

static void fmt_bytes(char *buf, size_t n, double b)
{
	if (isnan(b))
		snprintf(buf, n, "-");
	else if (b < 1024 * 1024)
		snprintf(buf, n, "%.0f KiB", b / 1024);
	else
		snprintf(buf, n, "%.1f MiB", b / (1024 * 1024));
}

static void fmt_value(char *buf, size_t n, const struct row *r, double v)
{
	if (r->unit == ROW_BYTES)
		fmt_bytes(buf, n, v);
	else
		fmt_time(buf, n, v);
}

static void fmt_ops(char *buf, size_t n, double ops)
{
	if (isnan(ops))
		snprintf(buf, n, "-");
	else if (ops < 100)
		snprintf(buf, n, "%.1f", ops);
	else
		snprintf(buf, n, "%.0f", ops);
}

static void fmt_ratio(char *buf, size_t n, const struct row *r)
{
	if (isnan(r->ratio))
		snprintf(buf, n, "%s", "");
	else if (r->ratio_fmt[0])
		snprintf(buf, n, r->ratio_fmt, r->ratio);
	else if (r->ratio < 0.1)
		snprintf(buf, n, "%.4fx", r->ratio);
	else if (r->ratio < 1)
		snprintf(buf, n, "%.3fx", r->ratio);
	else
		snprintf(buf, n, "%.2fx", r->ratio);
}

static const char *result_name(enum row_result r)
{
	return r == RESULT_PASS ? "PASS" : r == RESULT_MISS ? "MISS" : "";
}

enum { C_SUBJECT, C_MEDIAN, C_P99, C_OPS, C_N, C_RATIO, C_TARGET, C_RESULT, C_NOTE, NCOLS };

static void row_cells(const struct row *r, char cells[NCOLS][160])
{
	snprintf(cells[C_SUBJECT], 160, "  %s", r->subject);
	fmt_value(cells[C_MEDIAN], 160, r, r->median);
	fmt_value(cells[C_P99], 160, r, r->p99);
	fmt_ops(cells[C_OPS], 160, r->ops);
	snprintf(cells[C_N], 160, "%ld", r->n);
	fmt_ratio(cells[C_RATIO], 160, r);
	snprintf(cells[C_TARGET], 160, "%s", r->target);
	snprintf(cells[C_RESULT], 160, "%s", result_name(r->result));
	snprintf(cells[C_NOTE], 160, "%s", r->note);
}

/* Print one line of cells, aligned, without trailing blanks. */
static void print_line(FILE *f, char cells[NCOLS][160], const size_t *width, const bool *left)
{
	char line[2048];
	size_t len = 0;

	for (int c = 0; c < NCOLS && len < sizeof(line); c++) {
		int w = left[c] ? -(int)width[c] : (int)width[c];

		len += (size_t)snprintf(line + len, sizeof(line) - len, c ? "  %*s" : "%*s", w,
					cells[c]);
	}
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	while (len > 0 && line[len - 1] == ' ')
		len--;
	fprintf(f, "%.*s\n", (int)len, line);
}

void report_print(FILE *f)
{
	static const char *const head[NCOLS] = {"workload / subject",
						"median",
						"p99",
						"ops/s",
						"n",
						"ratio",
						"target",
						"result",
						"note"};
	static const bool left[NCOLS] = {true, false, false, false, false, false, true, true, true};
	size_t width[NCOLS];
	char cells[NCOLS][160];
	const char *current = NULL;

	for (int c = 0; c < NCOLS; c++)
		width[c] = strlen(head[c]);
	for (size_t i = 0; i < nrows; i++) {
		row_cells(&rows[i], cells);
		for (int c = 0; c < NCOLS; c++) {
			if (strlen(cells[c]) > width[c])
				width[c] = strlen(cells[c]);
		}
	}
	width[NCOLS - 1] = 0; /* the last column is not padded */
	for (size_t i = 0; i < nmachine; i++)
		fprintf(f, "%-11s %s\n", machine[i].key, machine[i].value);
	fputc('\n', f);
	for (int c = 0; c < NCOLS; c++)
		snprintf(cells[c], sizeof(cells[c]), "%s", head[c]);
	print_line(f, cells, width, left);
	for (size_t i = 0; i < nrows; i++) {
		if (!current || strcmp(current, rows[i].section) != 0) {
			current = rows[i].section;
			fprintf(f, "%s\n", current);
		}
		row_cells(&rows[i], cells);
		print_line(f, cells, width, left);
	}
}

/* ---- JSON ------------------------------------------------------------------ */

static json_object *num_or_null(double v)
{
	return isnan(v) ? NULL : json_object_new_double(v);
}

int report_json(const char *path, double runtime_s)
{
	json_object *doc = json_object_new_object(), *mach = json_object_new_object();
	json_object *list = json_object_new_array();
	int ret;

	for (size_t i = 0; i < nmachine; i++)
		json_object_object_add(mach, machine[i].key,
				       json_object_new_string(machine[i].value));
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		json_object *o = json_object_new_object();
		char ratio[64];

		fmt_ratio(ratio, sizeof(ratio), r);
		json_object_object_add(o, "workload", json_object_new_string(r->section));
		json_object_object_add(o, "subject", json_object_new_string(r->subject));
		json_object_object_add(
		    o, "unit", json_object_new_string(r->unit == ROW_BYTES ? "bytes" : "ns"));
		json_object_object_add(o, "median", num_or_null(r->median));
		json_object_object_add(o, "p99", num_or_null(r->p99));
		json_object_object_add(o, "ops_per_s", num_or_null(r->ops));
		json_object_object_add(o, "samples", json_object_new_int64(r->n));
		json_object_object_add(o, "ratio", num_or_null(r->ratio));
		json_object_object_add(o, "ratio_text", json_object_new_string(ratio));
		json_object_object_add(o, "ratio_of", json_object_new_string(r->ratio_of));
		json_object_object_add(o, "target", json_object_new_string(r->target));
		json_object_object_add(o, "result",
				       r->result == RESULT_NONE
					   ? NULL
					   : json_object_new_string(result_name(r->result)));
		json_object_object_add(o, "note", json_object_new_string(r->note));
		json_object_array_add(list, o);
	}
	json_object_object_add(doc, "mode", json_object_new_string(bench.quick ? "quick" : "full"));
	json_object_object_add(doc, "runtime_s", json_object_new_double(runtime_s));
	json_object_object_add(doc, "machine", mach);
	json_object_object_add(doc, "rows", list);
	ret = json_object_to_file_ext(path, doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	json_object_put(doc);
	return ret < 0 ? -1 : 0;
}
