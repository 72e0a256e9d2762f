/* SPDX-License-Identifier: MIT */
/*
 * json_verbs.c: one JSON document per reply, the shapes of `drover VERB
 * --json`. The CLI prints them; the controller's HTTP API sends them as
 * bodies: both call the builders here, so the shapes live in one place.
 *
 * Lists come out in the order the CLI has always printed them: instances by
 * type then number, releases newest first (sorted on a copy: the reply is
 * borrowed).
 */
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "util.h"

static const char *
str(const char *s)
{
    return s != NULL ? s : "";
}

/* N of "web.N", for ordering web.2 before web.10. */
static unsigned long
inst_num(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot != NULL ? strtoul(dot + 1, NULL, 10) : 0;
}

int
jout_instance_order(const void *a, const void *b)
{
    const Drover__InstanceInfo *x = *(Drover__InstanceInfo *const *)a;
    const Drover__InstanceInfo *y = *(Drover__InstanceInfo *const *)b;
    int c = strcmp(str(x->type), str(y->type));
    unsigned long nx, ny;

    if (c != 0)
        return c;
    nx = inst_num(str(x->name));
    ny = inst_num(str(y->name));
    if (nx != ny)
        return nx < ny ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

static int
newest_first(const void *a, const void *b)
{
    const Drover__ReleaseInfo *x = *(Drover__ReleaseInfo *const *)a;
    const Drover__ReleaseInfo *y = *(Drover__ReleaseInfo *const *)b;

    return x->version < y->version ? 1 : x->version > y->version ? -1 : 0;
}

/* A sorted copy of a reply's pointer array (free()), or NULL. */
static void *
sorted(void *const *v, size_t n, int (*cmp)(const void *, const void *))
{
    void **c = malloc((n > 0 ? n : 1) * sizeof(*c));

    if (c == NULL)
        return NULL;
    if (n > 0)
        memcpy(c, v, n * sizeof(*c));
    if (n > 1)
        qsort(c, n, sizeof(*c), cmp);
    return c;
}

json_t *
jout_apps(const Drover__AppsRep *r)
{
    struct jout j;

    jout_init(&j);
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_apps; i++) {
        Drover__AppInfo *a = r->apps[i];

        jout_begin_object(&j);
        jout_key(&j, "name");
        jout_string(&j, str(a->name));
        jout_key(&j, "release");
        jout_uint(&j, a->release);
        jout_key(&j, "formation");
        jout_begin_object(&j);
        for (size_t k = 0; k < a->n_formation; k++) {
            jout_key(&j, str(a->formation[k]->type));
            jout_int(&j, a->formation[k]->quantity);
        }
        jout_end_object(&j);
        jout_key(&j, "created");
        jout_time(&j, a->created_ms);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    return jout_finish(&j);
}

json_t *
jout_config(const Drover__ConfigRep *r)
{
    struct jout j;

    jout_init(&j);
    jout_begin_object(&j);
    for (size_t i = 0; i < r->n_vars; i++) {
        jout_key(&j, str(r->vars[i]->key));
        jout_string(&j, str(r->vars[i]->value));
    }
    jout_end_object(&j);
    return jout_finish(&j);
}

json_t *
jout_drains(const Drover__DrainsRep *r)
{
    struct jout j;

    jout_init(&j);
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_drains; i++) {
        const Drover__DrainInfo *d = r->drains[i];

        jout_begin_object(&j);
        jout_key(&j, "id");
        jout_string(&j, str(d->id));
        jout_key(&j, "url");
        jout_string(&j, str(d->url));
        jout_key(&j, "state");
        jout_string(&j, str(d->state));
        jout_key(&j, "sent");
        jout_uint(&j, d->sent);
        jout_key(&j, "buffered");
        jout_uint(&j, d->buffered);
        jout_key(&j, "dropped");
        jout_uint(&j, d->dropped);
        jout_key(&j, "last_error");
        jout_string(&j, str(d->last_error));
        jout_key(&j, "last_error_at");
        jout_time(&j, d->last_error_ms);
        jout_key(&j, "created");
        jout_time(&j, d->created_ms);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    return jout_finish(&j);
}

static void
node_obj(struct jout *j, const Drover__NodeInfo *n)
{
    jout_begin_object(j);
    jout_key(j, "name");
    jout_string(j, str(n->name));
    jout_key(j, "address");
    jout_string(j, str(n->address));
    jout_key(j, "state");
    jout_string(j, str(n->state));
    jout_key(j, "instances");
    jout_uint(j, n->instances);
    jout_key(j, "capacity");
    jout_uint(j, n->capacity);
    jout_key(j, "port_min");
    jout_uint(j, n->port_min);
    jout_key(j, "port_max");
    jout_uint(j, n->port_max);
    jout_key(j, "last_seen");
    jout_time(j, n->last_seen_ms);
    jout_key(j, "draining");
    jout_uint(j, n->draining);
    jout_key(j, "evicting");
    jout_uint(j, n->evicting);
    jout_key(j, "lost");
    jout_uint(j, n->lost);
    jout_key(j, "limit");
    jout_uint(j, n->limit);
    jout_key(j, "oneoffs_stopping");
    jout_uint(j, n->oneoffs_stopping);
    jout_key(j, "leaving");
    jout_bool(j, n->leaving);
    jout_key(j, "unreachable_ms");
    jout_uint(j, n->unreachable_ms);
    jout_end_object(j);
}

json_t *
jout_nodes(const Drover__NodesRep *r)
{
    struct jout j;

    jout_init(&j);
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_nodes; i++)
        node_obj(&j, r->nodes[i]);
    jout_end_array(&j);
    return jout_finish(&j);
}

