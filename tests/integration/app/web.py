import http.server
import os
import signal
import subprocess
import sys

# A grandchild of the instance. On SIGTERM this process exits without
# stopping it: only the agent's kill of the whole process group removes it.
child = subprocess.Popen(["sleep", "600"])

REPORTED = ["DYNO", "PORT", "PS", "DROVER_APP", "DROVER_RELEASE", "GREETING", "HOME",
            "LANG", "PATH", "DROVER_TEST_LEAK"]


def on_term(signum, frame):
    print(f"{os.environ.get('DYNO')} got SIGTERM", flush=True)
    sys.exit(0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        lines = [f"{k}={os.environ.get(k, '')}" for k in REPORTED]
        lines.append(f"PID={os.getpid()}")
        lines.append(f"GRANDCHILD={child.pid}")
        lines.append(f"CWD={os.getcwd()}")
        lines.append("ENVKEYS=" + ",".join(sorted(os.environ)))
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"{os.environ.get('DYNO')} {fmt % args}", flush=True)


signal.signal(signal.SIGTERM, on_term)
print(f"{os.environ.get('DYNO')} listening on {os.environ['PORT']}", flush=True)
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
