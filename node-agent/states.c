/* SPDX-License-Identifier: MIT */
/*
 * states.c: the agent's two other state machines, as explicit state × event
 * tables in the style of supervise.c: its connection to the controller
 * (conn.c drives it) and its own life from start to exit (agent.c drives
 * it).
 *
 * Every cell is written down: a step (next state and the actions the
 * driver performs, in the order of the bits), IGN (the event means nothing
 * in that state: nothing changes) or BAD (the event cannot happen there
 * unless the driver has a bug: refused, and the driver logs it). The unit
 * tests check that no cell is left out and walk the paths that matter.
 * The tables are pure: no I/O, no clock, so the tests need no process.
 */
#include <stddef.h>

#include "agt.h"

struct step {
    unsigned char kind; /* 0 (a cell left out: a bug), AGT_T_GO, AGT_T_IGNORE, AGT_T_REFUSE */
    unsigned char next;
    unsigned short actions;
};

/* clang-format off */
#define GO(nx, act) {AGT_T_GO, AGT_CS_##nx, (act)}
#define IGN {AGT_T_IGNORE, 0, 0}
#define BAD {AGT_T_REFUSE, 0, 0}
#define A(x) AGT_CA_##x

/* The connection. Registering: a RegisterReq goes out, with full reports.
 * Syncing: syncs carry generation and digest. Leaving: syncs say leaving
 * (SIGTERM), so that the controller moves the instances away. The last
 * sync of a shutdown is full; once it is answered (or cannot be) the
 * connection is done. */
static const struct step conn_table[AGT_CS_N][AGT_CE_N] = {
    [AGT_CS_REGISTERING] = {
        [AGT_CE_REGISTERED]     = GO(SYNCING, A(SEND)), /* sync at once, for the set */
        [AGT_CE_REREGISTER]     = BAD,                  /* a SyncRep to a RegisterReq */
        [AGT_CE_LEAVE]          = GO(LEAVING_UNREG, A(UNREACHABLE)), /* nobody moves them */
        [AGT_CE_LAST_SYNC]      = GO(DONE, A(MUTE) | A(LAST_DONE)),  /* nobody to tell */
        [AGT_CE_LAST_ANSWERED]  = IGN,
        [AGT_CE_CLOSE]          = GO(DONE, 0),
    },
    [AGT_CS_SYNCING] = {
        [AGT_CE_REGISTERED]     = BAD,
        [AGT_CE_REREGISTER]     = GO(REGISTERING, A(SEND)),
        [AGT_CE_LEAVE]          = GO(LEAVING, A(FULL) | A(SEND)),
        [AGT_CE_LAST_SYNC]      = GO(LAST, A(MUTE) | A(SEND)),
        [AGT_CE_LAST_ANSWERED]  = IGN,
        [AGT_CE_CLOSE]          = GO(DONE, 0),
    },
    [AGT_CS_LEAVING] = {
        [AGT_CE_REGISTERED]     = BAD,
        [AGT_CE_REREGISTER]     = GO(LEAVING_UNREG, A(SEND)), /* register again, still leaving */
        [AGT_CE_LEAVE]          = IGN,
        [AGT_CE_LAST_SYNC]      = GO(LAST, A(MUTE) | A(SEND)),
        [AGT_CE_LAST_ANSWERED]  = IGN,
        [AGT_CE_CLOSE]          = GO(DONE, 0),
    },
    /* Leaving, not registered (yet, or again): a register that succeeds
     * makes syncs that say leaving. */
    [AGT_CS_LEAVING_UNREG] = {
        [AGT_CE_REGISTERED]     = GO(LEAVING, A(FULL) | A(SEND)),
        [AGT_CE_REREGISTER]     = BAD,
        [AGT_CE_LEAVE]          = IGN,
        [AGT_CE_LAST_SYNC]      = GO(DONE, A(MUTE) | A(LAST_DONE)),
        [AGT_CE_LAST_ANSWERED]  = IGN,
        [AGT_CE_CLOSE]          = GO(DONE, 0),
    },
    [AGT_CS_LAST] = {
        [AGT_CE_REGISTERED]     = BAD,
        [AGT_CE_REREGISTER]     = GO(DONE, A(LAST_DONE)), /* it forgot us: nobody to tell */
        [AGT_CE_LEAVE]          = IGN,
        [AGT_CE_LAST_SYNC]      = IGN,
        [AGT_CE_LAST_ANSWERED]  = GO(DONE, A(LAST_DONE)),
        [AGT_CE_CLOSE]          = GO(DONE, 0),
    },
    [AGT_CS_DONE] = {
        [AGT_CE_REGISTERED]     = IGN,
        [AGT_CE_REREGISTER]     = IGN,
        [AGT_CE_LEAVE]          = IGN,
        [AGT_CE_LAST_SYNC]      = IGN,
        [AGT_CE_LAST_ANSWERED]  = IGN,
        [AGT_CE_CLOSE]          = IGN,
    },
};
#undef GO
#undef A

