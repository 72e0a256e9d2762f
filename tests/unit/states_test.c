/* SPDX-License-Identifier: MIT */
/* states_test.c: the agent's connection and life tables (node-agent/
 * states.c): every cell is written down, impossible events are refused and
 * change nothing, and the paths a shutdown takes lead where they should. */
#include <criterion/criterion.h>

#include "agt.h"

Test(states, every_conn_cell_is_written_down, .timeout = 2)
{
    for (unsigned st = 0; st < AGT_CS_N; st++)
        for (unsigned ev = 0; ev < AGT_CE_N; ev++)
            cr_assert(agt_conn_cell_written(st, ev), "conn %s x %s left out",
                      agt_conn_state_name(st), agt_conn_event_name(ev));
}

Test(states, every_life_cell_is_written_down, .timeout = 2)
{
    for (unsigned st = 0; st < AGT_LS_N; st++)
        for (unsigned ev = 0; ev < AGT_LE_N; ev++)
            cr_assert(agt_life_cell_written(st, ev), "life %s x %s left out",
                      agt_life_state_name(st), agt_life_event_name(ev));
}

Test(states, refused_and_ignored_change_nothing, .timeout = 2)
{
    for (unsigned st = 0; st < AGT_CS_N; st++)
        for (unsigned ev = 0; ev < AGT_CE_N; ev++) {
            enum agt_trans k;
            unsigned act;
            enum agt_conn_state n = agt_conn_next(st, ev, &act, &k);

            cr_assert(k == AGT_T_GO || k == AGT_T_IGNORE || k == AGT_T_REFUSE);
            if (k != AGT_T_GO)
                cr_assert(n == st && act == 0);
        }
    for (unsigned st = 0; st < AGT_LS_N; st++)
        for (unsigned ev = 0; ev < AGT_LE_N; ev++) {
            enum agt_trans k;
            unsigned act;
            enum agt_life_state n = agt_life_next(st, ev, &act, &k);

            cr_assert(k == AGT_T_GO || k == AGT_T_IGNORE || k == AGT_T_REFUSE);
            if (k != AGT_T_GO)
                cr_assert(n == st && act == 0);
        }
}

Test(states, out_of_range_is_refused, .timeout = 2)
{
    enum agt_trans k;
    unsigned act = 99;

    cr_assert_eq(agt_conn_next(AGT_CS_N, AGT_CE_LEAVE, &act, &k), AGT_CS_N);
    cr_assert_eq(k, AGT_T_REFUSE);
    cr_assert_eq(act, 0);
    cr_assert_eq(agt_life_next(AGT_LS_RUNNING, AGT_LE_N, &act, &k), AGT_LS_RUNNING);
    cr_assert_eq(k, AGT_T_REFUSE);
}

Test(states, impossible_conn_events_are_refused, .timeout = 2)
{
    enum agt_trans k;
    unsigned act;

    agt_conn_next(AGT_CS_SYNCING, AGT_CE_REGISTERED, &act, &k);
    cr_assert_eq(k, AGT_T_REFUSE, "a RegisterRep to a sync");
    agt_conn_next(AGT_CS_REGISTERING, AGT_CE_REREGISTER, &act, &k);
    cr_assert_eq(k, AGT_T_REFUSE, "a SyncRep to a register");
    agt_life_next(AGT_LS_RUNNING, AGT_LE_LEAVE_TIMEOUT, &act, &k);
    cr_assert_eq(k, AGT_T_REFUSE, "the leave timer runs only while leaving");
}

/* Walk a path of events from st; assert each step's kind. */
static enum agt_conn_state
conn_walk(enum agt_conn_state st, enum agt_conn_event ev, unsigned want_act)
{
    enum agt_trans k;
    unsigned act;
    enum agt_conn_state n = agt_conn_next(st, ev, &act, &k);

    cr_assert_eq(k, AGT_T_GO, "%s x %s", agt_conn_state_name(st), agt_conn_event_name(ev));
    cr_assert_eq(act, want_act, "%s x %s: actions %#x", agt_conn_state_name(st),
                 agt_conn_event_name(ev), act);
    return n;
}

Test(states, conn_registers_syncs_leaves_and_ends_with_the_last_sync, .timeout = 2)
{
    enum agt_conn_state st = AGT_CS_REGISTERING;

    st = conn_walk(st, AGT_CE_REGISTERED, AGT_CA_SEND);
    cr_assert_eq(st, AGT_CS_SYNCING);
    st = conn_walk(st, AGT_CE_REREGISTER, AGT_CA_SEND);
    cr_assert_eq(st, AGT_CS_REGISTERING);
    st = conn_walk(st, AGT_CE_REGISTERED, AGT_CA_SEND);
    st = conn_walk(st, AGT_CE_LEAVE, AGT_CA_FULL | AGT_CA_SEND);
    cr_assert_eq(st, AGT_CS_LEAVING);
    st = conn_walk(st, AGT_CE_LAST_SYNC, AGT_CA_MUTE | AGT_CA_SEND);
    cr_assert_eq(st, AGT_CS_LAST);
    st = conn_walk(st, AGT_CE_LAST_ANSWERED, AGT_CA_LAST_DONE);
    cr_assert_eq(st, AGT_CS_DONE);
}

