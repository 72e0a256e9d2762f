# SPDX-License-Identifier: MIT
# A Logplex HTTPS drain receiver for tests/integration/drains_test.c:
# python3 logplex_recv.py PORT CERT KEY OUT REFUSE
# Serves HTTPS on 127.0.0.1:PORT, one request at a time. Requests whose
# number (1, 2, ...) is listed in REFUSE (comma-separated) get 503; the rest
# 200. Each request is written to OUT as a line
#   req N status=S id=FRAME count=MSG-COUNT framed=N ctype=... token=... path=...
# then one line per octet-counted message in its body:
#   msg PRI PROCID TEXT
# (framed is -1 when the body is not exact octet-counted framing).
import http.server
import ssl
import sys

port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
refuse = {int(x) for x in sys.argv[5].split(",") if x}
count = 0


def unframe(body):
    msgs, i = [], 0
    while i < len(body):
        sp = body.index(b" ", i)
        n = int(body[i:sp])
        m = body[sp + 1:sp + 1 + n]
        if len(m) != n:
            return None
        msgs.append(m)
        i = sp + 1 + n
    return msgs


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        count += 1
        status = 503 if count in refuse else 200
        try:
            msgs = unframe(body)
        except ValueError:
            msgs = None
        h = self.headers
        with open(out, "a") as f:
            f.write("req %d status=%d id=%s count=%s framed=%d ctype=%s token=%s path=%s\n" % (
                count, status, h.get("Logplex-Frame-Id"), h.get("Logplex-Msg-Count"),
                -1 if msgs is None else len(msgs), h.get("Content-Type"),
                h.get("Logplex-Drain-Token"), self.path))
            for m in msgs or []:
                p = m.split(b" ", 7)
                f.write("msg %s %s %s\n" % (p[0].decode(), p[4].decode(),
                                            p[7].decode(errors="replace")))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