#define GO(nx, act) {AGT_T_GO, AGT_LS_##nx, (act)}
#define A(x) AGT_LA_##x

/* The agent's life. Running; on SIGTERM leaving (no more starts, the
 * controller moves the instances away); then draining (every instance
 * stopped here) once they are moved, the controller is unreachable, the
 * leave timeout passes, a second signal comes or the node name is refused;
 * when every instance has stopped, the last sync; once it is answered (or
 * timed out), closing (every handle closed from the deferred check), done. */
static const struct step life_table[AGT_LS_N][AGT_LE_N] = {
    [AGT_LS_RUNNING] = {
        [AGT_LE_SIGNAL]         = GO(LEAVING, A(LEAVE)),
        [AGT_LE_SIGNAL_AGAIN]   = GO(DRAINING, A(DRAIN) | A(KILL)),
        [AGT_LE_LEAVE_TIMEOUT]  = BAD, /* its timer runs only while leaving */
        [AGT_LE_MOVED]          = IGN,
        [AGT_LE_UNREACHABLE]    = IGN,
        [AGT_LE_REFUSED]        = GO(DRAINING, A(DRAIN)),
        [AGT_LE_CHECK]          = IGN,
        [AGT_LE_LAST_DONE]      = IGN,
    },
    [AGT_LS_LEAVING] = {
        [AGT_LE_SIGNAL]         = IGN,
        [AGT_LE_SIGNAL_AGAIN]   = GO(DRAINING, A(DRAIN) | A(KILL)),
        [AGT_LE_LEAVE_TIMEOUT]  = GO(DRAINING, A(DRAIN)),
        [AGT_LE_MOVED]          = GO(DRAINING, A(DRAIN)),
        [AGT_LE_UNREACHABLE]    = GO(DRAINING, A(DRAIN)),
        [AGT_LE_REFUSED]        = GO(DRAINING, A(DRAIN)),
        [AGT_LE_CHECK]          = IGN,
        [AGT_LE_LAST_DONE]      = IGN,
    },
    [AGT_LS_DRAINING] = {
        [AGT_LE_SIGNAL]         = IGN, /* refused, then SIGTERM: already on the way out */
        [AGT_LE_SIGNAL_AGAIN]   = GO(DRAINING, A(KILL)),
        [AGT_LE_LEAVE_TIMEOUT]  = IGN,
        [AGT_LE_MOVED]          = IGN,
        [AGT_LE_UNREACHABLE]    = IGN,
        [AGT_LE_REFUSED]        = IGN,
        [AGT_LE_CHECK]          = GO(LAST_SYNC, A(LAST)), /* every instance stopped */
        [AGT_LE_LAST_DONE]      = IGN,
    },
    [AGT_LS_LAST_SYNC] = {
        [AGT_LE_SIGNAL]         = IGN,
        [AGT_LE_SIGNAL_AGAIN]   = GO(LAST_SYNC, A(KILL)),
        [AGT_LE_LEAVE_TIMEOUT]  = IGN,
        [AGT_LE_MOVED]          = IGN,
        [AGT_LE_UNREACHABLE]    = IGN,
        [AGT_LE_REFUSED]        = IGN,
        [AGT_LE_CHECK]          = IGN,
        [AGT_LE_LAST_DONE]      = GO(CLOSING, A(CHECK)),
    },
    [AGT_LS_CLOSING] = {
        [AGT_LE_SIGNAL]         = IGN,
        [AGT_LE_SIGNAL_AGAIN]   = GO(CLOSING, A(KILL)),
        [AGT_LE_LEAVE_TIMEOUT]  = IGN,
        [AGT_LE_MOVED]          = IGN,
        [AGT_LE_UNREACHABLE]    = IGN,
        [AGT_LE_REFUSED]        = IGN,
        [AGT_LE_CHECK]          = GO(DONE, A(CLOSE)),
        [AGT_LE_LAST_DONE]      = IGN,
    },
    [AGT_LS_DONE] = {
        [AGT_LE_SIGNAL]         = IGN,
        [AGT_LE_SIGNAL_AGAIN]   = IGN,
        [AGT_LE_LEAVE_TIMEOUT]  = IGN,
        [AGT_LE_MOVED]          = IGN,
        [AGT_LE_UNREACHABLE]    = IGN,
        [AGT_LE_REFUSED]        = IGN,
        [AGT_LE_CHECK]          = IGN,
        [AGT_LE_LAST_DONE]      = IGN,
    },
};
#undef GO
#undef A
/* clang-format on */

