/*
 * internal.h - declarations shared by the files of src/db only (db.c and the
 * backends). Never included from outside src/db.
 *
 * Result building: every backend fills struct db_rows the same way so that
 * db_rows_free (db.c) can free any result: column names and cells are
 * malloc'd strings, the arrays are malloc'd, NULL cell = SQL NULL.
 */
#ifndef VWS_DB_INTERNAL_H
#define VWS_DB_INTERNAL_H

#include "db/db.h"

#define DB_ROWS_MAX 100000     /* rows one result may hold; more is an error */
#define DB_CELL_MAX (16 << 20) /* bytes one cell may hold */

/* Prepare r for ncols columns (r zeroed first). 0 or ERR_NOMEM. */
int db__rows_init(struct db_rows *r, int ncols, struct err *e);
/* Set column i's name (copied). 0 or ERR_NOMEM. */
int db__rows_set_col(struct db_rows *r, int i, const char *name, struct err *e);
/*
 * Append one row and return its ncols cells (all NULL) for the caller to
 * fill with malloc'd strings; NULL with e set when DB_ROWS_MAX is reached or
 * memory runs out.
 */
char **db__rows_add(struct db_rows *r, struct err *e);
/* Copy n bytes of text into a new NUL-terminated string; NULL on OOM. */
char *db__strndup(const char *s, size_t n);

#endif
