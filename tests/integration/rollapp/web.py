# A web process that says which code and config it runs, and shuts down the
# way a twelve-factor web process should: on SIGTERM it stops accepting,
# finishes the requests in flight, and exits 0.
#
#   version.txt        the code's version; "crash" exits 3 at boot
#   CRASH_AT_BOOT=1    exit 3 at boot too (a bad config)
#   BOOT_SLEEP=S       sleep S seconds before listening (a slow boot)
#   GREETING           shown in every response
import http.server
import os
import signal
import sys
import threading
import time

with open("version.txt") as f:
    VERSION = f.read().strip()
DYNO = os.environ.get("DYNO", "?")

if VERSION == "crash" or os.environ.get("CRASH_AT_BOOT") == "1":
    print(f"{DYNO} refusing to boot (version={VERSION})", flush=True)
    sys.exit(3)
time.sleep(float(os.environ.get("BOOT_SLEEP", "0")))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (f"version={VERSION} greeting={os.environ.get('GREETING', '')} "
                f"dyno={DYNO} release={os.environ.get('DROVER_RELEASE', '')}\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight
    allow_reuse_address = True


server = Server(("0.0.0.0", int(os.environ["PORT"])), Handler)


def on_term(signum, frame):
    print(f"{DYNO} draining", flush=True)
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, on_term)
print(f"{DYNO} version={VERSION} listening on {os.environ['PORT']}", flush=True)
server.serve_forever()
server.server_close()
print(f"{DYNO} drained", flush=True)
