/* SPDX-License-Identifier: MIT */
/*
 * A Heroku-style Django app runs unchanged: tests/integration/djangoapp (laid
 * out like Heroku's getting-started app, with Debian's python3-django and
 * gunicorn) declares `release: python3 manage.py migrate`; its settings come
 * from config vars. The deploy runs the migration as the release phase, then
 * gunicorn serves a page that reads the migrated table.
 *
 * The SQLite database lives in a world-writable directory the test makes
 * under /var/tmp, named by the DATABASE_PATH config var: not under /tmp
 * (each instance may get a private /tmp, and the release phase and the web
 * must share the file) and not under /root (app processes may run as an
 * unprivileged user). It is removed at the end.
 * Ports: controller 7672-7675, apps 10140-10199.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static struct h_cluster C;
static char dbdir[128];

static void
fini(void)
{
    char cmd[256];

    h_cleanup(&C);
    if (dbdir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dbdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dbdir);
        dbdir[0] = '\0';
    }
}

TestSuite(django, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

Test(django, migrates_in_the_release_phase_and_serves_the_migrated_table)
{
    char *out = NULL, *err = NULL, db[200], cmd[600];
    const char *src = DROVER_SOURCE_DIR "/tests/integration/djangoapp";
    struct h_ps ps;
    const struct j_obj *web = NULL;
    char *body = NULL;
    int idx, rc;

    if (system("/usr/bin/python3 -c 'import django' 2>/dev/null") != 0 ||
        system("test -x /usr/bin/gunicorn") != 0)
        cr_skip_test("python3-django and gunicorn are not installed (tests/run installs them)");
    h_init(&C, "django", 7672);
    snprintf(dbdir, sizeof(dbdir), "/var/tmp/drover-it-django.XXXXXX");
    cr_assert_not_null(mkdtemp(dbdir));
    chmod(dbdir, 01777);
    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000));
    idx = h_start_agent(&C, "n1", "10140-10199", NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000));

    snprintf(db, sizeof(db), "DATABASE_PATH=%s/db.sqlite3", dbdir);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "blog"), 0);
    cr_assert_eq(CLI(NULL, NULL, "config:set", "blog", "SECRET_KEY=drover-django-test", db), 0);
    rc = CLI(&out, &err, "deploy", "blog", src, "--timeout", "120");
    cr_assert_eq(rc, 0, "deploy: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Running release phase (release.1) ...") != NULL, "%s", out);
    free(out);
    free(err);

    rc = CLI(&out, &err, "logs", "blog", "--source", "release.1");
    cr_assert(rc == 0 && strstr(out, "Applying greetings.0002_hello... OK") != NULL,
              "the migration's output:\n%s%s", out, err);
    free(out);
    free(err);

    h_get_ps(&C, "blog", &ps);
    web = h_ps_find(&ps, "web.1");
    cr_assert_not_null(web, "no web.1");
    cr_assert_str_eq(j_get(web, "state"), "up");
    body = h_http_get(j_get(web, "host"), atoi(j_get(web, "port")), 5000);
    cr_assert_not_null(body, "gunicorn does not answer");
    cr_assert(strstr(body, "hello from a migrated table (1 greetings)") != NULL, "%s", body);
    free(body);

    /* A config change is a new release: migrate runs again, and is a no-op. */
    cr_assert_eq(CLI(NULL, NULL, "config:set", "blog", "GREETING=x"), 0);
    for (int waited = 0; waited < 60000; waited += 200) {
        h_get_ps(&C, "blog", &ps);
        web = h_ps_find(&ps, "web.1");
        if (web != NULL && strcmp(j_get(web, "release"), "2") == 0 &&
            strcmp(j_get(web, "state"), "up") == 0 && ps.n == 1)
            break;
        h_msleep(200);
    }
    cr_assert(web != NULL && strcmp(j_get(web, "release"), "2") == 0, "v2 never came up");
    body = h_http_get(j_get(web, "host"), atoi(j_get(web, "port")), 5000);
    cr_assert(body != NULL && strstr(body, "(1 greetings)") != NULL, "%s", body ? body : "");
    free(body);
    snprintf(cmd, sizeof(cmd), "test -s '%s/db.sqlite3'", dbdir);
    cr_assert_eq(system(cmd), 0, "no database at %s", dbdir);
}
