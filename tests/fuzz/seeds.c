/* SPDX-License-Identifier: MIT */
/*
 * seeds: writes the committed seed corpora of tests/fuzz (run by hand after
 * a schema change: build-fuzz/bin/fuzz_seeds tests/fuzz/corpus). One
 * serialized Message per request type for fuzz_api and fuzz_envelope (which
 * also seals its inputs as bodies), a few envelopes, and Procfiles.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"
#include "wire.h"

static const char *root;

static void
put(const char *corpus, const char *name, const void *data, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, corpus);
    mkdir_p(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", root, corpus, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void
put_msg(const char *name, Drover__Message *m)
{
    size_t len = drover__message__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);

    drover__message__pack(m, buf);
    put("api", name, buf, len);
    put("envelope", name, buf, len);
    free(buf);
}

static void
messages(void)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__KeyValue kv = DROVER__KEY_VALUE__INIT, *kvs[1] = {&kv};
    Drover__FormationEntry fe = DROVER__FORMATION_ENTRY__INIT, *fes[1] = {&fe};
    Drover__InstanceReport ir = DROVER__INSTANCE_REPORT__INIT, *irs[1] = {&ir};
    char *keys[1] = {"GREETING"};

    kv.key = "GREETING";
    kv.value = "hi";
    fe.type = "web";
    fe.quantity = 3;
    ir.id = 1;
    ir.app = "shop";
    ir.name = "web.1";
    ir.release = 1;
    ir.state = DROVER__INSTANCE_STATE__ST_UP;
    ir.pid = 42;
    ir.port = 5000;

    Drover__AppsReq apps = DROVER__APPS_REQ__INIT;
    m.body_case = DROVER__MESSAGE__BODY_APPS_REQ, m.apps_req = &apps;
    put_msg("apps", &m);
    Drover__AppCreateReq ac = DROVER__APP_CREATE_REQ__INIT;
    ac.app = "web-shop";
    m.body_case = DROVER__MESSAGE__BODY_APP_CREATE_REQ, m.app_create_req = &ac;
    put_msg("app_create", &m);
    Drover__ConfigReq cr = DROVER__CONFIG_REQ__INIT;
    cr.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_CONFIG_REQ, m.config_req = &cr;
    put_msg("config", &m);
    Drover__ConfigSetReq cs = DROVER__CONFIG_SET_REQ__INIT;
    cs.app = "shop", cs.vars = kvs, cs.n_vars = 1;
    m.body_case = DROVER__MESSAGE__BODY_CONFIG_SET_REQ, m.config_set_req = &cs;
    put_msg("config_set", &m);
    Drover__ConfigUnsetReq cu = DROVER__CONFIG_UNSET_REQ__INIT;
    cu.app = "shop", cu.keys = keys, cu.n_keys = 1;
    m.body_case = DROVER__MESSAGE__BODY_CONFIG_UNSET_REQ, m.config_unset_req = &cu;
    put_msg("config_unset", &m);
    Drover__SlugPutReq sp = DROVER__SLUG_PUT_REQ__INIT;
    sp.sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    sp.total = 3, sp.data.data = (uint8_t *)"foo", sp.data.len = 3;
    m.body_case = DROVER__MESSAGE__BODY_SLUG_PUT_REQ, m.slug_put_req = &sp;
    put_msg("slug_put", &m);
    Drover__ReleaseCreateReq rc = DROVER__RELEASE_CREATE_REQ__INIT;
    rc.app = "shop", rc.slug_sha256 = sp.sha256, rc.description = "fuzz";
    m.body_case = DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ, m.release_create_req = &rc;
    put_msg("release_create", &m);
    Drover__ReleasesReq rr = DROVER__RELEASES_REQ__INIT;
    rr.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_RELEASES_REQ, m.releases_req = &rr;
    put_msg("releases", &m);
    Drover__ScaleReq sc = DROVER__SCALE_REQ__INIT;
    sc.app = "shop", sc.entries = fes, sc.n_entries = 1;
    m.body_case = DROVER__MESSAGE__BODY_SCALE_REQ, m.scale_req = &sc;
    put_msg("scale", &m);
    Drover__PsReq ps = DROVER__PS_REQ__INIT;
    ps.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_PS_REQ, m.ps_req = &ps;
    put_msg("ps", &m);
    Drover__NodesReq nr = DROVER__NODES_REQ__INIT;
    m.body_case = DROVER__MESSAGE__BODY_NODES_REQ, m.nodes_req = &nr;
    put_msg("nodes", &m);
    Drover__RestartReq rs = DROVER__RESTART_REQ__INIT;
    rs.app = "shop", rs.target = "web";
    m.body_case = DROVER__MESSAGE__BODY_RESTART_REQ, m.restart_req = &rs;
    put_msg("restart", &m);
    Drover__PsStopReq pst = DROVER__PS_STOP_REQ__INIT;
    pst.app = "shop", pst.name = "web.1";
    m.body_case = DROVER__MESSAGE__BODY_PS_STOP_REQ, m.ps_stop_req = &pst;
    put_msg("ps_stop", &m);
    Drover__AppDestroyReq ad = DROVER__APP_DESTROY_REQ__INIT;
    ad.app = "shop", ad.confirm = "shop";
    m.body_case = DROVER__MESSAGE__BODY_APP_DESTROY_REQ, m.app_destroy_req = &ad;
    put_msg("app_destroy", &m);
    Drover__NodeRemoveReq nrm = DROVER__NODE_REMOVE_REQ__INIT;
    nrm.node = "n1";
    m.body_case = DROVER__MESSAGE__BODY_NODE_REMOVE_REQ, m.node_remove_req = &nrm;
    put_msg("node_remove", &m);
    Drover__RegisterReq reg = DROVER__REGISTER_REQ__INIT;
    reg.node = "n2", reg.address = "10.0.0.2", reg.port_min = 6000, reg.port_max = 6010;
    reg.capacity = 4, reg.boot_id = "b2", reg.instances = irs, reg.n_instances = 1;
    m.body_case = DROVER__MESSAGE__BODY_REGISTER_REQ, m.register_req = &reg;
    put_msg("register", &m);
    Drover__SyncReq sy = DROVER__SYNC_REQ__INIT;
    sy.node = "n1", sy.boot_id = "boot1", sy.generation = 1, sy.full = true;
    sy.instances = irs, sy.n_instances = 1;
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REQ, m.sync_req = &sy;
    put_msg("sync", &m);
    Drover__SlugReq sr = DROVER__SLUG_REQ__INIT;
    sr.sha256 = sp.sha256, sr.length = 1024;
    m.body_case = DROVER__MESSAGE__BODY_SLUG_REQ, m.slug_req = &sr;
    put_msg("slug_req", &m);
}

static void
envelopes(void)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__PsReq ps = DROVER__PS_REQ__INIT;
    struct wire_sender s;
    uint8_t key[WIRE_KEY_BYTES], *buf;
    size_t len;

    ps.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_PS_REQ, m.ps_req = &ps;
    wire_sender_init(&s, "fuzz");
    if (wire_seal(&s, &m, &buf, &len) == 0)
        put("envelope", "env_unsealed", buf, len);
    free(buf);
    memset(key, 0x42, sizeof(key)); /* fuzz_envelope's key */
    wire_sender_set_key(&s, key);
    if (wire_seal(&s, &m, &buf, &len) == 0)
        put("envelope", "env_sealed", buf, len);
    free(buf);
    if (wire_refusal(DROVER__ERROR_CODE__ERR_UNAUTHORIZED, "the API token was refused", &buf,
                     &len) == 0)
        put("envelope", "env_refusal", buf, len);
    free(buf);
}

static void
procfiles(void)
{
    static const char *const pf[] = {
        "web: python3 web.py\nworker: sh worker.sh\n",
        "# comment\r\nweb: ./server --port $PORT\r\n\r\nclock: ./clock\n",
        "web:\n",
        "web: a\nweb: b\n",
        "Web: upper\n",
        "run: reserved\n",
        "a-b_c: x: y: z\n",
    };
    char name[16];

    for (size_t i = 0; i < sizeof(pf) / sizeof(pf[0]); i++) {
        snprintf(name, sizeof(name), "procfile%zu", i);
        put("procfile", name, pf[i], strlen(pf[i]));
    }
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    messages();
    envelopes();
    procfiles();
    return 0;
}
