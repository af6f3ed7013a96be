/* test_report.h - the reports CI systems read, for `plugbox policy test`
 * and `plugbox selftest` (issue 24): JUnit XML (GitLab, Jenkins, GitHub's
 * test reporters) and TAP. One test case per expectation or probe; a
 * failure carries its evidence.
 *
 * Every string may come from a plugin (a probe's verdict, an exception
 * message) or a user's file: the writers escape it. XML gets &amp; and
 * friends, and a byte XML 1.0 cannot hold (a control character, invalid
 * UTF-8) is written as the four characters \xNN; TAP gets the same for
 * control characters, and a name never carries a newline or a '#'.
 */
#ifndef PLUGBOX_TEST_REPORT_H
#define PLUGBOX_TEST_REPORT_H

#include <stdio.h>

enum pb_case_status { PB_CASE_PASSED,
	              PB_CASE_FAILED,
	              PB_CASE_SKIPPED };

struct pb_test_report;

/* NULL when memory runs out. suite: the <testsuite> name; classname: the
 * cases' class (the policy, the selftest's layer...). */
struct pb_test_report *pb_test_report_new(const char *suite, const char *classname);
/* Add a case (strings are copied; message and detail may be NULL):
 * message is the one-line reason of a failure or skip, detail the
 * evidence. Ignored once memory ran out (pb_test_report_junit then fails). */
void pb_test_report_add(struct pb_test_report *r, const char *name, enum pb_case_status status,
                        const char *message, const char *detail);
/* The same with a class of its own for this case. */
void pb_test_report_add_in(struct pb_test_report *r, const char *classname, const char *name,
                           enum pb_case_status status, const char *message, const char *detail);
/* TAP version 13 on out. */
void pb_test_report_tap(const struct pb_test_report *r, FILE *out);
/* JUnit XML into path (replaced whole: written beside it, then renamed).
 * 0, or -1 after saying why on stderr. */
int pb_test_report_junit(const struct pb_test_report *r, const char *path);
void pb_test_report_free(struct pb_test_report *r);

#endif