Test(states, conn_leaving_before_registering_tells_the_agent_at_once, .timeout = 2)
{
    enum agt_conn_state st = AGT_CS_REGISTERING;

    st = conn_walk(st, AGT_CE_LEAVE, AGT_CA_UNREACHABLE);
    cr_assert_eq(st, AGT_CS_LEAVING_UNREG);
    /* registered after all: syncs say leaving, with full reports */
    cr_assert_eq(conn_walk(st, AGT_CE_REGISTERED, AGT_CA_FULL | AGT_CA_SEND), AGT_CS_LEAVING);
    /* or never: the last sync has nobody to tell */
    cr_assert_eq(conn_walk(st, AGT_CE_LAST_SYNC, AGT_CA_MUTE | AGT_CA_LAST_DONE), AGT_CS_DONE);
    /* a leaving agent asked to register again stays leaving */
    cr_assert_eq(conn_walk(AGT_CS_LEAVING, AGT_CE_REREGISTER, AGT_CA_SEND), AGT_CS_LEAVING_UNREG);
}

Test(states, conn_done_ignores_everything, .timeout = 2)
{
    for (unsigned ev = 0; ev < AGT_CE_N; ev++) {
        enum agt_trans k;
        unsigned act;

        cr_assert_eq(agt_conn_next(AGT_CS_DONE, ev, &act, &k), AGT_CS_DONE);
        cr_assert_eq(k, AGT_T_IGNORE);
    }
    for (unsigned st = 0; st < AGT_CS_DONE; st++) {
        enum agt_trans k;
        unsigned act;

        cr_assert_eq(agt_conn_next(st, AGT_CE_CLOSE, &act, &k), AGT_CS_DONE, "close from %s",
                     agt_conn_state_name(st));
    }
}

static enum agt_life_state
life_walk(enum agt_life_state st, enum agt_life_event ev, unsigned want_act)
{
    enum agt_trans k;
    unsigned act;
    enum agt_life_state n = agt_life_next(st, ev, &act, &k);

    cr_assert_eq(k, AGT_T_GO, "%s x %s", agt_life_state_name(st), agt_life_event_name(ev));
    cr_assert_eq(act, want_act, "%s x %s: actions %#x", agt_life_state_name(st),
                 agt_life_event_name(ev), act);
    return n;
}

Test(states, life_sigterm_leaves_drains_syncs_last_and_closes, .timeout = 2)
{
    enum agt_life_state st = AGT_LS_RUNNING;

    st = life_walk(st, AGT_LE_SIGNAL, AGT_LA_LEAVE);
    cr_assert_eq(st, AGT_LS_LEAVING);
    st = life_walk(st, AGT_LE_MOVED, AGT_LA_DRAIN);
    cr_assert_eq(st, AGT_LS_DRAINING);
    st = life_walk(st, AGT_LE_CHECK, AGT_LA_LAST);
    cr_assert_eq(st, AGT_LS_LAST_SYNC);
    st = life_walk(st, AGT_LE_LAST_DONE, AGT_LA_CHECK);
    cr_assert_eq(st, AGT_LS_CLOSING);
    st = life_walk(st, AGT_LE_CHECK, AGT_LA_CLOSE);
    cr_assert_eq(st, AGT_LS_DONE);
}

Test(states, life_every_way_out_of_leaving_drains, .timeout = 2)
{
    const enum agt_life_event evs[] = {AGT_LE_LEAVE_TIMEOUT, AGT_LE_MOVED, AGT_LE_UNREACHABLE,
                                       AGT_LE_REFUSED};

    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        cr_assert_eq(life_walk(AGT_LS_LEAVING, evs[i], AGT_LA_DRAIN), AGT_LS_DRAINING);
    cr_assert_eq(life_walk(AGT_LS_LEAVING, AGT_LE_SIGNAL_AGAIN, AGT_LA_DRAIN | AGT_LA_KILL),
                 AGT_LS_DRAINING);
}

Test(states, life_a_running_agent_ignores_what_only_leaving_means, .timeout = 2)
{
    const enum agt_life_event evs[] = {AGT_LE_MOVED, AGT_LE_UNREACHABLE, AGT_LE_CHECK,
                                       AGT_LE_LAST_DONE};

    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        enum agt_trans k;
        unsigned act;

        cr_assert_eq(agt_life_next(AGT_LS_RUNNING, evs[i], &act, &k), AGT_LS_RUNNING);
        cr_assert_eq(k, AGT_T_IGNORE);
    }
    /* a refused name drains at once, without leaving first */
    cr_assert_eq(life_walk(AGT_LS_RUNNING, AGT_LE_REFUSED, AGT_LA_DRAIN), AGT_LS_DRAINING);
}

Test(states, life_a_first_signal_after_a_refusal_does_not_go_back_to_leaving, .timeout = 2)
{
    enum agt_trans k;
    unsigned act;

    cr_assert_eq(agt_life_next(AGT_LS_DRAINING, AGT_LE_SIGNAL, &act, &k), AGT_LS_DRAINING);
    cr_assert_eq(k, AGT_T_IGNORE);
    /* a second signal kills in every state before done */
    for (unsigned st = AGT_LS_DRAINING; st < AGT_LS_DONE; st++)
        cr_assert(life_walk(st, AGT_LE_SIGNAL_AGAIN, AGT_LA_KILL) == st);
}

Test(states, life_the_last_sync_waits_for_every_instance, .timeout = 2)
{
    enum agt_trans k;
    unsigned act;

    /* LAST_DONE before the last sync went out means nothing */
    cr_assert_eq(agt_life_next(AGT_LS_DRAINING, AGT_LE_LAST_DONE, &act, &k), AGT_LS_DRAINING);
    cr_assert_eq(k, AGT_T_IGNORE);
    /* a check while the last sync is out changes nothing */
    cr_assert_eq(agt_life_next(AGT_LS_LAST_SYNC, AGT_LE_CHECK, &act, &k), AGT_LS_LAST_SYNC);
    cr_assert_eq(k, AGT_T_IGNORE);
}
