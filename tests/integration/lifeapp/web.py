# A web process for the lifecycle tests: says who it is, drains on SIGTERM,
# and refuses to boot (exit 3) while the file named by $CRASH_FILE exists.
import http.server
import os
import signal
import sys
import threading

DYNO = os.environ.get("DYNO", "?")
crash = os.environ.get("CRASH_FILE", "")
if crash and os.path.exists(crash):
    print(f"{DYNO} refusing to boot: {crash} exists", flush=True)
    sys.exit(3)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"dyno={DYNO} pid={os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    allow_reuse_address = True


server = Server(("0.0.0.0", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda s, f: threading.Thread(target=server.shutdown).start())
print(f"{DYNO} listening on {os.environ['PORT']}", flush=True)
server.serve_forever()
server.server_close()
