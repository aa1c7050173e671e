/* args.h -- the little option parsing the analysis commands share: "--name VALUE" and
 * "--name=VALUE", "--" ending the options, and numbers that must parse whole.
 * Nothing here prints; the command reports with out_err().
 */
#ifndef HEAPSNAP_ARGS_H
#define HEAPSNAP_ARGS_H

#include <stdint.h>

/* If argv[*i] is the option --name (or --name=VALUE), set *val to its value, advance
 * *i past a separate value, and return 1. Return 0 if it is another argument, -1 if
 * the option has no value. */
int arg_value(int argc, char **argv, int *i, const char *name, const char **val);

/* a decimal number in [lo, hi], the whole string; 0 or -1 */
int arg_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);

#endif
