# SPDX-License-Identifier: MIT
"""drover's example web process: a twelve-factor app in the standard library.

It listens on 0.0.0.0:$PORT, answers GET / with who it is (DYNO, the release)
and a greeting from the GREETING config var, logs one line per request on
stdout, and exits cleanly on SIGTERM so that drover can drain it.
"""
import http.server
import os
import signal
import sys
import threading

DYNO = os.environ.get("DYNO", "web.?")
RELEASE = os.environ.get("DROVER_RELEASE", "?")
APP = os.environ.get("DROVER_APP", "hello")


def log(msg):
    # One line per event on stdout, flushed at once: drover collects the stream.
    print(f"{DYNO} {msg}", flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "hello/1"

    def do_GET(self):
        if self.path != "/":
            self.send_error(404)
            return
        greeting = os.environ.get("GREETING", "hello")
        body = f"{greeting} from {APP} {DYNO} (release v{RELEASE})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_error(self, fmt, *args):
        pass  # log_request() already writes the one line for this request

    def log_message(self, fmt, *args):
        log(f"request from={self.client_address[0]} " + (fmt % args))


def main():
    port = int(os.environ.get("PORT", "5000"))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True

    def on_term(signum, frame):
        log("shutting down")
        # shutdown() waits for serve_forever() to return: call it off this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    log(f"listening on 0.0.0.0:{port} release=v{RELEASE}")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