json_t *
jout_ps(const Drover__PsRep *r)
{
    Drover__InstanceInfo **v =
        sorted((void *const *)r->instances, r->n_instances, jout_instance_order);
    struct jout j;

    if (v == NULL)
        return NULL;
    jout_init(&j);
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_instances; i++) {
        Drover__InstanceInfo *in = v[i];
        bool placed = str(in->node)[0] != '\0';

        jout_begin_object(&j);
        jout_key(&j, "id");
        jout_uint(&j, in->id);
        jout_key(&j, "name");
        jout_string(&j, str(in->name));
        jout_key(&j, "type");
        jout_string(&j, str(in->type));
        jout_key(&j, "state");
        jout_string(&j, str(in->state));
        jout_key(&j, "node");
        jout_string(&j, placed ? in->node : NULL);
        jout_key(&j, "host");
        jout_string(&j, placed && str(in->host)[0] != '\0' ? in->host : NULL);
        jout_key(&j, "port");
        jout_uint(&j, in->port);
        jout_key(&j, "release");
        jout_uint(&j, in->release);
        jout_key(&j, "restarts");
        jout_uint(&j, in->restarts);
        jout_key(&j, "pid");
        jout_int(&j, in->pid);
        jout_key(&j, "exit_code");
        if (in->exit_code >= 0)
            jout_int(&j, in->exit_code);
        else
            jout_null(&j);
        jout_key(&j, "exit_signal");
        if (in->exit_signal > 0)
            jout_int(&j, in->exit_signal);
        else
            jout_null(&j);
        jout_key(&j, "since");
        jout_time(&j, in->since_ms);
        jout_key(&j, "reason");
        jout_string(&j, str(in->reason)[0] != '\0' ? in->reason : NULL);
        jout_key(&j, "command");
        jout_string(&j, str(in->command));
        jout_key(&j, "memory_bytes");
        jout_uint(&j, in->memory_bytes);
        jout_key(&j, "cpu_percent");
        jout_tenths(&j, in->cpu_permille);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    free(v);
    return jout_finish(&j);
}

json_t *
jout_releases(const Drover__ReleasesRep *r)
{
    Drover__ReleaseInfo **v = sorted((void *const *)r->releases, r->n_releases, newest_first);
    struct jout j;

    if (v == NULL)
        return NULL;
    jout_init(&j);
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_releases; i++) {
        Drover__ReleaseInfo *rel = v[i];

        jout_begin_object(&j);
        jout_key(&j, "version");
        jout_uint(&j, rel->version);
        jout_key(&j, "description");
        jout_string(&j, str(rel->description));
        jout_key(&j, "created");
        jout_time(&j, rel->created_ms);
        jout_key(&j, "status");
        jout_string(&j, str(rel->status));
        jout_key(&j, "reason");
        jout_string(&j, str(rel->reason));
        jout_key(&j, "current");
        jout_bool(&j, rel->version == r->current);
        jout_key(&j, "slug");
        jout_string(&j, str(rel->slug_sha256));
        jout_end_object(&j);
    }
    jout_end_array(&j);
    free(v);
    return jout_finish(&j);
}

