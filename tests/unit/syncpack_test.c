/* SPDX-License-Identifier: MIT */
/*
 * controller/syncpack.c: an assignment set packed with each environment
 * once reads, through protobuf-c, as the very message protobuf-c packs;
 * what it does not pack (another message, more environments than it keeps
 * apart) it leaves to protobuf-c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* What protobuf-c packs of m, after a trip through unpack: two packings of
 * one message read the same when these bytes are equal. */
static uint8_t *
canonical(const uint8_t *buf, size_t len, size_t *outlen)
{
    Drover__Message *m = drover__message__unpack(NULL, len, buf);
    uint8_t *out;

    cr_assert_not_null(m, "the hand-packed bytes do not unpack");
    *outlen = drover__message__get_packed_size(m);
    out = malloc(*outlen + 1);
    drover__message__pack(m, out);
    drover__message__free_unpacked(m, NULL);
    return out;
}

#define NKV 5
static Drover__KeyValue kv[3][NKV];
static Drover__KeyValue *envs[3][NKV];
static char vals[3][NKV][300];

static void
make_envs(void)
{
    for (int e = 0; e < 3; e++) {
        for (int i = 0; i < NKV; i++) {
            static char keys[3][NKV][16];

            drover__key_value__init(&kv[e][i]);
            snprintf(keys[e][i], sizeof(keys[e][i]), "KEY_%d_%d", e, i);
            /* values both side of a one-byte length (127) */
            memset(vals[e][i], 'a' + i, (size_t)(60 * i + e));
            vals[e][i][60 * i + e] = '\0';
            kv[e][i].key = keys[e][i];
            kv[e][i].value = vals[e][i];
            envs[e][i] = &kv[e][i];
        }
    }
}

/* n assignments, their environments among the three (or none: -1). */
static void
check_set(size_t n, const int *env_of, bool expect_hand)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__SyncRep sr = DROVER__SYNC_REP__INIT;
    Drover__Assignment *as = calloc(n, sizeof(*as));
    Drover__Assignment **ap = calloc(n, sizeof(*ap));
    char(*names)[32] = calloc(n, 32);
    char *destroyed[] = {"gone"};
    uint8_t *hand = NULL, *ref, *c1, *c2;
    size_t hlen = 0, rlen, l1, l2;
    int rc;

    for (size_t i = 0; i < n; i++) {
        drover__assignment__init(&as[i]);
        snprintf(names[i], 32, "web.%zu", i + 1);
        as[i].id = 1000 + i * 977;
        as[i].app = "shop";
        as[i].name = names[i];
        as[i].type = "web";
        as[i].release = 3;
        as[i].command = "bundle exec puma -p $PORT";
        as[i].port = (uint32_t)(10000 + i);
        as[i].health = "tcp";
        as[i].grace_ms = 30000;
        as[i].memory_bytes = (uint64_t)512 << 20;
        if (env_of[i] >= 0) {
            as[i].env = envs[env_of[i]];
            as[i].n_env = NKV;
        }
        ap[i] = &as[i];
    }
    sr.generation = 42;
    sr.has_assignments = true;
    sr.assignments = ap;
    sr.n_assignments = n;
    sr.term = 7;
    sr.udp_watch_ms = 2500;
    sr.destroyed_apps = destroyed;
    sr.n_destroyed_apps = 1;
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REP;
    m.sync_rep = &sr;

    rlen = drover__message__get_packed_size(&m);
    ref = malloc(rlen);
    drover__message__pack(&m, ref);
    rc = ctl_sync_pack(&m, &hand, &hlen);
    if (!expect_hand) {
        cr_assert_eq(rc, -ENOTSUP);
        cr_assert_null(hand);
    } else {
        cr_assert_eq(rc, 0);
        /* The same size as protobuf-c's (the same fields, in another order)... */
        cr_assert_eq(hlen, rlen);
        /* ...and the same message. */
        c1 = canonical(hand, hlen, &l1);
        c2 = canonical(ref, rlen, &l2);
        cr_assert_eq(l1, l2);
        cr_assert_eq(memcmp(c1, c2, l1), 0);
        free(c1);
        free(c2);
    }
    free(hand);
    free(ref);
    free(names);
    free(ap);
    free(as);
}

Test(syncpack, an_assignment_set_reads_as_protobuf_c_packs_it)
{
    int env_of[200];

    make_envs();
    for (size_t i = 0; i < 200; i++)
        env_of[i] = (int)(i % 4) - 1; /* none, and each of the three */
    check_set(200, env_of, true);
    check_set(1, env_of + 1, true);
    check_set(1, env_of, true); /* one assignment, no environment */
}

Test(syncpack, what_it_does_not_pack_is_left_to_protobuf_c)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__SyncRep sr = DROVER__SYNC_REP__INIT;
    Drover__Ok ok = DROVER__OK__INIT;
    uint8_t *out = (uint8_t *)"x";
    size_t len = 1;

    m.body_case = DROVER__MESSAGE__BODY_OK;
    m.ok = &ok;
    cr_assert_eq(ctl_sync_pack(&m, &out, &len), -ENOTSUP);
    cr_assert_null(out);
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REP; /* a set of nothing */
    m.sync_rep = &sr;
    sr.has_assignments = true;
    cr_assert_eq(ctl_sync_pack(&m, &out, &len), -ENOTSUP);
}

Test(syncpack, more_environments_than_it_keeps_apart_go_to_protobuf_c)
{
    /* Nine environments: the same three arrays, each seen with another
     * count, count as distinct. */
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__SyncRep sr = DROVER__SYNC_REP__INIT;
    Drover__Assignment as[9], *ap[9];
    uint8_t *out = NULL;
    size_t len = 0;

    make_envs();
    for (int i = 0; i < 9; i++) {
        drover__assignment__init(&as[i]);
        as[i].env = envs[i % 3];
        as[i].n_env = (size_t)(1 + i / 3);
        ap[i] = &as[i];
    }
    sr.assignments = ap;
    sr.n_assignments = 9;
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REP;
    m.sync_rep = &sr;
    cr_assert_eq(ctl_sync_pack(&m, &out, &len), -ENOTSUP);
    cr_assert_null(out);
    sr.n_assignments = 8;
    cr_assert_eq(ctl_sync_pack(&m, &out, &len), 0);
    free(out);
}
