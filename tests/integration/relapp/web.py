# A web process that checks, at start, that its release's release phase ran
# before it: it looks for its release in $MARK_DIR/releases and, when it is
# not there, records the violation in $MARK_DIR/violations and exits 3.
# It also writes a file in its cwd and in $HOME, and serves what it sees.
import http.server
import os
import signal
import threading

MARKS = os.environ["MARK_DIR"]
RELEASE = os.environ.get("DROVER_RELEASE", "")
DYNO = os.environ.get("DYNO", "?")

try:
    with open(os.path.join(MARKS, "releases")) as f:
        seen = [line.strip() for line in f]
except FileNotFoundError:
    seen = []
if RELEASE not in seen:
    with open(os.path.join(MARKS, "violations"), "a") as f:
        f.write(f"{DYNO} of {RELEASE} started before its release phase\n")
    raise SystemExit(3)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"dyno={DYNO} release={RELEASE} pid={os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True


server = Server(("0.0.0.0", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda s, f: threading.Thread(target=server.shutdown).start())
print(f"{DYNO} of {RELEASE} listening on {os.environ['PORT']}", flush=True)
server.serve_forever()
