/* commands.h -- every heapsnap subcommand. Adding one: write cmd_NAME.c with
 * cmd_NAME(), add a row to the table in main.c, a test, and docs/NAME.md.
 *
 * Exit codes (documented in README and `heapsnap help`):
 *   0  success
 *   1  analysis or capture error (the target or the snapshot was readable, the work failed)
 *   2  usage error or bad input (unknown option, missing/foreign/truncated/newer file,
 *      no such process, no permission)
 */
#ifndef HEAPSNAP_COMMANDS_H
#define HEAPSNAP_COMMANDS_H

enum { HS_EXIT_OK = 0, HS_EXIT_FAIL = 1, HS_EXIT_USAGE = 2 };

/* argv[0] is the subcommand name; each returns an exit code. */
int cmd_capture(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_regions(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_stacks(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_threads(int argc, char **argv);
int cmd_libs(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_leaks(int argc, char **argv);      /* cmd_retention.c (issue #4) */
int cmd_dominators(int argc, char **argv);
int cmd_retained(int argc, char **argv);
int cmd_path(int argc, char **argv);
int cmd_histogram(int argc, char **argv);
int cmd_show(int argc, char **argv);

#endif