json_t *
jout_settings(Drover__TypeSettings **types, size_t n, const char *only)
{
    struct jout j;

    jout_init(&j);
    jout_begin_array(&j);
    for (size_t i = 0; i < n; i++) {
        const Drover__TypeSettings *t = types[i];

        if (only != NULL && strcmp(str(t->type), only) != 0)
            continue;
        jout_begin_object(&j);
        jout_key(&j, "type");
        jout_string(&j, str(t->type));
        jout_key(&j, "quantity");
        jout_uint(&j, t->quantity);
        jout_key(&j, "health");
        jout_string(&j, str(t->health));
        jout_key(&j, "boot_timeout_ms");
        jout_uint(&j, t->boot_timeout_ms);
        jout_key(&j, "grace_ms");
        jout_uint(&j, t->grace_ms);
        jout_key(&j, "max_surge");
        jout_string(&j, str(t->max_surge));
        jout_key(&j, "max_unavailable");
        jout_string(&j, str(t->max_unavailable));
        jout_key(&j, "min_healthy_ms");
        jout_uint(&j, t->min_healthy_ms);
        jout_key(&j, "deploy_timeout_ms");
        jout_uint(&j, t->deploy_timeout_ms);
        if (strcmp(str(t->type), "release") == 0) { /* the release phase's limit */
            jout_key(&j, "release_timeout_ms");
            jout_uint(&j, t->deploy_timeout_ms);
        }
        jout_key(&j, "shutdown_delay_ms");
        jout_uint(&j, t->shutdown_delay_ms);
        /* Limits: 0 is none. */
        jout_key(&j, "memory_bytes");
        jout_uint(&j, t->memory_bytes);
        jout_key(&j, "cpu_milli");
        jout_uint(&j, t->cpu_milli);
        jout_key(&j, "pids");
        jout_uint(&j, t->pids);
        jout_key(&j, "nofile");
        jout_uint(&j, t->nofile);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    return jout_finish(&j);
}

static void
type_obj(struct jout *j, const Drover__TypeStatus *t)
{
    jout_begin_object(j);
    jout_key(j, "type");
    jout_string(j, str(t->type));
    jout_key(j, "desired");
    jout_uint(j, t->desired);
    jout_key(j, "up");
    jout_uint(j, t->up);
    jout_key(j, "starting");
    jout_uint(j, t->starting);
    jout_key(j, "pending");
    jout_uint(j, t->pending);
    jout_key(j, "crashed");
    jout_uint(j, t->crashed);
    jout_key(j, "lost");
    jout_uint(j, t->lost);
    jout_key(j, "draining");
    jout_uint(j, t->draining);
    jout_key(j, "evicting");
    jout_uint(j, t->evicting);
    jout_end_object(j);
}

static void
attention_obj(struct jout *j, const Drover__InstanceInfo *in)
{
    bool placed = str(in->node)[0] != '\0';

    jout_begin_object(j);
    jout_key(j, "name");
    jout_string(j, str(in->name));
    jout_key(j, "type");
    jout_string(j, str(in->type));
    jout_key(j, "state");
    jout_string(j, str(in->state));
    jout_key(j, "node");
    jout_string(j, placed ? in->node : NULL);
    jout_key(j, "port");
    jout_uint(j, in->port);
    jout_key(j, "release");
    jout_uint(j, in->release);
    jout_key(j, "reason");
    jout_string(j, str(in->reason)[0] != '\0' ? in->reason : NULL);
    jout_end_object(j);
}

json_t *
jout_status(const Drover__StatusRep *s)
{
    struct jout j;

    jout_init(&j);
    jout_begin_object(&j);
    /* HA (issue 16): which store, who leads, in which term, who stands by. */
    jout_key(&j, "controller");
    jout_begin_object(&j);
    jout_key(&j, "store");
    jout_string(&j, str(s->store));
    jout_key(&j, "term");
    jout_uint(&j, s->term);
    jout_key(&j, "leader");
    jout_string(&j, str(s->leader));
    jout_key(&j, "controllers");
    jout_begin_array(&j);
    for (size_t i = 0; i < s->n_controllers; i++)
        jout_string(&j, str(s->controllers[i]));
    jout_end_array(&j);
    jout_end_object(&j);
    jout_key(&j, "nodes");
    jout_begin_array(&j);
    for (size_t i = 0; i < s->n_nodes; i++)
        node_obj(&j, s->nodes[i]);
    jout_end_array(&j);
    jout_key(&j, "apps");
    jout_begin_array(&j);
    for (size_t a = 0; a < s->n_apps; a++) {
        const Drover__AppStatus *as = s->apps[a];

        jout_begin_object(&j);
        jout_key(&j, "name");
        jout_string(&j, str(as->name));
        jout_key(&j, "release");
        jout_uint(&j, as->release);
        jout_key(&j, "types");
        jout_begin_array(&j);
        for (size_t t = 0; t < as->n_types; t++)
            type_obj(&j, as->types[t]);
        jout_end_array(&j);
        jout_key(&j, "attention");
        jout_begin_array(&j);
        for (size_t i = 0; i < as->n_attention; i++)
            attention_obj(&j, as->attention[i]);
        jout_end_array(&j);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    /* How the controller itself is doing when not well (store failing, most
     * nodes silent at once); empty when all is well. */
    jout_key(&j, "warnings");
    jout_begin_array(&j);
    for (size_t i = 0; i < s->n_warnings; i++)
        jout_string(&j, str(s->warnings[i]));
    jout_end_array(&j);
    jout_end_object(&j);
    return jout_finish(&j);
}

json_t *
jout_node(const Drover__NodeInfo *n)
{
    struct jout j;

    jout_init(&j);
    node_obj(&j, n);
    return jout_finish(&j);
}

json_t *
jout_endpoints(const char *app, const Drover__EndpointsRep *r)
{
    struct jout j;

    jout_init(&j);
    jout_begin_object(&j);
    jout_key(&j, "app");
    jout_string(&j, str(app));
    jout_key(&j, "version");
    jout_uint(&j, r->version);
    jout_key(&j, "endpoints");
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_endpoints; i++) {
        const Drover__Endpoint *e = r->endpoints[i];

        jout_begin_object(&j);
        jout_key(&j, "id");
        jout_uint(&j, e->id);
        jout_key(&j, "name");
        jout_string(&j, str(e->name));
        jout_key(&j, "type");
        jout_string(&j, str(e->type));
        jout_key(&j, "host");
        jout_string(&j, str(e->host));
        jout_key(&j, "port");
        jout_uint(&j, e->port);
        jout_key(&j, "release");
        jout_uint(&j, e->release);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    jout_end_object(&j);
    return jout_finish(&j);
}

json_t *
jout_log_line(const Drover__LogLine *l)
{
    struct jout j;
    char ts[32];

    jout_init(&j);
    jout_begin_object(&j);
    fmt_time_ms(l->ts_ms, ts);
    jout_key(&j, "ts");
    jout_string(&j, ts);
    jout_key(&j, "app");
    jout_string(&j, str(l->app));
    jout_key(&j, "source");
    jout_string(&j, str(l->source));
    jout_key(&j, "node");
    jout_string(&j, str(l->node));
    jout_key(&j, "text");
    jout_string(&j, str(l->text));
    jout_key(&j, "seq");
    jout_uint(&j, l->seq);
    jout_end_object(&j);
    return jout_finish(&j);
}

json_t *
jout_restart(const char *app, const Drover__RestartRep *r, const char *state)
{
    struct jout j;

    jout_init(&j);
    jout_begin_object(&j);
    jout_key(&j, "app");
    jout_string(&j, str(app));
    jout_key(&j, "release");
    jout_uint(&j, r->release);
    jout_key(&j, "instances");
    jout_begin_array(&j);
    for (size_t i = 0; i < r->n_names; i++)
        jout_string(&j, r->names[i]);
    jout_end_array(&j);
    jout_key(&j, "state");
    jout_string(&j, state);
    jout_end_object(&j);
    return jout_finish(&j);
}

json_t *
jout_destroy(const char *app, const Drover__AppDestroyRep *r, bool destroyed)
{
    struct jout j;

    jout_init(&j);
    jout_begin_object(&j);
    jout_key(&j, "app");
    jout_string(&j, str(app));
    jout_key(&j, "instances");
    jout_uint(&j, r->instances);
    jout_key(&j, "releases");
    jout_uint(&j, r->releases);
    jout_key(&j, "destroyed");
    jout_bool(&j, destroyed);
    jout_end_object(&j);
    return jout_finish(&j);
}

json_t *
jout_deploy(const Drover__DeployInfo *d)
{
    struct jout j;

    if (d == NULL)
        return json_null();
    jout_init(&j);
    jout_begin_object(&j);
    jout_key(&j, "app");
    jout_string(&j, str(d->app));
    jout_key(&j, "release");
    jout_uint(&j, d->release);
    jout_key(&j, "from");
    jout_uint(&j, d->from);
    jout_key(&j, "state");
    jout_string(&j, str(d->state));
    jout_key(&j, "reason");
    jout_string(&j, str(d->reason)[0] != '\0' ? d->reason : NULL);
    jout_key(&j, "started");
    jout_time(&j, d->started_ms);
    jout_key(&j, "finished");
    jout_time(&j, d->finished_ms);
    jout_key(&j, "current");
    jout_uint(&j, d->current);
    jout_key(&j, "types");
    jout_begin_array(&j);
    for (size_t i = 0; i < d->n_types; i++) {
        const Drover__TypeProgress *t = d->types[i];

        jout_begin_object(&j);
        jout_key(&j, "type");
        jout_string(&j, str(t->type));
        jout_key(&j, "desired");
        jout_uint(&j, t->desired);
        jout_key(&j, "updated");
        jout_uint(&j, t->updated);
        jout_key(&j, "created");
        jout_uint(&j, t->created);
        jout_key(&j, "old");
        jout_uint(&j, t->old);
        jout_end_object(&j);
    }
    jout_end_array(&j);
    jout_end_object(&j);
    return jout_finish(&j);
}