static const char *const conn_state_names[AGT_CS_N] = {
    [AGT_CS_REGISTERING] = "registering", [AGT_CS_SYNCING] = "syncing",
    [AGT_CS_LEAVING] = "leaving",         [AGT_CS_LEAVING_UNREG] = "leaving_unregistered",
    [AGT_CS_LAST] = "last_sync",          [AGT_CS_DONE] = "done",
};
static const char *const conn_event_names[AGT_CE_N] = {
    [AGT_CE_REGISTERED] = "registered",
    [AGT_CE_REREGISTER] = "reregister",
    [AGT_CE_LEAVE] = "leave",
    [AGT_CE_LAST_SYNC] = "last_sync",
    [AGT_CE_LAST_ANSWERED] = "last_answered",
    [AGT_CE_CLOSE] = "close",
};
static const char *const life_state_names[AGT_LS_N] = {
    [AGT_LS_RUNNING] = "running",     [AGT_LS_LEAVING] = "leaving", [AGT_LS_DRAINING] = "draining",
    [AGT_LS_LAST_SYNC] = "last_sync", [AGT_LS_CLOSING] = "closing", [AGT_LS_DONE] = "done",
};
static const char *const life_event_names[AGT_LE_N] = {
    [AGT_LE_SIGNAL] = "signal",
    [AGT_LE_SIGNAL_AGAIN] = "signal_again",
    [AGT_LE_LEAVE_TIMEOUT] = "leave_timeout",
    [AGT_LE_MOVED] = "moved",
    [AGT_LE_UNREACHABLE] = "unreachable",
    [AGT_LE_REFUSED] = "refused",
    [AGT_LE_CHECK] = "check",
    [AGT_LE_LAST_DONE] = "last_done",
};

static unsigned
lookup(const struct step *t, unsigned st, unsigned *actions, enum agt_trans *kind)
{
    *actions = 0;
    *kind = t->kind == AGT_T_GO || t->kind == AGT_T_IGNORE ? (enum agt_trans)t->kind : AGT_T_REFUSE;
    if (*kind != AGT_T_GO)
        return st;
    *actions = t->actions;
    return t->next;
}

enum agt_conn_state
agt_conn_next(enum agt_conn_state st, enum agt_conn_event ev, unsigned *actions,
              enum agt_trans *kind)
{
    if ((unsigned)st >= AGT_CS_N || (unsigned)ev >= AGT_CE_N) {
        *actions = 0;
        *kind = AGT_T_REFUSE;
        return st;
    }
    return (enum agt_conn_state)lookup(&conn_table[st][ev], st, actions, kind);
}

enum agt_life_state
agt_life_next(enum agt_life_state st, enum agt_life_event ev, unsigned *actions,
              enum agt_trans *kind)
{
    if ((unsigned)st >= AGT_LS_N || (unsigned)ev >= AGT_LE_N) {
        *actions = 0;
        *kind = AGT_T_REFUSE;
        return st;
    }
    return (enum agt_life_state)lookup(&life_table[st][ev], st, actions, kind);
}

bool
agt_conn_cell_written(unsigned st, unsigned ev)
{
    return st < AGT_CS_N && ev < AGT_CE_N && conn_table[st][ev].kind != 0;
}

bool
agt_life_cell_written(unsigned st, unsigned ev)
{
    return st < AGT_LS_N && ev < AGT_LE_N && life_table[st][ev].kind != 0;
}

const char *
agt_conn_state_name(enum agt_conn_state st)
{
    return (unsigned)st < AGT_CS_N ? conn_state_names[st] : "unknown";
}

const char *
agt_conn_event_name(enum agt_conn_event ev)
{
    return (unsigned)ev < AGT_CE_N ? conn_event_names[ev] : "unknown";
}

const char *
agt_life_state_name(enum agt_life_state st)
{
    return (unsigned)st < AGT_LS_N ? life_state_names[st] : "unknown";
}

const char *
agt_life_event_name(enum agt_life_event ev)
{
    return (unsigned)ev < AGT_LE_N ? life_event_names[ev] : "unknown";
}
